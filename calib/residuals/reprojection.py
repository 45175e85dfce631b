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
    stacked = True  # evaluate_stacked: the engine's stacked path (calib.solver.stacked)

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
        self._runs: tuple | None = None
        self._shared: np.ndarray | None = None  # one run's points when every run repeats them
        self._observed_t: np.ndarray | None = None  # observed.T, contiguous (stacked path)

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
        residual; broadcast per view when the residuals come in equal runs of one view (the
        usual full-board case)."""
        if self._runs_of is not view:
            runs = board_runs((view,), min_run=1)
            if runs is not None and not self._planar and np.any(np.diff(runs[1][0]) != 1):
                runs = None  # keeps a 3-D target's sums in the per-row order they had
            shared = None if runs is None else shared_run_points(self._cols, runs[0],
                                                                  self._planar)
            self._runs_of, self._runs, self._shared = view, runs, shared
        if self._runs is not None:
            k, (v,) = self._runs
            return tuple(apply_runs(T[v], self._cols, k, self._planar, self._shared))
        rot = np.take(T[:, :3, :3].reshape(-1, 9), view, axis=0).reshape(-1, 3, 3)
        pts = np.einsum("nij,nj->ni", rot, self.board_points) + np.take(T[:, :3, 3], view,
                                                                         axis=0)
        return pts[:, 0], pts[:, 1], pts[:, 2]

    def evaluate(self, values, indices, jacobians=True):
        th, pts = self._inputs(values, indices)
        uv, j_theta, j_pose = project_rows(self.model, pts, th, self.observed, jacobians)
        if not jacobians:
            return uv, None
        self._tie_aspect(j_theta)
        return uv, [j_theta, j_pose]

    def evaluate_stacked(self, values, indices, out):
        """``[J_params (P) | J_pose (6) | r]`` into ``out (N, 2, P + 7)`` (the
        :class:`~calib.residuals.base.ResidualFamily` protocol): the kernel writes straight
        into its columns."""
        th, pts = self._inputs(values, indices)
        p = self.model.num_params
        r = out[:, :, -1]
        project_rows(self.model, pts, th, None, True, out=(r, out[:, :, :p], out[:, :, p:p + 6]))
        if self._observed_t is None:  # (2, N): subtracted along the buffer's columns
            self._observed_t = np.ascontiguousarray(self.observed.T)
        np.subtract(r.T, self._observed_t, out=r.T)
        self._tie_aspect(out[:, :, :p])

    def _inputs(self, values, indices) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Parameters ``(P,)`` or ``(N, P)`` and camera point columns of the rows."""
        th_all = self.theta(values[0])
        th = th_all[0] if th_all.shape[0] == 1 else th_all[indices[0]]
        return th, self._camera_points(values[1], indices[1])

    def _tie_aspect(self, j_theta: np.ndarray) -> None:
        """A tied ``fx = aspect * fy``: fy's column carries both, fx's is zero."""
        if self.aspect is not None:
            j_theta[:, :, 1] += self.aspect * j_theta[:, :, 0]
            j_theta[:, :, 0] = 0.0


def project_rows(model: LensModel, pts: tuple[np.ndarray, ...], params: np.ndarray,
                 observed: np.ndarray | None, jacobians: bool = True, out: tuple | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(r (N, 2), J_uv_params (N, 2, P), J_pose (N, 2, 6))`` of camera points ``pts``
    (columns ``(X, Y, Z)``, each ``(N,)``, metres) with ``params`` ``(P,)`` or ``(N, P)``:
    ``r = project - observed`` in pixels (``observed`` None: the projections), NaN where
    the model's ``valid`` is False;
    ``J_pose = J_uv_p [I, -hat(p_cam)]`` (left perturbation of ``T_cam_*``). The model's
    :meth:`~LensModel.project_into` runs on chunks of :data:`~calib.camera.base.CHUNK`
    rows, so every temporary stays in cache. Jacobians are None unless ``jacobians``.
    ``out``: the three arrays to write into (views of one buffer may be strided)."""
    n = len(pts[0])
    if out is not None:
        r, j_params, j_pose = out
    else:
        r = np.empty((n, 2))
        j_params = np.empty((n, 2, model.num_params)) if jacobians else None
        j_pose = np.empty((n, 2, 6)) if jacobians else None
    valid = np.empty(n, dtype=bool)
    kernel = model.project_into
    for s in range(0, n, CHUNK):
        sl = slice(s, s + CHUNK)
        jac = () if not jacobians else (j_pose[sl, :, :3], j_params[sl], j_pose[sl, :, 3:])
        kernel(tuple(c[sl] for c in pts), params if params.ndim == 1 else params[sl], r[sl],
               valid[sl], *jac)
    if observed is not None:
        r -= observed
    if not valid.all():
        r[~valid] = np.nan
    return r, j_params, j_pose


def board_runs(idx: tuple[np.ndarray, ...], min_run: int = 4
               ) -> tuple[int, tuple[np.ndarray, ...]] | None:
    """``(k, per-run index of each array)`` when the rows come in runs of ``k >= min_run``
    rows (the usual full-board case) over which every index array is constant; else None."""
    n = len(idx[0])
    if n == 0:
        return None
    k = int(np.argmax(np.any([a != a[0] for a in idx], axis=0))) or n
    if k < min_run or n % k:
        return None
    out = []
    for a in idx:
        r = a.reshape(-1, k)
        if np.any(r != r[:, :1]):
            return None
        out.append(r[:, 0])
    return k, tuple(out)


def shared_run_points(cols: tuple[np.ndarray, ...], k: int, planar: bool = False
                      ) -> np.ndarray | None:
    """When every run of ``k`` rows holds the same points (the same board seen in view after
    view), those points as ``(m, k)`` rows ``[x; y; (z;) 1]`` (no z row when ``planar``), the
    matrix :func:`apply_runs` multiplies; else None."""
    b = [c.reshape(-1, k) for c in (cols[:2] if planar else cols)]
    if any(np.any(r != r[:1]) for r in b):
        return None
    return np.stack([r[0] for r in b] + [np.ones(k)])


def apply_runs(T: np.ndarray, cols: tuple[np.ndarray, ...], k: int,
               planar: bool = False, shared: np.ndarray | None = None) -> list[np.ndarray]:
    """Coordinate columns ``(N,)`` of ``T_r X`` for runs ``r`` of ``k`` rows (``T (R, 4,
    4)``, ``cols`` the ``(N,)`` columns of ``X``): each run's transform broadcast.
    ``planar``: ``X``'s z column is all zero and its term is skipped (same sums otherwise,
    so the same bits: ``x + 0.0 == x``). ``shared``: :func:`shared_run_points` of ``cols``
    when every run repeats the same points: then all runs at once by one ``(3R, m) @ (m,
    k)`` product (the same values to round-off)."""
    if shared is not None:
        m = T[:, :3, [0, 1, 3] if planar else [0, 1, 2, 3]]  # (R, 3, m)
        out = (m.transpose(1, 0, 2).reshape(-1, len(shared)) @ shared).reshape(3, -1)
        return [out[0], out[1], out[2]]
    b = [c.reshape(-1, k) for c in cols]
    out = []
    for i in range(3):
        c = T[:, i, 0:1] * b[0]
        c += T[:, i, 1:2] * b[1]
        if not planar:
            c += T[:, i, 2:3] * b[2]
        c += T[:, i, 3:4]
        out.append(c.reshape(-1))
    return out
