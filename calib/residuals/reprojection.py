"""Reprojection residuals of known 3-D points (a calibration board) into a camera.

Slots: ``(intrinsics (M, P) Euclidean, pose (V, 4, 4) SE3 = T_cam_board)`` for any
:class:`~calib.camera.LensModel` with ``P`` parameters. Residual
``r = project(p_cam; params) - uv_observed`` with ``p_cam = T_cam_board X_board``, in pixels,
shape ``(N, 2)``. Jacobians: ``J_uv_params (N, 2, P)`` and, for a left perturbation
``(rho, phi)`` of the pose, ``J_uv_p [I, -hat(p_cam)] (N, 2, 6)``. A point outside the
model's domain (``valid`` False, e.g. behind a pinhole camera) gives a NaN residual, so the
solver rejects any step that moves a corner there.
"""

from __future__ import annotations

import numpy as np

from ..camera.base import CHUNK, LensModel
from ..camera.pinhole import PINHOLE
from .base import ResidualFamily


class BoardReprojection(ResidualFamily):
    """``N`` observations of board points.

    Args:
        board_points: ``(N, 3)`` point of each observation in the board frame (metres).
        observed: ``(N, 2)`` observed pixels.
        aspect: when set, ``fx`` is tied to ``aspect * fy`` (OpenCV's fix-aspect-ratio): the
            residual ignores the stored ``fx`` and its Jacobian column is zero (hold
            coordinate 0 constant), while ``fy``'s column carries both.
        model: the lens model (pinhole by default); its :meth:`~LensModel.project_into`
            kernel is called on chunks of :data:`~calib.camera.base.CHUNK` points.
    """

    residual_dim = 2

    def __init__(self, board_points: np.ndarray, observed: np.ndarray,
                 aspect: float | None = None, model: LensModel = PINHOLE) -> None:
        self.model = model
        self.board_points = np.ascontiguousarray(board_points, dtype=float)
        self.observed = np.ascontiguousarray(observed, dtype=float)
        self.aspect = aspect
        b = self.board_points
        self._cols = (b[:, 0].copy(), b[:, 1].copy(), b[:, 2].copy())
        self._planar = not np.any(self._cols[2])
        self._runs_of: np.ndarray | None = None  # the view index array _runs describes
        self._runs: tuple[int, int, int] | None = None

    def restrict(self, rows: slice) -> BoardReprojection:
        return BoardReprojection(self.board_points[rows], self.observed[rows], self.aspect,
                                 self.model)

    def theta(self, values: np.ndarray) -> np.ndarray:
        """Effective parameters ``(M, P)`` (with ``fx = aspect * fy`` when tied)."""
        th = np.array(values, dtype=float)
        if self.aspect is not None:
            th[:, 0] = self.aspect * th[:, 1]
        return th

    def _camera_points(self, T: np.ndarray, view: np.ndarray) -> tuple[np.ndarray, ...]:
        """Coordinate columns ``(X, Y, Z)``, each ``(N,)``, of ``T_cam_board X_board`` per
        residual; broadcast per view when the residuals come in equal-size runs of
        consecutive views (the usual full-board case)."""
        if self._runs_of is not view:
            self._runs_of, self._runs = view, _equal_runs(view)
        if self._runs is not None and self._runs[0] + self._runs[1] <= len(T):
            v0, nv, k = self._runs
            R = T[v0:v0 + nv, :3, :3]
            t = T[v0:v0 + nv, :3, 3]
            bx, by, bz = (c.reshape(nv, k) for c in self._cols)
            out = []
            for i in range(3):
                c = R[:, i, 0:1] * bx
                c += R[:, i, 1:2] * by
                if not self._planar:
                    c += R[:, i, 2:3] * bz
                c += t[:, i:i + 1]
                out.append(c.reshape(-1))
            return tuple(out)
        rot = np.take(T[:, :3, :3].reshape(-1, 9), view, axis=0).reshape(-1, 3, 3)
        pts = np.einsum("nij,nj->ni", rot, self.board_points) + np.take(T[:, :3, 3], view,
                                                                         axis=0)
        return pts[:, 0], pts[:, 1], pts[:, 2]

    def evaluate(self, values, indices, jacobians=True):
        th_all = self.theta(values[0])
        th = th_all[0] if th_all.shape[0] == 1 else th_all[indices[0]]
        pts = self._camera_points(values[1], indices[1])
        n = len(pts[0])
        npar = self.model.num_params
        uv = np.empty((n, 2))
        j_theta = np.empty((n, 2, npar)) if jacobians else None
        j_pose = np.empty((n, 2, 6)) if jacobians else None
        valid = np.empty(n, dtype=bool)
        kernel = self.model.project_into
        for s in range(0, n, CHUNK):  # chunks keep every temporary in cache
            sl = slice(s, s + CHUNK)
            jac = () if not jacobians else (j_pose[sl, :, :3], j_theta[sl], j_pose[sl, :, 3:])
            kernel(tuple(c[sl] for c in pts), th if th.ndim == 1 else th[sl], uv[sl],
                   valid[sl], *jac)
        uv -= self.observed
        if not valid.all():
            uv[~valid] = np.nan
        if not jacobians:
            return uv, None
        if self.aspect is not None:
            j_theta[:, :, 1] += self.aspect * j_theta[:, :, 0]
            j_theta[:, :, 0] = 0.0
        return uv, [j_theta, j_pose]


def _equal_runs(view: np.ndarray) -> tuple[int, int, int] | None:
    """``(first view, number of views, run length)`` when ``view`` is ``v0, .., v0`` (k
    times), ``v0 + 1, ..`` up to ``v0 + nv - 1``; else None."""
    n = len(view)
    if n == 0:
        return None
    v0 = int(view[0])
    nv = int(view[-1]) - v0 + 1
    if nv <= 0 or n % nv:
        return None
    k = n // nv
    if not np.array_equal(view, np.repeat(np.arange(v0, v0 + nv), k)):
        return None
    return v0, nv, k
