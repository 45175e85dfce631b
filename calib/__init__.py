"""calib: camera and point-cloud calibration on one sparse Levenberg-Marquardt engine.

Public API (imported lazily so ``import calib`` stays light):

* intrinsics: :func:`fit_intrinsics`, :func:`detect_chessboard`, :class:`IntrinsicsResult`,
  :class:`CameraModel`
* registration: :func:`register`, :class:`RegistrationResult`
* bundle adjustment: :func:`bundle_adjust`, :class:`BundleAdjustmentResult`,
  :func:`read_bal`, :func:`write_bal`
* errors: :class:`CalibError` and its subclasses.

Conventions (frames, twists, perturbations, units): :mod:`calib.lie`.
"""

from __future__ import annotations

import importlib

from .errors import CalibError, DegenerateError, InputError, NotConvergedError

_LAZY = {
    "fit_intrinsics": "calib.intrinsics",
    "detect_chessboard": "calib.intrinsics",
    "IntrinsicsResult": "calib.intrinsics",
    "CameraModel": "calib.camera",
    "register": "calib.registration",
    "RegistrationResult": "calib.registration",
    "bundle_adjust": "calib.bundle",
    "BundleAdjustmentResult": "calib.bundle",
    "read_bal": "calib.bundle",
    "write_bal": "calib.bundle",
}

__all__ = ["CalibError", "DegenerateError", "InputError", "NotConvergedError", "__version__",
           *_LAZY]


def _package_version() -> str:
    try:  # importlib.metadata takes 70 ms to import: only when the version is asked for
        from importlib.metadata import version

        return version("calib")
    except Exception:  # not installed (running from a source tree)
        return "0.1.0"


def __getattr__(name: str):
    if name == "__version__":
        globals()["__version__"] = _package_version()
        return globals()["__version__"]
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'calib' has no attribute {name!r}")
