"""The built-in spooler: runs the exact simulators on jobs from a storage provider.

Plain Python (no Django). The simulators' small dense algebra runs fastest on one
BLAS thread, and the spooler shares its machine with the API's workers, so one
thread is the default unless the operator chose otherwise before start.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
