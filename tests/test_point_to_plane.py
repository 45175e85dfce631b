"""Point-to-plane residuals: values against the definition, Jacobians against numerical
derivatives (left SE3 perturbation) at identity, generic, near-pi and far-from-origin poses."""

from __future__ import annotations

import numpy as np
import pytest

from calib.lie import se3
from calib.residuals.point_to_plane import PointToPlane, cross
from calib.solver import SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians

POSES = {
    "identity": np.zeros(6),
    "generic": np.array([0.3, -0.2, 0.1, 0.4, -0.3, 0.2]),
    "near_pi": np.r_[0.1, 0.2, -0.3, np.array([0.0, 1.0, 0.0]) * (np.pi - 1e-6)],
    "tiny": np.full(6, 1e-9),
}


@pytest.mark.parametrize("pose", list(POSES))
@pytest.mark.parametrize("offset", [0.0, 10.0])
def test_jacobian_matches_numerical(pose, offset):
    rng = np.random.default_rng(3)
    p = rng.normal(size=(30, 3)) + offset
    q = rng.normal(size=(30, 3)) + offset
    n = rng.normal(size=(30, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    fam = PointToPlane(p, q, n)
    T = se3.exp(POSES[pose])[None]
    idx = [np.zeros(30, int)]
    r, jac = fam.evaluate([T], idx)
    ref = np.sum((p @ T[0, :3, :3].T + T[0, :3, 3] - q) * n, axis=1)
    np.testing.assert_allclose(r[:, 0], ref, atol=1e-12)
    assert r.shape == (30, 1) and jac[0].shape == (30, 1, 6)
    num = numeric_family_jacobians(fam, [T], idx, [SE3Manifold()])[0]
    assert_jacobian_close(jac[0], num, rtol=1e-5, atol=1e-6 * (1 + offset))


def test_cross_equals_numpy():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    np.testing.assert_allclose(cross(a, b), np.cross(a, b), atol=1e-14)


def test_compiled_kernel_reads_views_and_refuses_mismatched_sizes():
    """Strided views give the residuals of their copies; a normal array of another length
    is refused before anything is read."""
    rng = np.random.default_rng(5)
    wide = rng.normal(size=(40, 9))
    p, q, n = wide[:, 0:3], wide[:, 3:6], wide[:, 6:9]
    T = se3.exp(POSES["generic"])[None]
    idx = [np.zeros(40, int)]
    got, jac = PointToPlane(p, q, n).evaluate([T], idx)
    fam = PointToPlane(p.copy(), q.copy(), n.copy())
    want, jwant = fam.evaluate([T], idx)
    assert np.array_equal(got, want) and np.array_equal(jac[0], jwant[0])
    assert np.array_equal(fam.evaluate([T], idx, False)[0], want)
    fam.normals = n[:39].copy()
    with pytest.raises(ValueError, match="n has 39 along axis 0"):
        fam.evaluate([T], idx)
