"""Jacobians of the board-plane distance family against numerical derivatives."""

from __future__ import annotations

import numpy as np

from calib.lie import se3
from calib.residuals.board_plane import BoardPlaneDistance
from calib.solver import SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians


def test_board_plane_distance_jacobians_and_value():
    rng = np.random.default_rng(0)
    F, N = 3, 40
    T_cl = se3.exp(rng.normal(0, 0.5, 6))
    boards = se3.exp(rng.normal(0, 0.8, (F, 6)))
    frame = rng.integers(0, F, N)
    # points exactly on each board, mapped into the LiDAR frame, then lifted off by h
    h = rng.normal(0, 0.05, N)
    pb = np.c_[rng.uniform(-0.5, 0.5, (N, 2)), h]
    pc = np.einsum("nij,nj->ni", boards[frame, :3, :3], pb) + boards[frame, :3, 3]
    pl = se3.act(se3.inverse(T_cl), pc)
    fam = BoardPlaneDistance(pl, weight=2.0)
    vals, idx = [T_cl[None], boards], [np.zeros(N, int), frame]
    r, jac = fam.evaluate(vals, idx)
    np.testing.assert_allclose(r[:, 0], 2.0 * h, atol=1e-12)
    num = numeric_family_jacobians(fam, vals, idx, [SE3Manifold(), SE3Manifold()])
    for a, n in zip(jac, num, strict=True):
        assert_jacobian_close(a, n, rtol=1e-6, atol=1e-8)
