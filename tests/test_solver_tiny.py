"""The engine's path for tiny problems (one dense system, no Schur elimination) against the
Schur path on the same problems, and the fused SE3 update against calib.lie."""

from __future__ import annotations

import numpy as np
import pytest
from solver_toys import bal_problem

from calib.lie import se3
from calib.solver import Problem, SE3Manifold, SolverOptions, solve
from calib.solver.lm import _tiny
from calib.solver.normal_equations import linearize
from calib.solver.structure import Structure


def _bal(n_cameras=4, n_points=20) -> Problem:
    prob = bal_problem(n_cameras, n_points, seed=7)
    prob.set_constant("poses", blocks=[0])  # part of the gauge
    return prob


def test_tiny_path_taken_only_when_small_and_no_covariance():
    prob = _bal()  # 3 x 6 + 4 x 3 + 20 x 3 = 90 free coordinates
    assert _tiny(prob, SolverOptions())
    assert not _tiny(prob, SolverOptions(no_schur_max_size=89))
    assert not _tiny(prob, SolverOptions(covariance=("points",)))
    assert not _tiny(prob, SolverOptions(linear_solver="cg"))
    assert not _tiny(_bal(12, 60), SolverOptions())


def test_tiny_path_equals_schur_path():
    prob = _bal()
    opts = dict(function_tolerance=1e-14, parameter_tolerance=1e-14, max_iterations=40)
    tiny = solve(prob, SolverOptions(**opts))
    schur = solve(prob, SolverOptions(no_schur_max_size=0, **opts))
    assert tiny.summary.num_eliminated_parameters == 0
    assert schur.summary.num_eliminated_parameters == 60
    assert tiny.summary.final_cost < 1e-2 * tiny.summary.initial_cost
    np.testing.assert_allclose(tiny.summary.final_cost, schur.summary.final_cost, rtol=1e-9)
    for name in ("poses", "intrinsics", "points"):
        np.testing.assert_allclose(tiny[name], schur[name], rtol=1e-7, atol=1e-9)


def test_dense_jacobian_path_equals_block_sums():
    prob = _bal()
    vals = {n: g.value for n, g in prob.groups.items()}
    st = Structure(prob, schur=False)
    assert st.terms[0].dense is not None  # summed straight into a dense A
    dense = linearize(st, vals).neq
    ref_st = Structure(prob, schur=False, dense_jacobians=False)
    ref_st.dense_a = False  # same layout summed block by block into CSR
    assert ref_st.terms[0].dense is None
    ref = linearize(ref_st, vals).neq
    assert isinstance(dense.A, np.ndarray) and not dense.elim
    scale = np.sqrt(np.outer(np.diag(dense.A), np.diag(dense.A)))
    assert np.abs((dense.A - ref.A.toarray()) / scale).max() < 1e-12
    np.testing.assert_allclose(dense.g_r, ref.g_r, rtol=1e-10, atol=1e-12 * np.abs(ref.g_r).max())


def test_se3_plus_equals_lie():
    rng = np.random.default_rng(3)
    x = se3.exp(rng.normal(size=(40, 6)))
    delta = rng.normal(size=(40, 6)) * np.repeat([1.0, 1e-1, 1e-3, 1e-9, 0.0], 8)[:, None]
    ref = se3.compose(se3.exp(delta), x)
    out = SE3Manifold().plus(x, delta)
    # the update runs compiled (csrc/lie.c), the lie module in numpy
    np.testing.assert_allclose(out, ref, rtol=0, atol=8 * np.finfo(float).eps * np.abs(ref).max())
    assert np.all(out[:, 3] == (0.0, 0.0, 0.0, 1.0))


def test_bal_residuals_against_the_model_written_out():
    """The compiled BAL residual against ``f (1 + k1 r^2 + k2 r^4) (-P_xy / P_z) - observed``
    formed by numpy; the same residuals without Jacobians; strided inputs read in place;
    an index out of range refused."""
    prob = bal_problem(3, 30, seed=5)
    fam = prob.residual_blocks[0].family
    vals = [prob.groups[g].value for g in prob.residual_blocks[0].groups]
    idx = prob.residual_blocks[0].indices
    T, K, X = vals
    P = np.einsum("nij,nj->ni", T[idx[0], :3, :3], X[idx[2]]) + T[idx[0], :3, 3]
    p = -P[:, :2] / P[:, 2:]
    r2 = (p * p).sum(axis=1)
    k = K[idx[1]]
    want = (k[:, 0] * (1 + k[:, 1] * r2 + k[:, 2] * r2 ** 2))[:, None] * p - fam.observed
    res, jac = fam.evaluate(vals, idx, True)
    np.testing.assert_allclose(res, want, rtol=0, atol=1e-12 * np.abs(fam.observed).max())
    np.testing.assert_array_equal(fam.evaluate(vals, idx, False)[0], res)
    wide = np.zeros((len(K), 5))
    wide[:, 1:4] = K  # K as a strided view
    assert np.array_equal(fam.evaluate([T, wide[:, 1:4], X], idx, True)[0], res)
    bad = [idx[0], idx[1], idx[2].copy()]
    bad[2][3] = len(X)
    with pytest.raises(IndexError, match="pi"):
        fam.evaluate(vals, bad, True)


def test_dense_sums_with_shared_and_constant_columns_equal_block_sums():
    """A term that reads one group in two slots (the chain ``X^-1 B Y`` with ``X`` and
    ``Y`` the same block: their columns coincide in every row and add up) with tangent
    coordinates held constant: the dense sums equal the block sums."""
    from calib.residuals.chain_projection import ChainReprojection

    rng = np.random.default_rng(11)
    n = 12
    fam = ChainReprojection(None, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), sign=1)
    prob = Problem()
    prob.add_parameter("t", se3.exp(rng.normal(size=(1, 6)) * 0.3), SE3Manifold())
    prob.add_parameter("b", se3.exp(rng.normal(size=(3, 6)) * 0.3), SE3Manifold())
    zero = np.zeros(n, np.int64)
    prob.add_residuals(fam, [("t", zero), ("t", zero), ("b", np.arange(n) % 3)])
    prob.set_constant("b", coords=[2, 5])
    vals = {name: g.value for name, g in prob.groups.items()}
    st = Structure(prob, schur=False)
    assert st.terms[0].dense is not None and not st.terms[0].dense_whole
    dense = linearize(st, vals).neq
    ref_st = Structure(prob, schur=False, dense_jacobians=False)
    ref_st.dense_a = False
    ref = linearize(ref_st, vals).neq
    assert np.abs(dense.A).max() > 0
    np.testing.assert_allclose(dense.A, ref.A.toarray(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dense.g_r, ref.g_r, rtol=1e-12, atol=1e-12)
    # and the gradient is the cost's: central differences along each free coordinate
    num = np.zeros(st.n_reduced)
    for name, lay in st.layouts.items():
        for b in range(lay.n_free):
            for k, c in enumerate(lay.free_coords):
                col = lay.offset + b * lay.stride + k
                for sgn in (1.0, -1.0):
                    step = np.zeros((len(vals[name]), 6))
                    step[lay.free_blocks[b], c] = sgn * 1e-6
                    moved = dict(vals, **{name: SE3Manifold().plus(vals[name], step)})
                    num[col] += sgn * linearize(st, moved, False).cost / 2e-6
    np.testing.assert_allclose(dense.g_r, num, rtol=1e-6, atol=1e-7 * np.abs(num).max())


@pytest.mark.parametrize("no_schur_max_size", [128, 0])
def test_misaligned_jacobians_are_taken(no_schur_max_size):
    """A family may return a legal but unaligned float64 view (a field of a packed record
    array): the compiled sums get an aligned copy, on the tiny and the block path alike."""
    from calib.residuals.base import ResidualFamily

    class Sum(ResidualFamily):  # r = x[i] + y[j] - 1
        def evaluate(self, values, indices, jacobians=True):
            n = len(indices[0])
            r = values[0][indices[0]] + values[1][indices[1]] - 1.0
            if not jacobians:
                return r, None
            packed = np.ones(n, dtype=[("pad", "u1"), ("j", "f8")])["j"]
            assert not packed.flags.aligned
            return r, [packed.reshape(n, 1, 1), np.ones((n, 1, 1))]

    prob = Problem()
    prob.add_parameter("x", np.zeros((2, 1)))
    prob.add_parameter("y", np.array([[3.0], [2.0], [5.0]]))
    prob.add_residuals(Sum(), [("x", np.array([0, 1])), ("y", np.array([0, 2]))])
    res = solve(prob, SolverOptions(no_schur_max_size=no_schur_max_size))
    assert res.summary.final_cost < 1e-20
    np.testing.assert_allclose(res["x"][:, 0] + res["y"][[0, 2], 0], 1.0, atol=1e-10)
