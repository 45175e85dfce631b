"""Distance of LiDAR points to a camera-observed board plane (camera-LiDAR extrinsics).

Slots: ``(T_camera_lidar (1, 4, 4) SE3, T_camera_board (F, 4, 4) SE3)``. A LiDAR point
``p`` (metres, LiDAR frame) on frame ``f``'s board gives
``r = w * n_f . (T_camera_lidar p - t_f)`` with ``n_f`` the board's z axis (its normal) and
``t_f`` its origin, both in the camera frame (the board plane is ``z = 0`` of the board
frame): the signed distance of the point from the plane. With ``q = T_camera_lidar p``,
the Jacobians w.r.t. left perturbations are ``w [n^T, (q x n)^T]`` for ``T_camera_lidar``
and its negative for ``T_camera_board`` (moving the plane by ``Exp(d)`` moves the point by
``Exp(-d)`` relative to it).
"""

from __future__ import annotations

import numpy as np

from .base import ResidualFamily
from .point_to_plane import cross


class BoardPlaneDistance(ResidualFamily):
    """``N`` LiDAR points ``(N, 3)``; residual ``n`` reads board pose ``indices[1][n]``;
    ``weight``: a scalar or one per point ``(N,)``."""

    residual_dim = 1

    def __init__(self, points: np.ndarray, weight: float | np.ndarray = 1.0) -> None:
        self.points = np.ascontiguousarray(points, dtype=float)
        w = np.asarray(weight, dtype=float)
        self.weight = np.broadcast_to(w, (len(self.points),)) if w.ndim else w

    def restrict(self, rows: slice) -> BoardPlaneDistance:
        return BoardPlaneDistance(self.points[rows],
                                  self.weight[rows] if self.weight.ndim else self.weight)

    def evaluate(self, values, indices, jacobians=True):
        T = values[0][0]
        board = values[1][indices[1]]
        n = board[:, :3, 2]
        q = self.points @ T[:3, :3].T + T[:3, 3]
        w = self.weight[:, None] if self.weight.ndim else self.weight
        r = np.einsum("ni,ni->n", q - board[:, :3, 3], n)[:, None] * w
        if not jacobians:
            return r, None
        j = np.concatenate([n, cross(q, n)], axis=1)[:, None, :] * (w[..., None] if
                                                                    self.weight.ndim else w)
        return r, [j, -j]
