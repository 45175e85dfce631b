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

    def project(self, p_cam: np.ndarray, params: np.ndarray, jacobians: bool = False):
        """Pixels of camera-frame points.

        Args:
            p_cam: ``(N, 3)`` points in the camera frame (metres).
            params: ``(P,)`` one camera, or ``(N, P)`` one per point.
            jacobians: also return the Jacobians.

        Returns:
            ``uv (N, 2)``, ``valid (N,)`` bool and, with ``jacobians``,
            ``d uv / d p_cam (N, 2, 3)`` and ``d uv / d params (N, 2, P)``.

        Runs :meth:`project_into` on chunks of :data:`CHUNK` points (every temporary of a
        chunk stays in cache).
        """
        p = np.asarray(p_cam, dtype=float).reshape(-1, 3)
        th = np.asarray(params, dtype=float)  # (P,) gives scalars: no (N, P) copies
        n, npar = len(p), self.num_params
        if th.shape not in ((npar,), (n, npar)):
            raise InputError(f"{self.name}: params must be ({npar},) or (N, {npar}), "
                             f"got {th.shape}")
        uv = np.empty((n, 2))
        valid = np.empty(n, dtype=bool)
        j_p = np.empty((n, 2, 3)) if jacobians else None
        j_t = np.empty((n, 2, npar)) if jacobians else None
        with np.errstate(divide="ignore", invalid="ignore"):  # invalid points: see valid
            for s in range(0, n, CHUNK):
                sl = slice(s, s + CHUNK)
                c = p[sl]
                self.project_into((c[:, 0], c[:, 1], c[:, 2]),
                                  th if th.ndim == 1 else th[sl], uv[sl], valid[sl],
                                  None if j_p is None else j_p[sl],
                                  None if j_t is None else j_t[sl])
        return (uv, valid) if not jacobians else (uv, valid, j_p, j_t)

    @abstractmethod
    def project_into(self, points: tuple[np.ndarray, np.ndarray, np.ndarray], th: np.ndarray,
                     uv: np.ndarray, valid: np.ndarray, j_point: np.ndarray | None = None,
                     j_theta: np.ndarray | None = None, j_rot: np.ndarray | None = None
                     ) -> None:
        """The kernel behind :meth:`project`, for the hot path of fits: writes the outputs
        for the points with coordinate columns ``points = (X, Y, Z)`` (each ``(n,)``) into
        the given arrays (which may be strided views): ``uv (n, 2)``, ``valid (n,)`` and,
        when ``j_point`` is given, ``d uv / d P`` into ``j_point (n, 2, 3)`` and ``d uv /
        d params`` into ``j_theta (n, 2, P)``; ``j_rot (n, 2, 3)``, if given, receives
        ``d uv / d phi`` for a left rotation ``Exp(phi) P`` of the point, whose rows are
        ``P x (row of d uv / d P)``. ``th`` is ``(P,)`` or ``(n, P)``. Values at invalid
        points are finite where the formulas allow but meaningless."""

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


    def to_kalibr(self, params: np.ndarray) -> tuple[list[float], list[float]]:
        """``(intrinsics, distortion_coeffs)`` in Kalibr's camchain order (default: ``[fu,
        fv, pu, pv]`` and the distortion as in OpenCV); :class:`InputError` where Kalibr has
        no such model."""
        if self.kalibr_name is None:
            raise InputError(f"Kalibr has no {self.name} model")
        p = np.asarray(params, dtype=float)
        return p[:4].tolist(), p[4:].tolist()

    def from_kalibr(self, intrinsics, coeffs) -> np.ndarray:
        """``params (P,)`` from Kalibr's ``intrinsics`` and ``distortion_coeffs`` lists
        (:class:`InputError` on wrong lengths)."""
        intr = np.asarray(intrinsics, dtype=float).ravel()
        dist = np.asarray(coeffs, dtype=float).ravel()
        if intr.size != 4 or dist.size != self.num_params - 4:
            raise InputError(f"Kalibr {self.kalibr_name} needs 4 intrinsics and "
                             f"{self.num_params - 4} distortion_coeffs, got {intr.size} and "
                             f"{dist.size}")
        return np.r_[intr, dist]


_MODELS: dict[str, LensModel] = {}


def rotation_rows(points: tuple[np.ndarray, np.ndarray, np.ndarray], u: tuple, v: tuple,
                  j_rot: np.ndarray) -> None:
    """Write ``d uv / d phi`` of a left rotation ``Exp(phi) P`` into ``j_rot (n, 2, 3)``:
    the rows ``P x u`` and ``P x v`` of ``(d uv / d P) (-hat(P))``, with ``u = (u0, u1,
    u2)`` and ``v`` the two rows of ``d uv / d P``."""
    X, Y, Z = points
    sub = np.subtract
    for row, (a0, a1, a2) in enumerate((u, v)):
        sub(Y * a2, Z * a1, out=j_rot[:, row, 0])
        sub(Z * a0, X * a2, out=j_rot[:, row, 1])
        sub(X * a1, Y * a0, out=j_rot[:, row, 2])


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
