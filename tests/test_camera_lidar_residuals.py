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


def test_board_edge_crossing_jacobians_and_value():
    from calib.residuals.board_edge import BoardEdgeCrossing

    rng = np.random.default_rng(1)
    F, N = 3, 30
    T_cl = se3.exp(rng.normal(0, 0.5, 6))
    boards = se3.exp(np.c_[rng.normal(0, 0.5, (F, 3)), rng.normal(0, 0.4, (F, 3))])
    boards[:, :3, 3] += T_cl[:3, 3] + [0.0, 0.0, 3.0]  # boards ~3 m in front of the LiDAR
    frame = rng.integers(0, F, N)
    # rays from the LiDAR origin through known points of each board plane
    hb = np.c_[rng.uniform(-0.5, 0.5, (N, 2)), np.zeros(N)]
    pc = np.einsum("nij,nj->ni", boards[frame, :3, :3], hb) + boards[frame, :3, 3]
    pl = se3.act(se3.inverse(T_cl), pc)
    rays = pl / np.linalg.norm(pl, axis=1, keepdims=True)
    ang = rng.uniform(0, 2 * np.pi, N)
    normals = np.c_[np.cos(ang), np.sin(ang)]
    offsets = rng.normal(0, 0.3, N)
    fam = BoardEdgeCrossing(rays, normals, offsets, weight=rng.uniform(1, 3, N))
    vals, idx = [T_cl[None], boards], [np.zeros(N, int), frame]
    r, jac = fam.evaluate(vals, idx)
    want = (np.einsum("ni,ni->n", hb[:, :2], normals) - offsets) * fam.weight
    np.testing.assert_allclose(r[:, 0], want, atol=1e-10)
    num = numeric_family_jacobians(fam, vals, idx, [SE3Manifold(), SE3Manifold()])
    for a, n in zip(jac, num, strict=True):
        assert_jacobian_close(a, n, rtol=1e-6, atol=1e-8)
