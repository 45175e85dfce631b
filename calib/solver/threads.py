"""How many BLAS threads the solver uses (the thread policy).

The engine works on many small dense blocks (per-view 9x9 and 6x6 products, per-point 3x3
inverses) and on reduced systems of at most ``dense_max_size`` (2,500) unknowns. On such
work OpenBLAS's extra threads mostly spin and contend: on the 2-core development machine
two threads made a 100-view intrinsics fit 2.3x slower and a 2,500-unknown Cholesky 1.1-3x
slower, depending on the load (bench/RESULTS.md, "BLAS threads"). The solver therefore runs
with one BLAS thread unless told otherwise:

* ``CALIB_BLAS_THREADS=N`` (a positive integer): N threads inside the solver;
* ``CALIB_BLAS_THREADS=default``: leave the BLAS library's own setting alone (what
  ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` say, else all cores).

The limit is applied with ``threadpoolctl`` around each solve and each task entry point
(:func:`blas_policy`: ``fit_intrinsics``, ``register``, ``bundle_adjust``, whose set-up and
diagnostics work on the same small matrices) and restored afterwards, so code around calib
keeps its own threads. Limits are process-wide: two solves running at the
same time in two threads of one process share them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..errors import InputError

ENV_VAR = "CALIB_BLAS_THREADS"
_controller = None
_limited: int | None = None  # the limit an enclosing blas_threads() set
_late: list = []  # limiters of libraries found by rescan() inside a limited block
_scanned_scipy = False  # was scipy's BLAS (scipy.linalg) loaded when _controller scanned?


def solver_threads() -> int | None:
    """BLAS threads for the solver: ``None`` leaves the library's own setting."""
    value = os.environ.get(ENV_VAR, "").strip().lower()
    if value in ("", "1"):
        return 1
    if value == "default":
        return None
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{ENV_VAR}={value!r}: give a positive number of threads or 'default'")
    return n


@contextmanager
def blas_threads() -> Iterator[None]:
    """Run the enclosed block with :func:`solver_threads` BLAS threads.

    Nested blocks (a task entry point's solves) keep the outermost limit: only the
    outermost one sets and restores it (threadpoolctl's get and set cost ~30 us, once per
    ICP pose solve before)."""
    global _controller, _limited
    n = solver_threads()
    if n is None or _limited == n:
        yield
        return
    if _controller is None:
        _controller = _scan()
    outer, late = _limited, len(_late)
    with _controller.limit(limits=n, user_api="blas"):
        _limited = n
        try:
            yield
        finally:
            _limited = outer
            while len(_late) > late:  # libraries limited by rescan() inside this block
                _late.pop().restore_original_limits()


def rescan() -> None:
    """Find BLAS libraries loaded since the policy last looked (scipy's, imported lazily by
    :mod:`.lazy`); inside a limited block they are limited too, until it ends."""
    global _controller
    if _controller is None or _scanned_scipy:
        return  # the first block scans whatever is loaded then; scipy's BLAS seen already
    _controller = _scan()
    if _limited is not None:
        _late.append(_controller.limit(limits=_limited, user_api="blas"))


def _scan():
    """A threadpoolctl controller of the BLAS libraries loaded now (5-8 ms)."""
    global _scanned_scipy
    import sys

    from threadpoolctl import ThreadpoolController

    _scanned_scipy = "scipy.linalg" in sys.modules
    return ThreadpoolController()


def blas_policy(func: Callable) -> Callable:
    """Decorator for a task entry point: run it under :func:`blas_threads`."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with blas_threads():
            return func(*args, **kwargs)

    return wrapper
