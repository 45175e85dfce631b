"""BAL ("Bundle Adjustment in the Large") reprojection residuals.

Model (Agarwal et al. 2010): ``P = R X + t`` (camera frame), ``p = -P_xy / P_z`` (the camera
looks down -z), ``u = f (1 + k1 |p|^2 + k2 |p|^4) p``; residual ``u - observed`` (pixels,
image centre at the origin). Slots: camera pose ``T_cam_world`` (SE3, left perturbation),
camera intrinsics ``(f, k1, k2)`` (Euclidean), point ``X`` (Euclidean, usually Schur-
eliminated). Jacobians ``(N, 2, 6)``, ``(N, 2, 3)``, ``(N, 2, 3)``.
"""

from __future__ import annotations

import numpy as np

from .._native import kernels as _kernels
from .base import ResidualFamily


def _index(i: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(i, dtype=np.int64)


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take(a.reshape(len(a), -1), idx, axis=0).reshape((len(idx),) + a.shape[1:])


class BALProjection(ResidualFamily):
    """``N`` observations ``observed (N, 2)`` (pixels)."""

    residual_dim = 2

    def __init__(self, observed: np.ndarray) -> None:
        self.observed = np.ascontiguousarray(observed, dtype=float)

    #: fewest observations evaluated in row chunks: below, the whole family's Jacobian
    #: (192 bytes a row) stays under glibc's 32 MB mmap ceiling and is reused from the heap,
    #: and whole-family numpy calls are cheaper than more of them (problem-49, 31,843 rows:
    #: 2.43 s CPU whole, 2.57 s in 8 chunks); above it every linearization faulted its fresh
    #: arrays in (1,000 cameras / 500k rows: 17.6 -> 11.6 s of evaluation, peak RSS
    #: 758 -> 686 MB in chunks)
    CHUNK_MIN_ROWS = 1 << 17

    def restrict(self, rows: slice) -> BALProjection | None:
        """The observations ``rows``, or ``None`` (evaluate whole) for small problems."""
        if len(self.observed) < self.CHUNK_MIN_ROWS:
            return None
        return BALProjection(self.observed[rows])

    def camera_points(self, values, indices) -> np.ndarray:
        """Points in the camera frame ``P (N, 3)``."""
        T = values[0]
        rot = _take(T[:, :3, :3], indices[0])
        X = _take(values[2], indices[2])
        return np.einsum("nij,nj->ni", rot, X) + _take(T[:, :3, 3], indices[0])

    def evaluate(self, values, indices, jacobians=True):
        """Residuals ``(N, 2)`` and Jacobians ``[(N, 2, 6), (N, 2, 3), (N, 2, 3)]`` (views of
        one ``(N, 2, 12)`` buffer), one observation at a time in compiled code
        (``csrc/bal.c``): numpy spent 60 calls on whole columns, each several times
        the arithmetic on BAL's sizes.

        With ``P = (x, y, z)``, ``p = -P_xy / z``, ``g = f (2 k1 + 4 k2 |p|^2)``:
        ``du/dp = f dist I + g p p^T``, ``dp/dP = -1/z [I | p]``; the pose columns are
        ``du/dP [I, -hat(P)]`` (left perturbation), the intrinsics ``(dist, f |p|^2,
        f |p|^4) p``, the point ``du/dP R``."""
        n = len(self.observed)
        res = np.empty((n, 2))
        J = np.empty((n, 2, 12)) if jacobians else None
        _kernels.bal_project(values[0], values[1], values[2], _index(indices[0]),
                             _index(indices[1]), _index(indices[2]), self.observed, res, J)
        if J is None:
            return res, None
        return res, [J[:, :, :6], J[:, :, 6:9], J[:, :, 9:]]
