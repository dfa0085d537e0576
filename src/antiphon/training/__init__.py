"""Training with PyTorch (the ``train`` extra). Never imported on the instrument path.

PyTorch's CPU threads wait passively here (``OMP_WAIT_POLICY=passive``, set before
anything of this package loads torch, unless the environment says otherwise). They
meet at a barrier after every small parallel operation, many times per batch, and by
default a thread that arrives early spins; when another program keeps a core busy, the
spinning threads take turns with it while the thread they wait for cannot run, and
training collapses. On the 2-core VM, with other programs using 1.2-1.9 cores, an epoch
of size s took 5-56 minutes with 2 spinning threads, 8-58 s with 1 thread and 8-23 s
with 2 passive ones; spinning 10,000 rounds before sleeping still took 4-6 minutes
(docs/benchmarks.md, "Training threads"). So training keeps a thread on every
core (``--threads`` chooses fewer) and lets the waiting ones sleep.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "passive")
