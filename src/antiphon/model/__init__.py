"""The MDRNN without an ML framework: maths, weights, model files and IMPSY import.

Inference runs on one thread: a step is a few small matrix products, for which
BLAS worker threads only add wake-up latency and compete with the I/O on a small
board. The setting must be made before NumPy loads, so it is made here, where the
inference path starts; a value set by the user wins.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
