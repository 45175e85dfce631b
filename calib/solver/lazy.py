"""scipy for the paths that need it, imported on first use.

The dense path of small problems (an ICP pose, a hand-eye or a tiny bundle adjustment) uses
numpy alone, so a process that only registers clouds never imports ``scipy.linalg`` and
``scipy.sparse`` (0.24-0.28 s of CPU at start-up, half of ``calib register-clouds``' gap to
an Open3D script); the sparse, banded and Schur paths import them here. ``scipy.linalg``
loads a BLAS library of its own, which the thread policy (:mod:`.threads`) is told about.
"""

from __future__ import annotations

from types import ModuleType

from . import threads

_linalg: ModuleType | None = None


def scipy_linalg() -> ModuleType:
    """``scipy.linalg`` (its OpenBLAS registered with the thread policy on first import)."""
    global _linalg
    if _linalg is None:
        import scipy.linalg

        _linalg = scipy.linalg
        threads.rescan()
    return _linalg


def scipy_sparse() -> ModuleType:
    """``scipy.sparse`` (no BLAS of its own)."""
    import scipy.sparse

    return scipy.sparse


def scipy_sparse_linalg() -> ModuleType:
    """``scipy.sparse.linalg`` (imports ``scipy.linalg``)."""
    import scipy.sparse.linalg

    scipy_linalg()
    return scipy.sparse.linalg
