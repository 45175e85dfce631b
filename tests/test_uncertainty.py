"""Projection uncertainty and cross-validation (calib.intrinsics.uncertainty) against truth:
seeded synthetic cameras with known parameters and board poses."""

from __future__ import annotations

import numpy as np
import pytest

from calib.camera.pinhole import PINHOLE, project
from calib.intrinsics import Chessboard, fit_intrinsics
from calib.intrinsics.uncertainty import (
    coupled_covariance,
    cross_validate,
    per_point_bias,
    projection_uncertainty,
)
from calib.lie import se3
from calib_datasets.board_render import random_poses

THETA = np.array([800.0, 802.0, 320.0, 240.0, -0.2, 0.05, 0.001, -0.001, 0.0])
SIZE = (640, 480)
BOARD = Chessboard(9, 6, 0.03).object_points()


def _views(seed: int, n: int = 12, noise: float = 0.3, theta=THETA, board=BOARD):
    rng = np.random.default_rng(seed)
    poses = random_poses(n, 9, 6, 0.03, THETA, SIZE, rng)
    clean = [project(se3.act(T, board), theta) for T in poses]
    return poses, [c + rng.normal(0, noise, c.shape) for c in clean]


def _coupled(res, n_views: int):
    n = len(res.residuals)
    s2 = float(np.sum(res.residuals ** 2) / (2 * n - res.solver_summary.num_parameters))
    return coupled_covariance("pinhole", res.camera.params, res.poses[res.views_used],
                              np.tile(BOARD, (n_views, 1)), res.view_index, np.arange(9), s2)


def _true_error(res, poses, pu):
    """Projection error of the fitted calibration against the truth, with the scene point
    held in the boards' frames (the definition the uncertainty follows)."""
    rays, _ = PINHOLE.unproject(pu.pixels, THETA)
    if pu.distance_m is None:
        rot = res.poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1)
        moved, pts = np.einsum("vij,gj->gi", rot, rays) / len(rot), rays
    else:
        pts = rays * pu.distance_m
        moved = np.mean([se3.act(Tf, se3.act(se3.inverse(Tt), pts))
                         for Tf, Tt in zip(res.poses, poses, strict=True)], axis=0)
    return project(moved, res.camera.params) - project(pts, THETA)


@pytest.mark.parametrize("distance", [None, 0.5])
def test_projection_uncertainty_covers_the_truth(distance):
    """Over 50 seeded problems the whitened projection error has an RMS z in [0.7, 1.5]
    (z^2 = e^T Sigma^-1 e / 2 per grid pixel)."""
    z2 = []
    for seed in range(50):
        poses, noisy = _views(seed)
        res = fit_intrinsics(BOARD, noisy, SIZE)
        pu = projection_uncertainty(_coupled(res, 12), SIZE, distance)
        e = _true_error(res, poses, pu)
        m2 = np.einsum("gi,gi->g", e, np.linalg.solve(pu.covariance, e[:, :, None])[:, :, 0])
        z2.append(np.mean(m2) / 2)
    assert 0.7 <= np.sqrt(np.mean(z2)) <= 1.5
    assert 0.3 < pu.median < 5.0  # pixels: the σ is a figure of the right size


def test_coupled_covariance_equals_dense_inverse():
    """The per-view Schur formulas give the dense inverse of J^T J, mapped to the mean pose."""
    poses, noisy = _views(1, n=5)
    res = fit_intrinsics(BOARD, noisy, SIZE)
    cc = _coupled(res, 5)
    nv, npt = 5, len(BOARD)
    J = np.zeros((2 * nv * npt, 9 + 6 * nv))
    for v in range(nv):
        p = se3.act(res.poses[v], BOARD)
        _, _, jp, jt = PINHOLE.project(p, res.camera.params, jacobians=True)
        rows = slice(2 * v * npt, 2 * (v + 1) * npt)
        J[rows, :9] = jt.reshape(-1, 9)
        hat = np.zeros((npt, 3, 3))
        hat[:, 0, 1], hat[:, 0, 2], hat[:, 1, 2] = -p[:, 2], p[:, 1], -p[:, 0]
        hat -= hat.transpose(0, 2, 1)
        jx = np.concatenate([jp, -jp @ hat], axis=2)
        J[rows, 9 + 6 * v: 15 + 6 * v] = jx.reshape(-1, 6)
    full = np.linalg.inv(J.T @ J)
    M = np.zeros((15, 9 + 6 * nv))
    M[:9, :9] = np.eye(9)
    for v in range(nv):
        M[9:, 9 + 6 * v: 15 + 6 * v] = np.eye(6) / nv
    s2 = float(np.sum(res.residuals ** 2) / (2 * nv * npt - res.solver_summary.num_parameters))
    np.testing.assert_allclose(cc.covariance, s2 * M @ full @ M.T, rtol=1e-5,
                               atol=1e-12 * np.abs(cc.covariance).max())


def _cv(noisy, n):
    def refit(idx):
        return _coupled(fit_intrinsics(BOARD, [noisy[i] for i in idx], SIZE), len(idx))
    return cross_validate(refit, n, SIZE, np.concatenate(noisy),
                          np.repeat(np.arange(n), len(BOARD)))


def test_cross_validation_quiet_on_noise_and_flags_a_changed_camera():
    """Noise alone never raises the flag over 30 seeds; a focus change between the two
    halves of the session (focal length +8%, about 4x what either half resolves) does."""
    flagged_noise, flagged_change = 0, 0
    for seed in range(30):
        _, noisy = _views(seed)
        flagged_noise += _cv(noisy, 12).systematic
    for seed in range(10):
        _, a = _views(seed, n=20)
        _, b = _views(seed, n=20, theta=THETA * np.r_[1.08, 1.08, np.ones(7)])
        mixed = [a[i] if i % 2 == 0 else b[i] for i in range(20)]
        cv = _cv(mixed, 20)
        flagged_change += cv.systematic
    assert flagged_noise == 0
    assert flagged_change == 10


def test_per_point_bias_separates_a_misprinted_board_from_noise():
    """The same corner off the same way in every view (corners printed 0.5 mm off at
    random) stands out; independent noise does not. (A smooth bow is not seen this way: it
    is absorbed into the focal length and the poses.)"""
    misprinted = BOARD.copy()
    misprinted[:, :2] += np.random.default_rng(9).normal(0, 0.0005, (len(BOARD), 2))
    for board, lo, hi in ((BOARD, 0.5, 2.0), (misprinted, 3.0, np.inf)):
        _, noisy = _views(4, n=20, board=board)
        res = fit_intrinsics(BOARD, noisy, SIZE)
        sigma = res.rms_px / np.sqrt(2)
        ids = np.tile(np.arange(len(BOARD)), 20)
        assert lo < per_point_bias(res.residuals, ids, len(BOARD), sigma) < hi


def test_fit_report_has_trust_figures_and_one_step_halves_match_refits():
    """fit_intrinsics reports the contract keys; its halves (one Gauss-Newton step from the
    full solution, no extra solve) agree with fitting each half from scratch."""
    _, noisy = _views(2, n=20)
    res = fit_intrinsics(BOARD, noisy, SIZE)
    d = res.to_dict()
    pu, cv = d["projection_uncertainty_px"], d["cross_validation_px"]
    assert 0 < pu["median"] <= pu["max"] and 0 < cv["median"] <= cv["max"]
    assert pu["at_board_distance"]["median"] < pu["median"]  # near the boards: better known
    ref = _cv(noisy, 20)
    assert cv["median"] == pytest.approx(ref.median, rel=0.1)
    assert cv["max"] == pytest.approx(ref.max, rel=0.2)
    assert "projection σ (at infinity)" in res.summary()
