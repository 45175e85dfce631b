"""Point-to-point residuals: values against the definition, Jacobians against numerical
derivatives (left SE3 perturbation) at identity, generic, near-pi and far-from-origin poses."""

from __future__ import annotations

import numpy as np
import pytest

from calib.lie import se3
from calib.residuals.point_to_point import PointToPoint, left_jacobian_rows, transform_points
from calib.solver import SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians

POSES = {
    "identity": np.zeros(6),
    "generic": np.array([0.3, -0.2, 0.1, 0.4, -0.3, 0.2]),
    "near_pi": np.r_[0.1, 0.2, -0.3, np.array([1.0, 0.0, 0.0]) * (np.pi - 1e-6)],
    "tiny": np.full(6, 1e-9),
}


@pytest.mark.parametrize("pose", list(POSES))
@pytest.mark.parametrize("offset", [0.0, 10.0])
def test_jacobian_matches_numerical(pose, offset):
    rng = np.random.default_rng(1)
    p = rng.normal(size=(30, 3)) + offset
    q = rng.normal(size=(30, 3)) + offset
    fam = PointToPoint(p, q)
    T = se3.exp(POSES[pose])[None]
    idx = [np.zeros(30, int)]
    r, jac = fam.evaluate([T], idx)
    np.testing.assert_allclose(r, p @ T[0, :3, :3].T + T[0, :3, 3] - q, atol=1e-12)
    assert r.shape == (30, 3) and jac[0].shape == (30, 3, 6)
    num = numeric_family_jacobians(fam, [T], idx, [SE3Manifold()])[0]
    assert_jacobian_close(jac[0], num, rtol=1e-5, atol=1e-6 * (1 + offset))


def test_transform_points_and_jacobian_rows_agree_with_lie():
    rng = np.random.default_rng(2)
    p = rng.normal(size=(50, 3))
    T = se3.exp(rng.normal(size=6))
    q_ref, j_ref = se3.act(T, p, jacobian=True)
    q = transform_points(T, p)
    np.testing.assert_allclose(q, q_ref, atol=1e-12)
    np.testing.assert_allclose(left_jacobian_rows(q), j_ref, atol=1e-12)


def test_no_jacobians_requested():
    fam = PointToPoint(np.ones((4, 3)), np.zeros((4, 3)))
    r, jac = fam.evaluate([np.eye(4)[None]], [np.zeros(4, int)], jacobians=False)
    assert jac is None and np.allclose(r, 1.0)
