"""SO3 / SE3: group axioms (hypothesis), scipy agreement, edge angles, Jacobians numerically."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.transform import Rotation

from calib.errors import InputError
from calib.lie import se3, so3
from calib.solver.manifold import Euclidean
from calib.testing import assert_jacobian_close, numeric_jacobian

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)
vec3 = arrays(np.float64, 3, elements=finite)
vec6 = arrays(np.float64, 6, elements=finite)
EDGE_ANGLES = [0.0, 1e-12, 1e-8, 1e-4, 0.299, 0.301, 1.0, np.pi / 2, np.pi - 1e-6, np.pi - 1e-9,
               np.pi]


def _axes(n=7, seed=0):
    a = np.random.default_rng(seed).normal(size=(n, 3))
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def _wrap(phi):
    """Canonical rotation vector (norm in [0, pi]) of the same rotation."""
    return Rotation.from_rotvec(phi).as_rotvec()


@settings(max_examples=200, deadline=None)
@given(vec3)
def test_so3_exp_matches_scipy_and_is_orthonormal(phi):
    r = so3.exp(phi)
    np.testing.assert_allclose(r, Rotation.from_rotvec(phi).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(r), 1.0)


@settings(max_examples=200, deadline=None)
@given(vec3)
def test_so3_log_exp_roundtrip(phi):
    back = so3.log(so3.exp(phi))
    assert np.linalg.norm(back) <= np.pi + 1e-12
    np.testing.assert_allclose(so3.exp(back), so3.exp(phi), atol=1e-12)
    if np.linalg.norm(phi) < np.pi - 1e-6:
        np.testing.assert_allclose(back, phi, atol=1e-10)
    else:
        np.testing.assert_allclose(so3.exp(back), Rotation.from_rotvec(_wrap(phi)).as_matrix(),
                                   atol=1e-12)


@pytest.mark.parametrize("theta", EDGE_ANGLES)
def test_so3_edge_angles(theta):
    phi = _axes() * theta
    r = so3.exp(phi)
    assert np.isfinite(r).all()
    back = so3.log(r)
    assert np.isfinite(back).all()
    np.testing.assert_allclose(so3.exp(back), r, atol=1e-12)
    if theta < np.pi - 1e-6:
        np.testing.assert_allclose(back, phi, atol=1e-12, rtol=1e-9)
    else:  # at pi the axis sign is ambiguous: compare modulo 2 pi
        same = np.linalg.norm(back - phi, axis=1) < 1e-6
        flipped = np.linalg.norm(back + phi, axis=1) < 1e-6
        assert np.all(same | flipped)
    np.testing.assert_allclose(so3.log(Rotation.from_rotvec(phi).as_matrix()),
                               back, atol=1e-9) if theta < np.pi - 1e-6 else None
    for f in (so3.left_jacobian, so3.right_jacobian, so3.left_jacobian_inv,
              so3.right_jacobian_inv):
        assert np.isfinite(f(phi)).all()
    np.testing.assert_allclose(so3.left_jacobian_inv(phi) @ so3.left_jacobian(phi),
                               np.broadcast_to(np.eye(3), (len(phi), 3, 3)), atol=1e-9)


@pytest.mark.parametrize("theta", EDGE_ANGLES)
def test_so3_angle_is_the_norm_of_log(theta):
    phi = _axes() * theta
    r = Rotation.from_rotvec(phi).as_matrix()  # scipy's matrices: independent of so3.exp
    ang = so3.angle(r)
    assert ang.shape == (len(phi),)
    # |phi| itself, to a few ulps of pi at every angle (near pi the axis sign flips but
    # the angle does not)
    np.testing.assert_allclose(ang, np.full(len(phi), theta), rtol=1e-12, atol=1e-15)
    assert isinstance(so3.angle(r[0]), float)
    assert so3.angle(r[0]) == ang[0]


@pytest.mark.parametrize("theta", EDGE_ANGLES)
def test_se3_edge_angles(theta):
    rng = np.random.default_rng(1)
    xi = np.c_[rng.normal(size=(7, 3)), _axes() * theta]
    T = se3.exp(xi)
    assert np.isfinite(T).all()
    back = se3.log(T)
    np.testing.assert_allclose(se3.exp(back), T, atol=1e-12)
    if theta < np.pi - 1e-6:
        np.testing.assert_allclose(back, xi, atol=1e-9)
    for f in (se3.left_jacobian, se3.right_jacobian, se3.left_jacobian_inv):
        assert np.isfinite(f(xi)).all()
    if theta < np.pi - 1e-3:
        np.testing.assert_allclose(se3.left_jacobian_inv(xi) @ se3.left_jacobian(xi),
                                   np.broadcast_to(np.eye(6), (7, 6, 6)), atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(vec6, vec6, vec6)
def test_se3_group_axioms(a, b, c):
    A, B, C = se3.exp(a), se3.exp(b), se3.exp(c)
    np.testing.assert_allclose(se3.compose(se3.compose(A, B), C),
                               se3.compose(A, se3.compose(B, C)), atol=1e-9)
    np.testing.assert_allclose(se3.compose(A, se3.inverse(A)), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(se3.compose(np.eye(4), A), A, atol=1e-15)
    np.testing.assert_allclose(se3.exp(se3.log(A)), A, atol=1e-9)


@settings(max_examples=100, deadline=None)
@given(vec6, arrays(np.float64, (5, 3), elements=finite))
def test_se3_act_and_adjoint(xi, pts):
    T = se3.exp(xi)
    r, t = se3.to_rt(T)
    np.testing.assert_allclose(se3.act(T, pts), pts @ r.T + t, atol=1e-9)
    eta = np.array([0.1, -0.2, 0.3, 0.05, -0.02, 0.04])
    np.testing.assert_allclose(se3.compose(se3.compose(T, se3.exp(eta)), se3.inverse(T)),
                               se3.exp(se3.adjoint(T) @ eta), atol=1e-9)


def test_batch_and_single_forms_agree():
    rng = np.random.default_rng(2)
    xi = rng.normal(size=(4, 6))
    Ts = se3.exp(xi)
    for i in range(4):
        np.testing.assert_allclose(se3.exp(xi[i]), Ts[i], atol=0)
        np.testing.assert_allclose(se3.log(Ts[i]), se3.log(Ts)[i], atol=0)
    q = so3.to_quat(Ts[:, :3, :3])
    np.testing.assert_allclose(so3.from_quat(q), Ts[:, :3, :3], atol=1e-12)
    ref = Rotation.from_matrix(Ts[:, :3, :3]).as_quat()
    ref[ref[:, 3] < 0] *= -1
    np.testing.assert_allclose(q, ref, atol=1e-12)
    np.testing.assert_allclose(so3.from_scipy(so3.to_scipy(Ts[:, :3, :3])), Ts[:, :3, :3],
                               atol=1e-12)


def _so3_left(phi):
    return lambda d: so3.log(so3.exp(phi + d) @ so3.exp(phi).T)


@pytest.mark.parametrize("theta", [1e-9, 1e-3, 0.2, 1.0, 2.5, 3.1])
def test_jacobians_numerically(theta):
    rng = np.random.default_rng(int(theta * 1000))
    phi = _axes(1, int(theta * 10))[0] * theta
    xi = np.r_[rng.normal(size=3), phi]
    e3, e6 = Euclidean(3), Euclidean(6)
    # J_l: Exp(phi + d) = Exp(J_l d) Exp(phi)
    assert_jacobian_close(so3.left_jacobian(phi),
                          numeric_jacobian(_so3_left(phi), np.zeros(3), manifold=e3))
    assert_jacobian_close(so3.right_jacobian(phi), numeric_jacobian(
        lambda d: so3.log(so3.exp(phi).T @ so3.exp(phi + d)), np.zeros(3), manifold=e3))
    T = se3.exp(xi)
    assert_jacobian_close(se3.left_jacobian(xi), numeric_jacobian(
        lambda d: se3.log(se3.compose(se3.exp(xi + d), se3.inverse(T))), np.zeros(6),
        manifold=e6))
    assert_jacobian_close(se3.right_jacobian(xi), numeric_jacobian(
        lambda d: se3.log(se3.compose(se3.inverse(T), se3.exp(xi + d))), np.zeros(6),
        manifold=e6))
    # act: d(Exp(delta) T p)/d delta
    from calib.solver.manifold import SE3Manifold

    p = rng.normal(size=(1, 3))
    _, jac = se3.act(T, p, jacobian=True)
    assert_jacobian_close(jac[0], numeric_jacobian(lambda m: se3.act(m, p)[0], T,
                                                   manifold=SE3Manifold()))


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="phi"):
        so3.exp(np.array([1.0, np.nan, 0.0]))
    with pytest.raises(InputError, match="shape"):
        se3.log(np.eye(3))
    with pytest.raises(InputError):
        so3.from_quat(np.zeros(4))


def test_so3_kernels_read_strided_batches_and_refuse_wrong_shapes():
    """The compiled Exp / Log / quaternion / rotation check read column slices in place
    (the same values as their contiguous copies) and refuse arrays of the wrong shape."""
    from calib._native import kernels

    rng = np.random.default_rng(5)
    wide = rng.normal(size=(9, 7))
    phi = wide[:, 2:5]  # strided (9, 3)
    r = so3.exp(phi)
    assert np.array_equal(r, so3.exp(np.ascontiguousarray(phi)))
    big = np.zeros((9, 3, 5))
    big[:, :, 1:4] = r
    view = big[:, :, 1:4]
    assert np.array_equal(so3.log(view), so3.log(r))
    assert np.array_equal(so3.to_quat(view), so3.to_quat(r))
    np.testing.assert_allclose(so3.to_quat(view), Rotation.from_matrix(r).as_quat()
                               * np.sign(Rotation.from_matrix(r).as_quat()[:, 3:]), atol=1e-12)
    with pytest.raises(ValueError, match="phi"):
        kernels.so3_exp(np.zeros((2, 4)), np.ones((3, 3)), 0.3, np.empty((2, 3, 3)))
    with pytest.raises(ValueError, match="out"):
        kernels.so3_log(r, np.empty((9, 4)))
    with pytest.raises(ValueError, match="out"):
        kernels.so3_quat(r, np.empty((8, 4)))


@pytest.mark.parametrize("bad,what", [(np.diag([1.0, 1.0, -1.0]), "reflection"),
                                      (2 * np.eye(3), "max"), (np.zeros((3, 3)), "max")])
def test_check_rotation_names_the_matrix_and_how_far_off(bad, what):
    good = so3.exp(np.random.default_rng(6).normal(size=(3, 3)))
    r = np.concatenate([good, bad[None]])
    with pytest.raises(InputError, match=rf"matrix 3 of 4.*{what}"):
        so3.check_rotation(r)
    so3.check_rotation(good + 2e-4)  # within the tolerance


def test_check_rotation_takes_one_matrix_and_any_numeric_array():
    so3.check_rotation(np.eye(3))
    so3.check_rotation([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    so3.check_rotation(so3.exp(np.ones(3)).astype(np.float32))
    for bad, what in ((np.eye(4), r"got \(4, 4\)"), (np.full((3, 3), np.nan), "NaN or inf"),
                      (np.eye(3) * 1j, "complex"), ("R", "not a numeric array"),
                      (np.zeros((2, 2, 3, 3)), "expected shape")):
        with pytest.raises(InputError, match=what):
            so3.check_rotation(bad)


def test_unaligned_inputs_give_the_values_of_aligned_ones():
    """A legal float64 view at an odd byte offset (np.frombuffer, packed records) is read
    through an aligned copy: the compiled kernels refuse unaligned data."""
    rng = np.random.default_rng(12)

    def unaligned(a):
        buf = np.zeros(a.size * 8 + 1, np.uint8)
        out = np.ndarray(a.shape, np.float64, buf.data, 1)
        out[...] = a
        assert not out.flags.aligned
        return out

    phi, xi = rng.normal(size=(4, 3)), rng.normal(size=(4, 6))
    R, T = so3.exp(phi), se3.exp(xi)
    np.testing.assert_array_equal(so3.exp(unaligned(phi)), R)
    np.testing.assert_array_equal(so3.log(unaligned(R)), so3.log(R))
    np.testing.assert_array_equal(so3.to_quat(unaligned(R[0])), so3.to_quat(R[0]))
    np.testing.assert_array_equal(se3.exp(unaligned(xi)), T)
    np.testing.assert_array_equal(se3.log(unaligned(T)), se3.log(T))
    so3.check_rotation(unaligned(R))
