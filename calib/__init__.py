"""calib: camera and point-cloud calibration on one sparse Levenberg-Marquardt engine.

Public API (imported lazily so ``import calib`` stays light):

* intrinsics: :func:`fit_intrinsics`, :func:`detect_chessboard`, :class:`IntrinsicsResult`,
  :class:`Camera` (any lens model; :class:`CameraModel` is the same class)
* registration: :func:`register`, :class:`RegistrationResult`
* extrinsics: :func:`calibrate_hand_eye`, :func:`calibrate_camera_lidar` and results
* bundle adjustment: :func:`bundle_adjust`, :class:`BundleAdjustmentResult`,
  :func:`read_bal`, :func:`write_bal`
* camera rigs: :func:`fit_rig`, :class:`RigResult`
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
    "Camera": "calib.camera",
    "register": "calib.registration",
    "RegistrationResult": "calib.registration",
    "bundle_adjust": "calib.bundle",
    "BundleAdjustmentResult": "calib.bundle",
    "read_bal": "calib.bundle",
    "write_bal": "calib.bundle",
    "calibrate_hand_eye": "calib.extrinsics",
    "HandEyeResult": "calib.extrinsics",
    "calibrate_camera_lidar": "calib.extrinsics",
    "CameraLidarResult": "calib.extrinsics",
    "fit_rig": "calib.rig",
    "RigResult": "calib.rig",
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
