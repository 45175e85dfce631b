"""Entry point of a detection worker process: ``python -m calib.targets._worker JOBS RESULTS``
(file descriptors of the two pipes; see :mod:`calib.targets.detect`)."""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection

from .detect import _worker_loop

if __name__ == "__main__":
    _worker_loop(Connection(int(sys.argv[1]), writable=False),
                 Connection(int(sys.argv[2]), readable=False))
