"""The trust figures' building blocks (calib.intrinsics.uncertainty) against independent
computations: per-view Gauss-Newton blocks against numerical Jacobians and a dense J^T J,
the halves' one-step estimates and covariances against the dense normal equations,
projection covariances against a numerical Jacobian, point ids against np.unique."""

from __future__ import annotations

import numpy as np
import pytest

import calib.intrinsics.uncertainty as unc
from calib.camera import get_model
from calib.camera.pinhole import PINHOLE, project
from calib.intrinsics import Chessboard, FitOptions, fit_intrinsics
from calib.intrinsics.fit import _point_ids, camera_solution
from calib.lie import se3
from calib.solver import SE3Manifold
from calib.testing import numeric_jacobian
from calib_datasets.board_render import random_poses

THETA = np.array([800.0, 802.0, 320.0, 240.0, -0.2, 0.05, 0.001, -0.001, 0.0])
SIZE = (640, 480)
BOARD = Chessboard(9, 6, 0.03).object_points()


def _problem(seed: int, n_views: int, partial: bool):
    """A fitted pinhole problem: ``(result, board rows (R, 3), view of each row (R,))``;
    with ``partial`` each view keeps a random 50-100% of its corners and the rows are
    shuffled (views neither equal nor contiguous)."""
    rng = np.random.default_rng(seed)
    poses = random_poses(n_views, 9, 6, 0.03, THETA, SIZE, rng)
    keep = [rng.random(len(BOARD)) < (rng.uniform(0.5, 1.0) if partial else 2.0)
            for _ in poses]
    obj = [BOARD[k] for k in keep]
    img = [project(se3.act(T, o), THETA) + rng.normal(0, 0.3, (len(o), 2))
           for T, o in zip(poses, obj, strict=True)]
    res = fit_intrinsics(obj, img, SIZE, trust=False)
    return res, np.concatenate(obj), np.repeat(np.arange(n_views), [len(o) for o in obj])


def _residuals(model, params, pose, board, observed):
    return model.project(se3.act(pose, board), params)[0] - observed


def _numeric_blocks(model, params, poses, board, view, observed, free, aspect):
    """``(A, W, C, g_th, g_x)`` per view from central differences of the residuals with
    respect to ``params[free]`` (``fx = aspect * fy`` when tied) and each pose's left
    perturbation."""
    def with_free(x):
        p = params.copy()
        p[free] = x
        if aspect is not None:
            p[0] = aspect * p[1]
        return p

    out = [[] for _ in range(5)]
    for v in range(len(poses)):
        b, o = board[view == v], observed[view == v]
        r = _residuals(model, params, poses[v], b, o).ravel()
        jt = numeric_jacobian(lambda x, b=b, o=o, v=v: _residuals(model, with_free(x), poses[v],
                                                                  b, o), params[free], eps=1e-4)
        jx = numeric_jacobian(lambda T, b=b, o=o: _residuals(model, params, T, b, o), poses[v],
                              manifold=SE3Manifold())
        for lst, val in zip(out, (jt.T @ jt, jt.T @ jx, jx.T @ jx, jt.T @ r, jx.T @ r),
                            strict=True):
            lst.append(val)
    return [np.stack(x) for x in out]


@pytest.mark.parametrize("model_name,aspect,partial", [
    ("pinhole", None, False), ("pinhole", 1.0025, True), ("fisheye", None, True)])
def test_view_blocks_match_numerical_jacobians(monkeypatch, model_name, aspect, partial):
    """Equal and unequal views, rows out of view order, views split over several groups
    (a small chunk), a tied aspect and held parameters: every block agrees with the one
    from numerical derivatives."""
    res, board, view = _problem(3, 7, partial)
    model = get_model(model_name)
    params = (res.camera.params.copy() if model_name == "pinhole"
              else np.array([790.0, 795.0, 322.0, 238.0, 0.01, -0.02, 0.003, 0.0]))
    free = np.array([1, 2, 3, 4, 5]) if aspect is not None else np.arange(model.num_params)
    if aspect is not None:
        params[0] = aspect * params[1]
    order = np.random.default_rng(0).permutation(len(view))
    board, view, observed = board[order], view[order], res.points_px[order]
    r = np.concatenate([_residuals(model, params, res.poses[v], board[i:i + 1],
                                   observed[i:i + 1]) for i, v in enumerate(view)])
    monkeypatch.setattr(unc, "CHUNK", 120)  # two or three views per group
    bl = unc.view_blocks(model, params, res.poses, board, view, r, free, aspect)
    ref = _numeric_blocks(model, params, res.poses, board, view, observed, free, aspect)
    for got, want in zip((bl.A, bl.W, bl.C), ref[:3], strict=True):
        scale = np.abs(want).max(axis=(1, 2), keepdims=True)
        np.testing.assert_array_less(np.abs(got - want) / scale, 2e-6)
    rnorm = np.sqrt(np.bincount(view, np.sum(r * r, axis=1)))
    for got, want, info in ((bl.g_th, ref[3], ref[0]), (bl.g_x, ref[4], ref[2])):
        # gradients near a minimum cancel: compared on the scale |J column| |r|
        scale = np.sqrt(np.einsum("vii->vi", info)) * rnorm[:, None]
        np.testing.assert_array_less(np.abs(got - want) / scale, 2e-6)


def _dense(model, params, poses, board, view, residuals):
    """The stacked Jacobian ``(2R, P + 6V)`` (analytic, built pose by pose with an explicit
    hat matrix) and residual vector ``(2R,)``."""
    nv, npar = len(poses), model.num_params
    J = np.zeros((2 * len(view), npar + 6 * nv))
    for v in range(nv):
        rows = np.flatnonzero(view == v)
        p = se3.act(poses[v], board[rows])
        _, _, jp, jt = model.project(p, params, jacobians=True)
        hat = np.zeros((len(p), 3, 3))
        hat[:, 0, 1], hat[:, 0, 2], hat[:, 1, 2] = -p[:, 2], p[:, 1], -p[:, 0]
        hat -= hat.transpose(0, 2, 1)
        r2 = np.stack([2 * rows, 2 * rows + 1], axis=1).ravel()
        J[r2, :npar] = jt.reshape(-1, npar)
        J[r2, npar + 6 * v:npar + 6 * v + 6] = np.concatenate([jp, -jp @ hat], axis=2
                                                              ).reshape(-1, 6)
    return J, residuals.ravel()


def test_halves_step_and_covariance_equal_the_dense_normal_equations():
    """For each half of the views: the one Gauss-Newton step's parameters and the coupled
    covariance (intrinsics and mean pose) equal those solved from the dense J^T J of that
    half's rows (within 1e-6 of each parameter's σ; covariance 1e-7 of its largest)."""
    res, board, view = _problem(5, 10, True)
    nv, s2 = 10, 0.09
    bl = unc.view_blocks(PINHOLE, res.camera.params, res.poses, board, view, res.residuals,
                         np.arange(9))
    J, r = _dense(PINHOLE, res.camera.params, res.poses, board, view, res.residuals)
    for half in unc.split_halves(nv):
        cols = np.r_[np.arange(9), (9 + 6 * half[:, None] + np.arange(6)).ravel()]
        rows = np.repeat(np.isin(view, half), 2)
        Jh = J[np.ix_(rows, cols)]
        info = Jh.T @ Jh
        full = np.linalg.inv(info)
        step = -full @ (Jh.T @ r[rows])
        M = np.zeros((15, len(cols)))
        M[:9, :9] = np.eye(9)
        M[9:, 9:] = np.tile(np.eye(6), len(half)) / len(half)
        cc = unc.coupled_from_blocks(bl, half, s2, step=True)
        sd = np.sqrt(np.diag(full[:9, :9]) * s2)
        np.testing.assert_array_less(np.abs(cc.params - (res.camera.params + step[:9])) / sd,
                                     1e-6)
        want = s2 * M @ full @ M.T
        np.testing.assert_allclose(cc.covariance, want, rtol=0,
                                   atol=1e-7 * np.abs(want).max())


@pytest.mark.parametrize("distance", [None, 0.6])
def test_projection_covariance_matches_numerical_jacobian(distance):
    """At grid pixels the reported 2x2 covariance is J Σ J^T with J the numerical derivative
    of the pixel with respect to (fy-tied params, rho_mean, phi_mean) for the point held in
    the boards' frame (translation does not count at infinity); σ is the root of its larger
    eigenvalue."""
    res, board, view = _problem(7, 8, False)
    aspect = 1.0025
    params = res.camera.params.copy()
    params[0] = aspect * params[1]
    free = np.arange(1, 9)
    rng = np.random.default_rng(1)
    a = rng.normal(size=(14, 14))
    cov = a @ a.T * 1e-4  # any covariance: the map is what is tested
    cc = unc.CoupledCovariance(PINHOLE, params, free, cov, aspect)
    pu = unc.projection_uncertainty(cc, SIZE, distance)
    np.testing.assert_allclose(pu.sigma_px ** 2, np.linalg.eigvalsh(pu.covariance)[:, -1],
                               rtol=1e-12)
    rays, _ = PINHOLE.unproject(pu.pixels[::37], params)
    p = rays * (1.0 if distance is None else distance)

    def pixel(x):
        th = params.copy()
        th[free] = x[:8]
        th[0] = aspect * th[1]
        moved = se3.act(se3.exp(x[8:]), p)
        return project(moved, th)

    for g in range(len(p)):
        x0 = np.r_[params[free], np.zeros(6)]
        jac = numeric_jacobian(lambda x, g=g: pixel(x)[g], x0, eps=1e-7)
        if distance is None:
            jac[:, 8:11] = 0.0
        want = jac @ cov @ jac.T
        np.testing.assert_allclose(pu.covariance[::37][g], want, rtol=1e-5,
                                   atol=1e-6 * np.abs(want).max())


@pytest.mark.parametrize("model", ["pinhole", "rational", "fisheye", "double-sphere"])
def test_projection_at_two_distances_from_one_jacobian(model):
    """projection_uncertainties takes both distances from one Jacobian of the unit rays
    (central models: the translation columns scale by 1/d): the same covariances as the
    Jacobian evaluated at the points placed at each distance."""
    from calib_datasets.board_render import DS_CAMERA, FISHEYE_CAMERA

    params = {"pinhole": THETA, "fisheye": FISHEYE_CAMERA, "double-sphere": DS_CAMERA,
              "rational": np.r_[THETA[:8], 0.001, 0.02, 0.001, 0.0005]}[model]
    lens = get_model(model)
    free = np.arange(len(params))
    a = np.random.default_rng(2).normal(size=(len(free) + 6,) * 2)
    cc = unc.CoupledCovariance(lens, params, free, a @ a.T * 1e-4)
    inf, near = unc.projection_uncertainties(cc, SIZE, (None, 0.7))
    rays = unc.grid_rays(cc, SIZE)
    rays = rays[np.isfinite(rays).all(axis=1)]
    for pu, d in ((inf, None), (near, 0.7)):
        _, valid, j = unc._jacobian_rows(lens, params, rays * (1.0 if d is None else d), None,
                                         free)
        if d is None:
            j[:, :, len(free):len(free) + 3] = 0.0
        want = (j @ cc.covariance @ j.transpose(0, 2, 1))[valid]
        np.testing.assert_allclose(pu.covariance, want, rtol=1e-9,
                                   atol=1e-12 * np.abs(want).max())
        assert pu.distance_m == d


@pytest.mark.parametrize("partial", [True, False])
def test_trust_in_a_fit_equals_the_dense_computation(partial):
    """fit_intrinsics' trust figures (partial or full views; blocks from the solve's
    products) against the same figures from per-view blocks read off the dense Jacobian:
    projection σ within 1e-6 relative, cross-validation differences and ratios within 1e-3
    (the bound the speed work keeps)."""
    res, board, view = _problem(11, 12, partial)
    rt = fit_intrinsics([board[view == v] for v in range(12)],
                        [res.points_px[view == v] for v in range(12)], SIZE).trust
    J, r = _dense(PINHOLE, res.camera.params, res.poses, board, view, res.residuals)
    blocks = []
    for v in range(12):
        rows = np.repeat(view == v, 2)
        jt, jx = J[rows, :9], J[rows, 9 + 6 * v:15 + 6 * v]
        blocks.append((jt.T @ jt, jt.T @ jx, jx.T @ jx, jt.T @ r[rows], jx.T @ r[rows]))
    bl = unc.ViewBlocks(PINHOLE, res.camera.params, np.arange(9), None,
                        *[np.stack(b) for b in zip(*blocks, strict=True)])
    s2 = float(np.sum(res.residuals ** 2) / (2 * len(view) - res.solver_summary.num_parameters))
    cc = unc.coupled_from_blocks(bl, np.arange(12), s2)
    inf = unc.projection_uncertainty(cc, SIZE)
    np.testing.assert_allclose(rt.at_infinity.sigma_px, inf.sigma_px, rtol=1e-6)
    a, b = unc.split_halves(12)
    cells = (unc.observed_cells(res.points_px[np.isin(view, a)], SIZE)
             & unc.observed_cells(res.points_px[np.isin(view, b)], SIZE))
    cv = unc.compare_projections(unc.coupled_from_blocks(bl, a, s2, step=True),
                                 unc.coupled_from_blocks(bl, b, s2, step=True), SIZE,
                                 cells=cells)
    np.testing.assert_allclose(rt.cross_validation.difference_px, cv.difference_px,
                               rtol=1e-3)
    np.testing.assert_allclose(rt.cross_validation.ratio, cv.ratio, rtol=1e-3)


@pytest.mark.parametrize("aspect,fix_k3", [(None, False), (1.0025, True)])
def test_blocks_from_products_match_numerical_jacobians(aspect, fix_k3):
    """The solve's per-view products (full views: the engine's stacked path) give every
    block as the numerical derivatives do, and the blocks view_blocks forms by its own
    pass."""
    res, board, view = _problem(13, 7, False)
    opts = FitOptions(fix_aspect=aspect is not None, aspect_ratio=aspect or 1.0,
                      fix_k3=fix_k3)
    sol = camera_solution([board[view == v] for v in range(7)],
                          [res.points_px[view == v] for v in range(7)], SIZE, opts)
    assert sol.frame_products is not None and sol.frame_products.shape == (7, 16, 16)
    params, poses = sol.params[0], sol.T_rig_board
    free = np.array([i for i in range(9) if not (i == 0 and aspect) and not (i == 8 and fix_k3)])
    bl = unc.blocks_from_products(PINHOLE, params, free, aspect, sol.frame_products)
    ref = _numeric_blocks(PINHOLE, params, poses, board, view, res.points_px, free, aspect)
    own = unc.view_blocks(PINHOLE, params, poses, board, view, sol.residuals, free, aspect)
    for got, want, mine in zip((bl.A, bl.W, bl.C), ref[:3], (own.A, own.W, own.C),
                               strict=True):
        scale = np.abs(want).max(axis=(1, 2), keepdims=True)
        np.testing.assert_array_less(np.abs(got - want) / scale, 2e-6)
        np.testing.assert_allclose(got, mine, rtol=1e-10, atol=1e-12 * scale.max())
    rnorm = np.sqrt(np.bincount(view, np.sum(sol.residuals ** 2, axis=1)))
    for got, want, info in ((bl.g_th, ref[3], ref[0]), (bl.g_x, ref[4], ref[2])):
        scale = np.sqrt(np.einsum("vii->vi", info)) * rnorm[:, None]
        np.testing.assert_array_less(np.abs(got - want) / scale, 2e-6)


def test_point_ids_equal_np_unique():
    """Ids of board rows (full boards repeated, partial boards, a board with a repeated
    point, one view) equal np.unique's inverse over the rounded points."""
    rng = np.random.default_rng(2)
    grid = np.c_[BOARD[:, :2], np.zeros(len(BOARD))]
    cases = [np.tile(grid, (50, 1)), grid,
             np.concatenate([grid[rng.random(len(grid)) < 0.7] for _ in range(9)]),
             np.tile(np.r_[grid, grid[:3]], (4, 1)), np.concatenate([grid[1:], grid]),
             np.tile(grid + rng.normal(0, 1e-12, grid.shape) * [1, 1, 0], (3, 1))]
    for board in cases:
        want = np.unique(np.round(board[:, 0] + 1j * board[:, 1], 9), return_inverse=True)[1]
        np.testing.assert_array_equal(_point_ids(board), want)
