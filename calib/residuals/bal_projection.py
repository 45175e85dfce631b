"""BAL ("Bundle Adjustment in the Large") reprojection residuals.

Model (Agarwal et al. 2010): ``P = R X + t`` (camera frame), ``p = -P_xy / P_z`` (the camera
looks down -z), ``u = f (1 + k1 |p|^2 + k2 |p|^4) p``; residual ``u - observed`` (pixels,
image centre at the origin). Slots: camera pose ``T_cam_world`` (SE3, left perturbation),
camera intrinsics ``(f, k1, k2)`` (Euclidean), point ``X`` (Euclidean, usually Schur-
eliminated). Jacobians ``(N, 2, 6)``, ``(N, 2, 3)``, ``(N, 2, 3)``.
"""

from __future__ import annotations

import numpy as np

from .base import ResidualFamily


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take(a.reshape(len(a), -1), idx, axis=0).reshape((len(idx),) + a.shape[1:])


class BALProjection(ResidualFamily):
    """``N`` observations ``observed (N, 2)`` (pixels)."""

    residual_dim = 2

    def __init__(self, observed: np.ndarray) -> None:
        self.observed = np.ascontiguousarray(observed, dtype=float)

    def camera_points(self, values, indices) -> np.ndarray:
        """Points in the camera frame ``P (N, 3)``."""
        T = values[0]
        rot = _take(T[:, :3, :3], indices[0])
        X = _take(values[2], indices[2])
        return np.einsum("nij,nj->ni", rot, X) + _take(T[:, :3, 3], indices[0])

    def evaluate(self, values, indices, jacobians=True):
        T, K = values[0], values[1]
        rot = _take(T[:, :3, :3], indices[0])
        X = _take(values[2], indices[2])
        P = np.einsum("nij,nj->ni", rot, X) + _take(T[:, :3, 3], indices[0])
        k = _take(K, indices[1])
        f, k1, k2 = k[:, 0], k[:, 1], k[:, 2]
        inv_z = 1.0 / P[:, 2]
        p = -P[:, :2] * inv_z[:, None]
        r2 = p[:, 0] ** 2 + p[:, 1] ** 2
        dist = 1.0 + r2 * (k1 + k2 * r2)
        fd = f * dist
        res = fd[:, None] * p - self.observed
        if not jacobians:
            return res, None
        n = len(P)
        # du/dp = f dist I + f (2 k1 + 4 k2 r2) p p^T
        g = f * (2.0 * k1 + 4.0 * k2 * r2)
        dudp = g[:, None, None] * p[:, :, None] * p[:, None, :]
        dudp[:, 0, 0] += fd
        dudp[:, 1, 1] += fd
        # dp/dP = [[-1/z, 0, x/z^2], [0, -1/z, y/z^2]] = -inv_z [[1, 0, p_x], [0, 1, p_y]]
        dudP = np.empty((n, 2, 3))
        dudP[:, :, :2] = -dudp * inv_z[:, None, None]
        dudP[:, :, 2] = -np.einsum("nij,nj->ni", dudp, p) * inv_z[:, None]
        # d(Exp(d) T X)/d d = [I, -hat(P)]
        j_pose = np.empty((n, 2, 6))
        j_pose[:, :, :3] = dudP
        x, y, z = P[:, 0, None], P[:, 1, None], P[:, 2, None]
        a, b, c = dudP[:, :, 0], dudP[:, :, 1], dudP[:, :, 2]
        j_pose[:, :, 3] = -b * z + c * y
        j_pose[:, :, 4] = a * z - c * x
        j_pose[:, :, 5] = -a * y + b * x
        j_k = np.empty((n, 2, 3))
        j_k[:, :, 0] = dist[:, None] * p
        j_k[:, :, 1] = (f * r2)[:, None] * p
        j_k[:, :, 2] = (f * r2 * r2)[:, None] * p
        j_x = np.matmul(dudP, rot)
        return res, [j_pose, j_k, j_x]
