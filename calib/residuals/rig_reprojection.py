"""Reprojection of board points into the cameras of a rig.

Slots: ``(intrinsics (C_m, P) Euclidean, T_cam_rig (C, 4, 4) SE3, T_rig_board (V, 4, 4)
SE3)`` for one :class:`~calib.camera.LensModel` with ``P`` parameters. With
``p_rig = T_rig_board X_board`` and ``p_cam = T_cam_rig p_rig`` the residual is
``r = project(p_cam; params) - uv_observed`` in pixels, shape ``(N, 2)``.

Jacobians (left perturbations ``(rho, phi)``, conventions in :mod:`calib.lie`):
``J_uv_params (N, 2, P)``; ``J_uv_p [I, -hat(p_cam)] (N, 2, 6)`` for ``T_cam_rig`` and
``J_uv_p R_cam_rig [I, -hat(p_rig)] (N, 2, 6)`` for ``T_rig_board``. The row
``a^T (-hat(p))`` is ``(p x a)^T``. A point outside the model's domain (``valid`` False)
gives a NaN residual, so the solver rejects any step that moves a corner there.
"""

from __future__ import annotations

import numpy as np

from ..camera.base import LensModel
from .base import ResidualFamily
from .reprojection import apply_runs, board_runs, project_rows


def _act_rows(T: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``R_n p_n + t_n`` for ``T (N, 4, 4)``, ``p (N, 3)`` -> ``(N, 3)`` (column sums, no
    einsum: about 3x faster for 3x3 blocks)."""
    return (T[:, :3, 0] * p[:, 0:1] + T[:, :3, 1] * p[:, 1:2] + T[:, :3, 2] * p[:, 2:3]
            + T[:, :3, 3])


def _cross_into(out: np.ndarray, p: np.ndarray, a: np.ndarray) -> None:
    """``out[n, k] = p[n] x a[n, k]`` for ``p (N, 3)``, ``a (N, 2, 3)`` (np.cross's
    broadcasting costs more than these six products)."""
    x, y, z = p[:, None, 0], p[:, None, 1], p[:, None, 2]
    ax, ay, az = a[:, :, 0], a[:, :, 1], a[:, :, 2]
    np.subtract(y * az, z * ay, out=out[:, :, 0])
    np.subtract(z * ax, x * az, out=out[:, :, 1])
    np.subtract(x * ay, y * ax, out=out[:, :, 2])


class RigReprojection(ResidualFamily):
    """``N`` observations of board points by the cameras of a rig.

    Args:
        model: the lens model of every camera this family serves.
        board_points: ``(N, 3)`` point of each observation in the board frame (metres).
        observed: ``(N, 2)`` observed pixels.

    Rows that come in equal runs of one camera and one frame (whole boards, as
    :mod:`calib.rig.fit` orders them) are evaluated per run: one ``T_cam_rig T_rig_board``
    per run broadcast over its points, as :class:`~calib.residuals.reprojection.
    BoardReprojection` does per view, instead of a 4x4 gather per row.
    """

    residual_dim = 2

    def __init__(self, model: LensModel, board_points: np.ndarray,
                 observed: np.ndarray) -> None:
        self.model = model
        self.board_points = np.ascontiguousarray(board_points, dtype=float)
        self.observed = np.ascontiguousarray(observed, dtype=float)
        self._cols = tuple(self.board_points[:, i].copy() for i in range(3))
        self._planar = not np.any(self._cols[2])
        self._key: tuple | None = None  # the index arrays _layout describes (held)
        self._layout: tuple | None = None

    def restrict(self, rows: slice) -> RigReprojection:
        return RigReprojection(self.model, self.board_points[rows], self.observed[rows])

    def points(self, values, indices) -> tuple[np.ndarray, np.ndarray]:
        """``(p_rig (N, 3), p_cam (N, 3))`` of every observation."""
        p_rig = _act_rows(values[2][indices[2]], self.board_points)
        return p_rig, _act_rows(values[1][indices[1]], p_rig)

    def _geometry(self, values, indices):
        """``(p_rig (N, 3), p_cam columns, R_cam_rig: (R, 3, 3) per run or (N, 3, 3),
        run length k or None)``."""
        if self._key is None or any(a is not b for a, b in zip(self._key, indices,
                                                              strict=True)):
            self._key, self._layout = tuple(indices), board_runs(tuple(indices))
        if self._layout is None:
            T_cam = values[1][indices[1]]
            p_rig = _act_rows(values[2][indices[2]], self.board_points)
            p_cam = _act_rows(T_cam, p_rig)
            return p_rig, (p_cam[:, 0], p_cam[:, 1], p_cam[:, 2]), T_cam[:, :3, :3], None
        k, (_, rc, rf) = self._layout
        T_rb, T_cr = values[2][rf], values[1][rc]
        p_rig = np.stack(apply_runs(T_rb, self._cols, k, self._planar), axis=1)
        p_cam = apply_runs(T_cr @ T_rb, self._cols, k, self._planar)
        return p_rig, tuple(p_cam), T_cr[:, :3, :3], k

    def evaluate(self, values, indices, jacobians=True):
        th = np.asarray(values[0], dtype=float)
        params = th[0] if th.shape[0] == 1 else th[indices[0]]
        p_rig, pc, R_cam, k = self._geometry(values, indices)
        n = len(p_rig)
        # d uv / d p_cam and d uv / d phi (left rotation of p_cam) are T_cam_rig's block
        r, j_params, j_cam = project_rows(self.model, pc, params, self.observed, jacobians)
        if not jacobians:
            return r, None
        j_board = np.empty((n, 2, 6))
        a = j_board[:, :, :3]  # J_uv_p R_cam_rig
        jp = j_cam[:, :, :3]
        if k is None:
            np.matmul(jp, R_cam, out=a)
        else:  # R_cam per run, broadcast over its k rows
            jr, ar = jp.reshape(-1, k, 2, 3), a.reshape(-1, k, 2, 3)
            R = R_cam[:, None, None]  # (R, 1, 1, 3, 3)
            for m in range(3):
                ar[..., m] = (jr[..., 0] * R[..., 0, m] + jr[..., 1] * R[..., 1, m]
                              + jr[..., 2] * R[..., 2, m])
        _cross_into(j_board[:, :, 3:], p_rig, a)
        return r, [j_params, j_cam, j_board]
