"""antiphon: a platform for intelligent musical instruments.

Importing the package is cheap on purpose: the instrument path must start fast and
never pull in an ML framework. Subpackages are imported where they are used.

NumPy's BLAS runs on one thread here: a prediction is a few small matrix products,
for which worker threads only add wake-up latency and compete with the I/O on a
small board. The setting must be made before NumPy loads, hence here, the first
module every antiphon command imports; a value set by the user wins.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
