"""How far a calibrated camera's projection can be trusted: projection uncertainty over the
image and cross-validation between fits on disjoint halves of the views.

Projection uncertainty (after mrcal's "projection uncertainty"): a pixel ``q`` of a grid over
the image is unprojected with the fitted parameters to a camera-frame ray ``v`` and placed at
``p = d v`` (``d`` the distance, or at infinity). The camera frame itself is only known
through the board poses ``T_cam_board_i`` estimated with the intrinsics, so, as in mrcal, the
point is held fixed in the boards' frames: mapped back through perturbed poses and averaged it
moves by ``dp = rho_mean + phi_mean x p``, where ``xi_mean = (rho_mean, phi_mean)`` is the
mean of the poses' left perturbations. To first order

    dq = J_params dparams + J_p (rho_mean - hat(p) phi_mean)

(``rho_mean`` drops out at infinity), whose covariance follows from the joint covariance of
the free intrinsics and ``xi_mean``. That joint covariance comes from the per-view blocks of
the Gauss-Newton information, ``A`` (intrinsics), ``W_i`` (intrinsics x pose i), ``C_i``
(pose i), with ``S = A - sum W_i C_i^-1 W_i^T`` and ``B_i = W_i C_i^-1``:

    Cov(params) = s2 S^-1
    Cov(params, xi_mean) = -s2 S^-1 sum_i B_i / V
    Cov(xi_mean) = s2 / V^2 (sum_i C_i^-1 + (sum_i B_i)^T S^-1 (sum_i B_i))

``s2`` is the residual variance. The figure reported per pixel is the worst-direction
standard deviation ``sqrt(max eig(Sigma_q))`` in pixels. Without the pose coupling (a point
fixed in the camera frame) the principal point's trade-off against the boards' rotation
would inflate the figure several-fold although the projection of the scene is well known.

Cross-validation: the views are split into two disjoint halves (even and odd positions) and
fitted separately; at each grid pixel, the difference ``dq = q_B - q_A`` of the two
projections of the ray that fit A unprojects there is compared with what their noise
explains, ``Sigma_A + Sigma_B``. The Mahalanobis ratio ``sqrt(dq^T (Sigma_A + Sigma_B)^-1 dq
/ 2)`` has an RMS of about 1 over the image when the two halves differ only by noise; well
above that, the data carry systematic error (a model too simple for the lens, a detector
bias, a board that is not flat or moved between views).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..camera.base import CHUNK, LensModel, get_model

#: Grid over the image, ``(columns, rows)``, where projection figures are evaluated.
GRID = (24, 18)
#: Cross-validation flags systematic error when the median Mahalanobis ratio exceeds this.
#: Over 40 seeded synthetic pinhole problems (12 views, 0.3 px Gaussian corner noise) the
#: ratio stayed at or below 1.12 (median 0.3); a 5% focal change between the two halves of
#: a 20-view session gave 1.7 to 3.5, 8% gave more (tests/test_uncertainty.py).
CV_RATIO_WARN = 2.0


@dataclass(frozen=True, eq=False)
class ProjectionUncertainty:
    """Worst-direction projection σ in pixels over a grid of the image.

    Attributes:
        pixels: ``(G, 2)`` grid pixels (only those the model unprojects).
        sigma_px: ``(G,)`` worst-direction σ at each grid pixel.
        covariance: ``(G, 2, 2)`` projection covariance at each grid pixel (px²).
        distance_m: distance of the projected points (``None``: at infinity).
    """

    pixels: np.ndarray
    sigma_px: np.ndarray
    covariance: np.ndarray
    distance_m: float | None

    @property
    def median(self) -> float:
        return float(np.median(self.sigma_px))

    @property
    def max(self) -> float:
        return float(np.max(self.sigma_px))

    def to_dict(self) -> dict:
        return {"median": self.median, "max": self.max,
                "distance_m": self.distance_m, "grid": list(GRID)}


@dataclass(frozen=True, eq=False)
class CrossValidation:
    """Projection difference between two fits on disjoint halves of the views.

    Attributes:
        pixels: ``(G, 2)`` grid pixels where both fits project.
        difference_px: ``(G,)`` length of the projection difference at each pixel.
        ratio: ``(G,)`` Mahalanobis ratio of the difference against the two fits' noise
            (about 1 when the halves differ by noise only).
        halves: number of views in each half.
    """

    pixels: np.ndarray
    difference_px: np.ndarray
    ratio: np.ndarray
    halves: tuple[int, int]

    @property
    def median(self) -> float:
        return float(np.median(self.difference_px))

    @property
    def max(self) -> float:
        return float(np.max(self.difference_px))

    @property
    def ratio_median(self) -> float:
        """Median over the image of the Mahalanobis ratio (about 0.8 for pure noise; the
        median, because the image corners a half's boards never reached are extrapolated
        where the linear error model no longer holds)."""
        return float(np.median(self.ratio))

    @property
    def systematic(self) -> bool:
        """True when the halves differ well beyond what noise explains."""
        return self.ratio_median > CV_RATIO_WARN

    def to_dict(self) -> dict:
        return {"median": self.median, "max": self.max, "ratio_median": self.ratio_median,
                "systematic": self.systematic, "views_per_half": list(self.halves),
                "warn_ratio": CV_RATIO_WARN}


@dataclass(frozen=True, eq=False)
class CoupledCovariance:
    """Joint covariance of a camera's free parameters and its boards' mean pose.

    Attributes:
        model: the lens model; params: ``(P,)`` its parameters.
        free: ``(F,)`` indices of the estimated parameters (the others were held).
        covariance: ``(F + 6, F + 6)`` over ``(params[free], rho_mean, phi_mean)`` (px², m²,
            rad²), scaled by the residual variance.
    """

    model: LensModel
    params: np.ndarray
    free: np.ndarray
    covariance: np.ndarray
    aspect: float | None = None

    @property
    def params_covariance(self) -> np.ndarray:
        """``(P, P)`` covariance of all parameters (zero rows/columns for held ones)."""
        n = len(self.free)
        out = np.zeros((len(self.params), len(self.params)))
        out[np.ix_(self.free, self.free)] = self.covariance[:n, :n]
        return out


def _jacobian_rows(model: LensModel, params: np.ndarray, p_cam: np.ndarray,
                   aspect: float | None, free: np.ndarray, residuals: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels ``(n, 2)``, validity ``(n,)`` and the Jacobian ``(n, 2, F + 6)`` of the
    projections of camera-frame points ``p_cam (n, 3)`` with respect to ``params[free]``
    (``fy``'s column carrying ``fx = aspect * fy`` when tied) and a left perturbation
    ``(rho, phi)`` of the points' frame: ``[J_params, J_p, J_p (-hat(p))]``, written by the
    model's kernel into one buffer; with ``residuals (n, 2)``, those as a last column
    (``(n, 2, F + 7)``)."""
    n, npar = len(p_cam), model.num_params
    extra = 0 if residuals is None else 1
    buf = np.empty((n, 2, npar + 6 + extra))
    uv = np.empty((n, 2))
    valid = np.empty(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):  # invalid points: see valid
        model.project_into((p_cam[:, 0], p_cam[:, 1], p_cam[:, 2]), params, uv, valid,
                           buf[:, :, npar:npar + 3], buf[:, :, :npar],
                           buf[:, :, npar + 3:npar + 6])
    if extra:
        buf[:, :, -1] = residuals
    if aspect is not None:
        buf[:, :, 1] += aspect * buf[:, :, 0]
    if len(free) == npar and aspect is None:  # every parameter estimated: no column copy
        return uv, valid, buf
    return uv, valid, buf[:, :, np.r_[free, npar:npar + 6 + extra]]


@dataclass(frozen=True, eq=False)
class ViewBlocks:
    """Per-view pieces of the Gauss-Newton system at a solution, from one Jacobian
    evaluation: ``A (V, F, F)`` of ``J_th^T J_th``, ``W (V, F, 6)`` of ``J_th^T J_x``,
    ``C (V, 6, 6)`` of ``J_x^T J_x``, gradients ``g_th (V, F)``, ``g_x (V, 6)`` of
    ``J^T r``; any subset of the views gives its own Schur complement from them."""

    model: LensModel
    params: np.ndarray
    free: np.ndarray
    aspect: float | None
    A: np.ndarray
    W: np.ndarray
    C: np.ndarray
    g_th: np.ndarray
    g_x: np.ndarray

    @functools.cached_property
    def C_inv(self) -> np.ndarray:
        """``(V, 6, 6)`` inverses of the pose blocks (computed once for all subsets)."""
        return np.linalg.inv(self.C)

    @functools.cached_property
    def B(self) -> np.ndarray:
        """``(V, F, 6)``: ``W_i C_i^-1``."""
        return self.W @ self.C_inv


def _view_runs(view_index: np.ndarray, nv: int) -> tuple[np.ndarray | None, np.ndarray]:
    """``(order, offsets (V + 1,))``: the rows sorted by view (``order`` None when they
    already are) and where each view's rows start in that order."""
    order = None if np.all(view_index[1:] >= view_index[:-1]) else np.argsort(view_index,
                                                                             kind="stable")
    counts = np.bincount(view_index, minlength=nv)
    return order, np.r_[0, np.cumsum(counts)]


def view_blocks(model: str | LensModel, params: np.ndarray, poses: np.ndarray,
                board_points: np.ndarray, view_index: np.ndarray, residuals: np.ndarray,
                free: np.ndarray, aspect: float | None = None) -> ViewBlocks:
    """The :class:`ViewBlocks` of a fit.

    Args:
        model, params: the fitted lens model and parameters ``(P,)``.
        poses: ``(V, 4, 4)`` fitted ``T_cam_board`` of the views used.
        board_points: ``(R, 3)`` board point of each residual row (metres).
        view_index: ``(R,)`` pose of each row (``0..V-1``).
        residuals: ``(R, 2)`` pixel residuals at the solution.
        free: indices (or a ``(P,)`` bool mask) of the estimated parameters.
        aspect: when ``fx`` is tied to ``aspect * fy`` (fx then not in ``free``).

    Works on groups of whole views of about :data:`~calib.camera.base.CHUNK` rows (every
    temporary stays in cache): each group's rows, padded with zero rows to the longest
    view, give all its views' blocks by one batched product ``[J, r]^T [J, r]``.
    """
    m = get_model(model)
    params = np.asarray(params, dtype=float)
    free = np.flatnonzero(free) if np.asarray(free).dtype == bool else np.asarray(free, int)
    nv, nf = len(poses), len(free)
    order, off = _view_runs(np.asarray(view_index, dtype=np.int64), nv)
    counts = np.diff(off)
    k = max(int(counts.max(initial=0)), 1)
    per = max(CHUNK // k, 1)
    hg = np.zeros((nv, nf + 7, nf + 7))  # [J, r]^T [J, r] per view
    for v0 in range(0, nv, per):
        v1 = min(v0 + per, nv)
        rows = slice(off[v0], off[v1]) if order is None else order[off[v0]:off[v1]]
        bp, r, pad = _padded(board_points[rows], residuals[rows], counts[v0:v1], k)
        p_cam = bp @ poses[v0:v1, :3, :3].transpose(0, 2, 1) + poses[v0:v1, None, :3, 3]
        j = _jacobian_rows(m, params, p_cam.reshape(-1, 3), aspect, free, r)[2]
        if pad is not None:
            j[pad] = 0.0
        j = j.reshape(v1 - v0, 2 * k, nf + 7)
        hg[v0:v1] = j.transpose(0, 2, 1) @ j
    return ViewBlocks(m, params, free, aspect, hg[:, :nf, :nf], hg[:, :nf, nf:nf + 6],
                      hg[:, nf:nf + 6, nf:nf + 6], hg[:, :nf, -1], hg[:, nf:nf + 6, -1])


def blocks_from_products(model: str | LensModel, params: np.ndarray, free: np.ndarray,
                         aspect: float | None, products: np.ndarray) -> ViewBlocks:
    """The :class:`ViewBlocks` of a fit from its per-view products ``products (V, P + 7, P +
    7)`` of ``[J_params (P) | J_pose (6) | r]`` at the solution (fy's column carrying ``fx
    = aspect * fy`` when tied, as the solve's; :attr:`calib.intrinsics.problem.BoardSolve.
    frame_products`): the same blocks :func:`view_blocks` forms, without its pass over the
    corners (arguments as there)."""
    m = get_model(model)
    free = np.flatnonzero(free) if np.asarray(free).dtype == bool else np.asarray(free, int)
    p = m.num_params
    pose = np.arange(p, p + 6)
    h = np.asarray(products, dtype=float)
    sub = lambda rows, cols: h[:, rows[:, None], cols]  # noqa: E731
    return ViewBlocks(m, np.asarray(params, dtype=float), free, aspect, sub(free, free),
                      sub(free, pose), sub(pose, pose), h[:, free, -1], h[:, pose, -1])


def _padded(board: np.ndarray, residuals: np.ndarray, counts: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Rows of consecutive views (``counts (v,)`` rows each, in order) laid out as ``k``
    rows per view: board points ``(v, k, 3)``, residuals ``(v * k, 2)`` and the padding
    rows ``(v * k,)`` bool (None when every view has ``k`` rows): copies of a real point,
    whose Jacobian rows the caller zeroes."""
    v = len(counts)
    if np.all(counts == k):
        return board.reshape(v, k, 3), residuals, None
    view = np.repeat(np.arange(v), counts)
    slot = view * k + np.arange(len(view)) - np.r_[0, np.cumsum(counts)][view]
    bp = np.repeat(board[:1], v * k, axis=0)
    rp = np.zeros((v * k, 2))
    pad = np.ones(v * k, dtype=bool)
    bp[slot], rp[slot], pad[slot] = board, residuals, False
    return bp.reshape(v, k, 3), rp, pad


def coupled_from_blocks(bl: ViewBlocks, views: np.ndarray, residual_variance: float,
                        step: bool = False) -> CoupledCovariance:
    """The :class:`CoupledCovariance` of the fit restricted to ``views`` (indices); with
    ``step``, at the parameters one Gauss-Newton step from the blocks' solution on those
    views alone (their own minimum, to first order)."""
    C_inv = bl.C_inv[views]
    B = bl.B[views]  # (V, F, 6)
    S = bl.A[views].sum(axis=0) - np.tensordot(B, bl.W[views], axes=([0, 2], [0, 2]))
    S_inv = np.linalg.pinv(S)
    params = bl.params.copy()
    if step:
        g = bl.g_th[views].sum(axis=0) - np.einsum("vpa,va->p", B, bl.g_x[views])
        params[bl.free] -= S_inv @ g
        if bl.aspect is not None:
            params[0] = bl.aspect * params[1]
    nv, n = len(views), len(bl.free)
    b_sum = B.sum(axis=0)
    cov = np.empty((n + 6, n + 6))
    cov[:n, :n] = S_inv
    cov[:n, n:] = -S_inv @ b_sum / nv
    cov[n:, :n] = cov[:n, n:].T
    cov[n:, n:] = (C_inv.sum(axis=0) + b_sum.T @ S_inv @ b_sum) / nv ** 2
    return CoupledCovariance(bl.model, params, bl.free, cov * residual_variance, bl.aspect)


def coupled_covariance(model: str | LensModel, params: np.ndarray, poses: np.ndarray,
                       board_points: np.ndarray, view_index: np.ndarray, free: np.ndarray,
                       residual_variance: float, aspect: float | None = None
                       ) -> CoupledCovariance:
    """The joint covariance of the free intrinsics and the boards' mean pose (module
    docstring) at a fitted solution (arguments as :func:`view_blocks`;
    ``residual_variance``: per-coordinate ``sum|e|^2 / (2R - n_free)``)."""
    zero = np.zeros((len(view_index), 2))
    bl = view_blocks(model, params, poses, board_points, view_index, zero, free, aspect)
    return coupled_from_blocks(bl, np.arange(len(poses)), residual_variance)


def grid_pixels(image_size: tuple[int, int], grid: tuple[int, int] = GRID) -> np.ndarray:
    """``(cols * rows, 2)`` pixel centres of a ``grid = (cols, rows)`` over the image, from
    the centre of the first cell to the centre of the last."""
    w, h = image_size
    u = (np.arange(grid[0]) + 0.5) * w / grid[0] - 0.5
    v = (np.arange(grid[1]) + 0.5) * h / grid[1] - 0.5
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


def _projection_cov(cc: CoupledCovariance, rays: np.ndarray, distance: float | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projections ``(G, 2)`` of the rays placed at ``distance`` (``None``: infinity), their
    covariance ``(G, 2, 2)`` and validity ``(G,)``."""
    p = rays if distance is None else rays * distance
    uv, valid, j = _jacobian_rows(cc.model, cc.params, p, cc.aspect, cc.free)
    if distance is None:
        n = len(cc.free)
        j[:, :, n:n + 3] = 0.0  # a translation does not move a point at infinity
    return uv, (j @ cc.covariance) @ j.transpose(0, 2, 1), valid


def _unproject_grid(cc: CoupledCovariance, image_size, grid, cells=None
                    ) -> tuple[np.ndarray, np.ndarray]:
    q = grid_pixels(image_size, grid)
    if cells is not None:
        q = q[cells]
    rays, ok = cc.model.unproject(q, cc.params)
    ok &= np.isfinite(rays).all(axis=1)
    return q[ok], rays[ok]


def grid_rays(cc: CoupledCovariance, image_size: tuple[int, int],
              grid: tuple[int, int] = GRID) -> np.ndarray:
    """``(cols * rows, 3)`` unit rays that ``cc`` unprojects at :func:`grid_pixels` (NaN
    where it cannot), for :func:`projection_uncertainty` at several distances."""
    rays, ok = cc.model.unproject(grid_pixels(image_size, grid), cc.params)
    rays = np.array(rays, dtype=float)
    rays[~(ok & np.isfinite(rays).all(axis=1))] = np.nan
    return rays


def projection_uncertainty(cc: CoupledCovariance, image_size: tuple[int, int],
                           distance: float | None = None, grid: tuple[int, int] = GRID,
                           rays: np.ndarray | None = None) -> ProjectionUncertainty:
    """Projection σ over the image (module docstring) for points at ``distance`` metres
    (``None``: at infinity); ``rays``: :func:`grid_rays` of ``cc`` when already at hand."""
    return projection_uncertainties(cc, image_size, (distance,), grid, rays)[0]


def projection_uncertainties(cc: CoupledCovariance, image_size: tuple[int, int],
                             distances: tuple[float | None, ...], grid: tuple[int, int] = GRID,
                             rays: np.ndarray | None = None) -> list[ProjectionUncertainty]:
    """:func:`projection_uncertainty` at each of ``distances`` from one Jacobian of the
    rays: every lens model is central (the pixel of ``d v`` does not depend on ``d``), so the
    parameter and rotation columns hold at any distance and the translation columns scale
    by ``1 / d`` (zero at infinity)."""
    q = grid_pixels(image_size, grid)
    rays = grid_rays(cc, image_size, grid) if rays is None else rays
    ok = np.isfinite(rays).all(axis=1)
    q, rays = q[ok], rays[ok]
    _, valid, j = _jacobian_rows(cc.model, cc.params, rays, cc.aspect, cc.free)
    n = len(cc.free)
    j_unit = j[:, :, n:n + 3].copy()  # translation columns at distance 1
    q, j = q[valid], j[valid]
    out = []
    for distance in distances:
        j[:, :, n:n + 3] = 0.0 if distance is None else j_unit[valid] / distance
        c = (j @ cc.covariance) @ j.transpose(0, 2, 1)
        a, b, d = c[:, 0, 0], 0.5 * (c[:, 0, 1] + c[:, 1, 0]), c[:, 1, 1]
        top = 0.5 * (a + d) + np.hypot(0.5 * (a - d), b)  # larger eigenvalue of [[a, b], [b, d]]
        out.append(ProjectionUncertainty(q, np.sqrt(np.clip(top, 0.0, None)), c, distance))
    return out


def _align_rotation(model_b: LensModel, params_b: np.ndarray, rays: np.ndarray,
                    target: np.ndarray, iterations: int = 5) -> np.ndarray:
    """Rotation ``R (3, 3)`` that best maps ``project(R v; params_b)`` onto ``target (G, 2)``
    (Gauss-Newton on a left perturbation): the two calibrations' camera frames are each
    defined through their own board poses, so they may differ by a small rotation."""
    from ..lie import so3

    R = np.eye(3)
    none = np.zeros(0, dtype=np.int64)
    for _ in range(iterations):
        uv, valid, j = _jacobian_rows(model_b, params_b, rays @ R.T, None, none)
        jr = j[valid][:, :, 3:].reshape(-1, 3)
        step = np.linalg.lstsq(jr, -(uv - target)[valid].reshape(-1), rcond=None)[0]
        R = so3.exp(step) @ R
        # each step is at most 0.07x the previous one (measured; mostly 1e-4x): after one
        # below 1e-8 rad the rest is below 1e-9 rad (1e-6 px at f = 1000 px)
        if np.linalg.norm(step) < 1e-8:
            break
    return R


def observed_cells(pixels: np.ndarray, image_size: tuple[int, int],
                   grid: tuple[int, int] = GRID, groups: np.ndarray | None = None,
                   n_groups: int = 1) -> np.ndarray:
    """``(cols * rows,)`` bool: grid cells (:func:`grid_pixels` order) holding at least one
    of the observed corner ``pixels (N, 2)``; with ``groups (N,)`` (``0..n_groups-1``),
    ``(n_groups, cols * rows)``: the cells each group's corners reached."""
    w, h = image_size
    cx = np.clip((pixels[:, 0] + 0.5) / w * grid[0], 0, grid[0] - 1).astype(int)
    cy = np.clip((pixels[:, 1] + 0.5) / h * grid[1], 0, grid[1] - 1).astype(int)
    n = grid[0] * grid[1]
    cell = cy * grid[0] + cx
    if groups is None:
        return np.bincount(cell, minlength=n) > 0
    return np.bincount(groups * n + cell, minlength=n_groups * n).reshape(n_groups, n) > 0


def compare_projections(a: CoupledCovariance, b: CoupledCovariance,
                        image_size: tuple[int, int], halves: tuple[int, int] = (0, 0),
                        grid: tuple[int, int] = GRID, cells: np.ndarray | None = None
                        ) -> CrossValidation:
    """Difference between two calibrations of one camera over the image (points at
    infinity, after the rotation that best aligns their camera frames), with the Mahalanobis
    ratio against their combined projection noise; only over the grid ``cells`` (bool, in
    :func:`grid_pixels` order) when given: where both fits saw corners, outside which
    high-order distortion terms extrapolate beyond the reach of a linear error model."""
    q, rays = _unproject_grid(a, image_size, grid, cells)
    qa, ca, va = _projection_cov(a, rays, None)
    R = _align_rotation(b.model, b.params, rays[va], qa[va])
    qb, cb, vb = _projection_cov(b, rays @ R.T, None)
    keep = va & vb & np.isfinite(qb).all(axis=1)
    d = (qb - qa)[keep]
    c = (ca + cb)[keep] + 1e-18 * np.eye(2)
    m2 = np.einsum("gi,gi->g", d, np.linalg.solve(c, d[:, :, None])[:, :, 0])
    return CrossValidation(q[keep], np.linalg.norm(d, axis=1),
                           np.sqrt(np.maximum(m2, 0.0) / 2.0), halves)


def split_halves(n_views: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint halves of ``range(n_views)``: even and odd positions (views are often taken
    in a sweep, so interleaving gives each half the same spread of poses)."""
    idx = np.arange(n_views)
    return idx[0::2], idx[1::2]


def cross_validate(refit: Callable[[np.ndarray], CoupledCovariance], n_views: int,
                   image_size: tuple[int, int], pixels: np.ndarray, view_index: np.ndarray,
                   grid: tuple[int, int] = GRID) -> CrossValidation:
    """Fit each half of the views with ``refit(view_indices) -> CoupledCovariance`` and
    compare the two calibrations (:func:`compare_projections`) over the grid cells where
    both halves saw corners (``pixels (R, 2)`` observed, ``view_index (R,)`` their views)."""
    a, b = split_halves(n_views)
    in_a = np.isin(view_index, a)
    cells = (observed_cells(pixels[in_a], image_size, grid)
             & observed_cells(pixels[~in_a], image_size, grid))
    return compare_projections(refit(a), refit(b), image_size, (len(a), len(b)), grid, cells)


def per_point_bias(residuals: np.ndarray, point_ids: np.ndarray, n_points: int,
                   sigma_px: float) -> float:
    """Reduced chi² of the per-board-point mean residuals over views: about 1 when each
    corner's error is independent noise, well above 1 when the same corner is off the same
    way in every view (a board that is not flat, a printing error, a detector bias tied to
    the corner's appearance)."""
    ids = np.asarray(point_ids, dtype=np.int64)
    cnt = np.bincount(ids, minlength=n_points).astype(float)
    seen = cnt >= 3
    if not seen.any() or sigma_px <= 0:
        return float("nan")
    mean = np.stack([np.bincount(ids, residuals[:, k], n_points) for k in (0, 1)], axis=1)
    mean[seen] /= cnt[seen, None]
    chi2 = np.sum(mean[seen] ** 2, axis=1) * cnt[seen] / sigma_px ** 2
    return float(np.mean(chi2) / 2.0)


def systematic_causes(cv: CrossValidation, radial_structure: bool, point_bias: float
                      ) -> list[str]:
    """Which systematic error the evidence points to, in words (empty if none)."""
    if not cv.systematic:
        return []
    causes = []
    if radial_structure:
        causes.append("the lens model is too simple for the lens (residuals grow with the "
                      "image radius)")
    if np.isfinite(point_bias) and point_bias > 3.0:
        causes.append(f"the same corners are off the same way in every view ({point_bias:.1f}x "
                      "the noise): a board that is not flat, a printing error or a detector "
                      "bias")
    if not causes:
        causes.append("the board may have moved or flexed between views, or the detector is "
                      "biased")
    return causes
