"""Jacobians of the hand-eye residual families against numerical derivatives."""

from __future__ import annotations

import numpy as np
import pytest

from calib.camera import get_model
from calib.lie import se3
from calib.residuals.chain_projection import ChainReprojection
from calib.residuals.pose_prior import PosePrior
from calib.solver import Euclidean, SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians

PARAMS = np.array([520.0, 522.0, 318.5, 243.2, -0.28, 0.11, 0.0009, -0.0006, -0.02])


def _pose(rng, scale=0.3):
    return se3.exp(np.r_[rng.normal(0, scale, 3), rng.normal(0, 0.4, 3)])


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("with_model", [True, False])
def test_chain_reprojection_jacobians(sign, with_model):
    rng = np.random.default_rng(3 + sign)
    X, Y = _pose(rng)[None], _pose(rng)[None]
    S, N = 4, 24
    B = np.stack([_pose(rng) for _ in range(S)])
    # place the board in front of each camera: choose Y's effect via the chain
    pts = np.c_[rng.uniform(-0.1, 0.1, (N, 2)), np.zeros(N)]
    station = rng.integers(0, S, N)
    # choose X so that the board is ~1 m in front of the camera for each station
    fam0 = ChainReprojection(None, pts, np.zeros((N, 3)), sign)
    pc, *_ = fam0.camera_points(X[0], Y[0], B[station])
    X = se3.compose(X, se3.from_rt(np.eye(3), np.r_[0, 0, -1.0] + 0 * pc[0]))
    model = get_model("pinhole") if with_model else None
    obs = rng.normal(300, 50, (N, 2)) if with_model else rng.normal(0, 1, (N, 3))
    fam = ChainReprojection(model, pts, obs, sign, weight=0.7)
    vals = [X, Y, B]
    idx = [np.zeros(N, int), np.zeros(N, int), station]
    mans = [SE3Manifold(), SE3Manifold(), SE3Manifold()]
    if with_model:
        vals.insert(0, PARAMS[None])
        idx.insert(0, np.zeros(N, int))
        mans.insert(0, Euclidean(9))
    r, jac = fam.evaluate(vals, idx)
    assert r.shape == (N, 2 if with_model else 3)
    num = numeric_family_jacobians(fam, vals, idx, mans)
    for a, n in zip(jac, num, strict=True):
        assert_jacobian_close(a, n, rtol=1e-5, atol=1e-6)


def test_chain_reprojection_is_the_chain():
    rng = np.random.default_rng(1)
    X, Y, B = _pose(rng), _pose(rng), _pose(rng)
    pts = rng.normal(0, 0.2, (5, 3))
    for sign, Bs in ((1, B), (-1, se3.inverse(B))):
        fam = ChainReprojection(None, pts, np.zeros((5, 3)), sign)
        r, _ = fam.evaluate([X[None], Y[None], B[None]], [np.zeros(5, int)] * 3, False)
        T = se3.compose(se3.inverse(X), se3.compose(Bs, Y))
        np.testing.assert_allclose(r, se3.act(T, pts), atol=1e-12)


def test_pose_prior_jacobian_and_value():
    rng = np.random.default_rng(2)
    S = 5
    meas = np.stack([_pose(rng) for _ in range(S)])
    T = se3.compose(se3.exp(rng.normal(0, 0.05, (S, 6))), meas)
    fam = PosePrior(meas, 2e-4, 3e-4)
    idx = [np.arange(S)]
    r, jac = fam.evaluate([T], idx)
    num = numeric_family_jacobians(fam, [T], idx, [SE3Manifold()])
    assert_jacobian_close(jac[0], num[0], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(r[:, :3] * 2e-4, T[:, :3, 3] - meas[:, :3, 3], atol=1e-15)
    r0, _ = fam.evaluate([meas], idx, False)
    assert np.abs(r0).max() < 1e-9
