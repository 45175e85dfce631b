"""The lens-model interface: one stateless class per model, the parameter vector held by
the caller (the solver owns it).

Every model maps camera-frame points ``p_cam (N, 3)`` (metres; conventions in
:mod:`calib.lie`) to pixels ``uv (N, 2)`` (pixel (0, 0) is the centre of the top-left
pixel, as in OpenCV) through a parameter vector ``params (P,)`` ordered
``param_names``: ``fx, fy, cx, cy`` then the distortion in OpenCV's order for that model
(pinhole ``k1, k2, p1, p2, k3``; rational ``k1, k2, p1, p2, k3, k4, k5, k6``; fisheye
``k1, k2, k3, k4``; double-sphere ``xi, alpha``).

A model's ``name`` is the string in calib's reports and files (``pinhole``, ``rational``,
``fisheye``, ``double-sphere``); ``kalibr_name`` / ``ros_name`` are the names other tools
use (``None`` where they have no such model). Kernels return a ``valid`` mask (a point
outside the model's domain, e.g. behind a pinhole camera, is not valid); only
:class:`calib.camera.Camera`-level helpers turn invalid points into NaN.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..errors import InputError

#: Points per chunk in :meth:`LensModel.project`: the ~30 temporaries of a chunk stay in
#: cache and below malloc's mmap threshold.
CHUNK = 4096


class LensModel(ABC):
    """A lens model (see module docstring). Subclasses set the class attributes and
    implement :meth:`project` and :meth:`unproject`."""

    name: ClassVar[str]
    kalibr_name: ClassVar[str | None] = None
    ros_name: ClassVar[str | None] = None
    param_names: ClassVar[tuple[str, ...]]

    @property
    def num_params(self) -> int:
        return len(self.param_names)

    @property
    def dist_names(self) -> tuple[str, ...]:
        """Distortion parameter names, in OpenCV's (file) order."""
        return self.param_names[4:]

    @abstractmethod
    def project(self, p_cam: np.ndarray, params: np.ndarray, jacobians: bool = False):
        """Pixels of camera-frame points.

        Args:
            p_cam: ``(N, 3)`` points in the camera frame (metres).
            params: ``(P,)`` one camera, or ``(N, P)`` one per point.
            jacobians: also return the Jacobians.

        Returns:
            ``uv (N, 2)``, ``valid (N,)`` bool and, with ``jacobians``,
            ``d uv / d p_cam (N, 2, 3)`` and ``d uv / d params (N, 2, P)``.
        """

    def project_into(self, points: tuple[np.ndarray, np.ndarray, np.ndarray], th: np.ndarray,
                     uv: np.ndarray, valid: np.ndarray, j_point: np.ndarray | None = None,
                     j_theta: np.ndarray | None = None, j_rot: np.ndarray | None = None
                     ) -> None:
        """The kernel behind :meth:`project`, for the hot path of fits: writes the outputs
        for the points with coordinate columns ``points = (X, Y, Z)`` into the given arrays
        (may be strided views): ``uv (n, 2)``, ``valid (n,)``, ``j_point (n, 2, 3)``,
        ``j_theta (n, 2, P)`` and ``j_rot (n, 2, 3)`` = rows ``P x (row of d uv / d P)``."""
        p = np.stack(points, axis=1)
        if j_point is None:
            uv[:], valid[:] = self.project(p, th)
            return
        uv[:], valid[:], j_point[:], j_theta[:] = self.project(p, th, True)
        if j_rot is not None:
            j_rot[:] = np.cross(p[:, None, :], j_point)

    @abstractmethod
    def unproject(self, uv: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit rays ``(N, 3)`` in the camera frame of pixels ``uv (N, 2)`` and ``valid (N,)``
        (False where the pixel is outside the region where the model is invertible)."""

    def initial_params(self, K: np.ndarray) -> np.ndarray:
        """A start ``(P,)`` from a pinhole matrix ``K (3, 3)``: zero distortion (models whose
        neutral distortion is not zero override this)."""
        p = np.zeros(self.num_params)
        p[:4] = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        return p

    def to_opencv(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K (3, 3), dist (P - 4,))`` in OpenCV's order for this model."""
        p = np.asarray(params, dtype=float)
        K = np.array([[p[0], 0.0, p[2]], [0.0, p[1], p[3]], [0.0, 0.0, 1.0]])
        return K, p[4:].copy()

    def from_opencv(self, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """``params (P,)`` from ``K (3, 3)`` and this model's coefficients in OpenCV's order
        (fewer coefficients are zero-padded; extra non-zero ones are refused)."""
        K = np.asarray(K, dtype=float)
        if K.shape != (3, 3) or abs(K[0, 1]) > 1e-12:
            raise InputError("K must be 3x3 with zero skew")
        nd = self.num_params - 4
        dd = np.asarray(dist, dtype=float).ravel()
        if dd.size > nd and np.any(dd[nd:] != 0):
            raise InputError(f"the {self.name} model has {nd} distortion coefficients "
                             f"({', '.join(self.dist_names)}); got {dd.size}")
        d = np.zeros(nd)
        d[:min(nd, dd.size)] = dd[:nd]
        return np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], d]


_MODELS: dict[str, LensModel] = {}


def register_model(model: LensModel) -> LensModel:
    """Add ``model`` to the registry under its ``name``; returns it."""
    _MODELS[model.name] = model
    return model


def get_model(name: str | LensModel) -> LensModel:
    """The registered model called ``name`` (calib's, Kalibr's or ROS's name), or
    :class:`InputError` listing the known ones."""
    if isinstance(name, LensModel):
        return name
    key = str(name).strip().lower()
    for m in _MODELS.values():
        if key in (m.name, m.kalibr_name, m.ros_name):
            return m
    raise InputError(f"unknown camera model {name!r}; choose one of {', '.join(_MODELS)}")


def model_names() -> tuple[str, ...]:
    """Names of the registered models, in registration order."""
    return tuple(_MODELS)
