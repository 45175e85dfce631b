"""Reprojection residuals of known 3-D points (a calibration board) into a camera.

Slots: ``(intrinsics (M, 9) Euclidean, pose (V, 4, 4) SE3 = T_cam_board)``. Residual
``r = project(T_cam_board * X_board; theta) - uv_observed`` in pixels, shape ``(N, 2)``.
Jacobians: ``(N, 2, 9)`` w.r.t. ``theta`` and ``(N, 2, 6)`` w.r.t. a left perturbation of
the pose.
"""

from __future__ import annotations

import numpy as np

from ..camera.pinhole import CHUNK, _project_into, project
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
        self._blocks: bool | None = None  # residuals grouped by view in equal blocks?
        self._nviews: int | None = None

    def theta(self, values: np.ndarray) -> np.ndarray:
        """Effective parameters ``(M, 9)`` (with ``fx = aspect * fy`` when tied)."""
        th = np.array(values, dtype=float)
        if self.aspect is not None:
            th[:, 0] = self.aspect * th[:, 1]
        return th

    def _camera_points(self, T: np.ndarray, view: np.ndarray) -> np.ndarray:
        """``T_cam_board X`` per residual; one batched matmul when the residuals are grouped
        by view in equal-size blocks (the usual full-board case)."""
        if self._blocks is None:
            counts = np.bincount(view, minlength=len(T))
            n = len(view)
            self._blocks = bool(len(T) and n == counts[0] * len(T) and np.all(counts == counts[0])
                                and np.array_equal(view, np.repeat(np.arange(len(T)), counts[0])))
        if self._blocks and len(T) == self._nviews:
            k = len(view) // len(T)
            pts = np.matmul(self.board_points.reshape(len(T), k, 3),
                            T[:, :3, :3].transpose(0, 2, 1)) + T[:, None, :3, 3]
            return pts.reshape(-1, 3)
        rot = np.take(T[:, :3, :3].reshape(-1, 9), view, axis=0).reshape(-1, 3, 3)
        return np.einsum("nij,nj->ni", rot, self.board_points) + np.take(T[:, :3, 3], view,
                                                                          axis=0)

    def evaluate(self, values, indices, jacobians=True):
        th_all = self.theta(values[0])
        th = th_all[0] if th_all.shape[0] == 1 else th_all[indices[0]]
        T = values[1]
        if self._nviews is None:
            self._nviews = len(T)
        pts = self._camera_points(T, indices[1])
        if not jacobians:
            return project(pts, th) - self.observed, None
        n = len(pts)
        uv = np.empty((n, 2))
        j_theta = np.empty((n, 2, 9))
        j_pose = np.empty((n, 2, 6))
        for s in range(0, n, CHUNK):  # chunks keep every temporary in cache
            sl = slice(s, s + CHUNK)
            p = pts[sl]
            jp = j_pose[sl]
            _project_into(p, th if th.ndim == 1 else th[sl], uv[sl], jp[:, :, :3], j_theta[sl])
            # d/d phi of Exp(phi) P: row j times -hat(P) equals P x j
            x, y, z = p[:, 0], p[:, 1], p[:, 2]
            for i in (0, 1):
                a, b, c = jp[:, i, 0], jp[:, i, 1], jp[:, i, 2]
                jp[:, i, 3] = y * c - z * b
                jp[:, i, 4] = z * a - x * c
                jp[:, i, 5] = x * b - y * a
        if self.aspect is not None:
            j_theta[:, :, 1] += self.aspect * j_theta[:, :, 0]
            j_theta[:, :, 0] = 0.0
        return uv - self.observed, [j_theta, j_pose]
