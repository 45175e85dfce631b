"""Reprojection residuals of known 3-D points (a calibration board) into a camera.

Slots: ``(intrinsics (M, 9) Euclidean, pose (V, 4, 4) SE3 = T_cam_board)``. Residual
``r = project(T_cam_board * X_board; theta) - uv_observed`` in pixels, shape ``(N, 2)``.
Jacobians: ``(N, 2, 9)`` w.r.t. ``theta`` and ``(N, 2, 6)`` w.r.t. a left perturbation of
the pose.
"""

from __future__ import annotations

import numpy as np

from ..camera.pinhole import project
from ..lie import so3
from .base import ResidualFamily


class BoardReprojection(ResidualFamily):
    """``N`` observations of board points.

    Args:
        board_points: ``(N, 3)`` point of each observation in the board frame (metres).
        observed: ``(N, 2)`` observed pixels.
        aspect: when set, ``fx`` is tied to ``aspect * fy`` (OpenCV's fix-aspect-ratio): the
            residual ignores the stored ``fx`` and its Jacobian column is zero (hold
            coordinate 0 constant), while ``fy``'s column carries both.
    """

    residual_dim = 2

    def __init__(self, board_points: np.ndarray, observed: np.ndarray,
                 aspect: float | None = None) -> None:
        self.board_points = np.ascontiguousarray(board_points, dtype=float)
        self.observed = np.ascontiguousarray(observed, dtype=float)
        self.aspect = aspect

    def theta(self, values: np.ndarray) -> np.ndarray:
        """Effective parameters ``(M, 9)`` (with ``fx = aspect * fy`` when tied)."""
        th = np.array(values, dtype=float)
        if self.aspect is not None:
            th[:, 0] = self.aspect * th[:, 1]
        return th

    def evaluate(self, values, indices, jacobians=True):
        th_all = self.theta(values[0])
        th = th_all[0] if th_all.shape[0] == 1 else th_all[indices[0]]
        T = values[1]
        rot = np.take(T[:, :3, :3].reshape(-1, 9), indices[1], axis=0).reshape(-1, 3, 3)
        t = np.take(T[:, :3, 3], indices[1], axis=0)
        pts = np.einsum("nij,nj->ni", rot, self.board_points) + t
        if not jacobians:
            return project(pts, th) - self.observed, None
        uv, j_point, j_theta = project(pts, th, True)
        j_pose = np.empty((len(pts), 2, 6))
        j_pose[:, :, :3] = j_point
        j_pose[:, :, 3:] = -np.matmul(j_point, so3.hat(pts))
        if self.aspect is not None:
            j_theta[:, :, 1] += self.aspect * j_theta[:, :, 0]
            j_theta[:, :, 0] = 0.0
        return uv - self.observed, [j_theta, j_pose]
