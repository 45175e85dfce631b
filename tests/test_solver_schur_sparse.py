"""The block-sparse Schur complement and the banded Cholesky solver against dense numpy on the
same normal equations; ``W^T x`` from the sub-blocks against scipy's ``W.T``; the BAL family
evaluated in row chunks against the whole family; and the sparse (banded) solve of a ring of
cameras against the dense solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from solver_toys import bal_problem

import calib.solver.chunks as chunks
from calib.residuals.bal_projection import BALProjection
from calib.solver import Problem, SolverOptions, linear_solver, solve
from calib.solver.normal_equations import linearize
from calib.solver.schur import LinearSolveError, diagonals, reduce
from calib.solver.schur_sparse import BandedCholesky, reduced_pattern
from calib.solver.structure import Structure


def _ring(n_cameras=40, n_points=400, fix_coords=False) -> Problem:
    """A ring of cameras, each point seen by 3 neighbours: a banded camera graph that wraps."""
    prob = bal_problem(n_cameras, n_points, seed=2)
    if fix_coords:
        prob.set_constant("intrinsics", coords=[2])
    return prob


def _system(prob, mu=1e-3):
    st = Structure(prob)
    neq = linearize(st, {n: g.value for n, g in prob.groups.items()}, True).neq
    return st, neq, diagonals(neq, 1e-6, 1e32), mu


@pytest.mark.parametrize("fix_coords", [False, True])
def test_block_reduction_equals_dense_and_general(fix_coords):
    st, neq, diag, mu = _system(_ring(fix_coords=fix_coords))
    dense = reduce(st, neq, mu, diag, dense=True)
    general = reduce(st, neq, mu, diag)  # CSR through W C^-1 W^T as a sparse product
    blocks = reduce(st, neq, mu, diag, blocks=True)
    assert blocks.S.format == "bsr"
    n = 1.0 / np.sqrt(np.diag(dense.S))
    for other in (blocks.S.toarray(), general.S.toarray()):
        assert np.abs(n[:, None] * (other - dense.S) * n).max() <= 1e-10
    np.testing.assert_allclose(blocks.b, dense.b, rtol=1e-12, atol=1e-12 * np.abs(dense.b).max())
    # the pattern holds A's blocks and every pair of cameras sharing a point, nothing more
    pat = reduced_pattern(st)
    nz = np.abs(dense.S).reshape(pat.nrb, pat.r, pat.nrb, pat.r).max(axis=(1, 3)) > 0
    assert pat.nnzb == int(nz.sum())


def test_banded_cholesky_solves_ring_and_refuses_indefinite():
    st, neq, diag, mu = _system(_ring(n_cameras=60, n_points=600))
    red = reduce(st, neq, mu, diag, blocks=True)
    banded = BandedCholesky(reduced_pattern(st))
    n = st.n_reduced
    # a ring of 60 cameras, neighbours 2 apart in a track: the RCM band is a few cameras
    assert banded.bandwidth < n // 4
    x = banded.solve(red.S, red.b)
    ref = sla.solve(red.S.toarray(), red.b, assume_a="pos")
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())
    st.banded = banded
    bad = red.S.copy()
    bad.data[:] *= -1.0
    with pytest.raises(LinearSolveError):
        linear_solver.solve(st, bad, red.b, "sparse")


def test_auto_chooses_banded_for_ring():
    st = Structure(_ring(n_cameras=60, n_points=600))
    assert linear_solver.choose(st, "auto", 300, 400) == "sparse"
    assert st.banded is not None
    st2 = Structure(_ring(n_cameras=60, n_points=600))
    # a band budget too small (dense_max 10: 333 flops) leaves CG above sparse_max
    assert linear_solver.choose(st2, "auto", 10, 400) == "cg"
    assert st2.banded is None


def test_wt_dot_equals_transpose_product():
    st, neq, _, _ = _system(_ring(fix_coords=True))
    es = neq.elim["points"]
    x = np.random.default_rng(0).normal(size=st.n_reduced)
    ref = (es.W.T @ x).reshape(es.g.shape)
    np.testing.assert_allclose(es.wt_dot(x), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(es.WT @ x, ref.ravel(), rtol=1e-12,
                               atol=1e-12 * np.abs(ref).max())


def test_bal_chunks_equal_whole(monkeypatch):
    prob = _ring()
    vals = {n: g.value for n, g in prob.groups.items()}
    whole = linearize(Structure(prob), vals, True)
    monkeypatch.setattr(BALProjection, "CHUNK_MIN_ROWS", 1)
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", 1 << 10)
    st = Structure(prob)
    assert len(st.terms[0].chunks) > 20
    part = linearize(st, vals, True)
    np.testing.assert_allclose(part.cost, whole.cost, rtol=1e-12)
    a, b = part.neq, whole.neq
    np.testing.assert_allclose(a.g_r, b.g_r, rtol=1e-9, atol=1e-10 * np.abs(b.g_r).max())
    np.testing.assert_allclose(a.A.toarray(), b.A.toarray(), rtol=1e-9,
                               atol=1e-12 * np.abs(b.A.toarray()).max())
    ea, eb = a.elim["points"], b.elim["points"]
    np.testing.assert_allclose(ea.C, eb.C, rtol=1e-9, atol=1e-12 * np.abs(eb.C).max())
    np.testing.assert_allclose(ea.w_sub, eb.w_sub, rtol=1e-9,
                               atol=1e-12 * np.abs(eb.w_sub).max())


def test_sparse_banded_solve_matches_dense_solve():
    prob = _ring(n_cameras=30, n_points=300)
    opts = dict(function_tolerance=1e-12, parameter_tolerance=1e-12, max_iterations=30)
    dense = solve(prob, SolverOptions(linear_solver="dense", **opts))
    sparse = solve(prob, SolverOptions(linear_solver="sparse", **opts))
    assert sparse.summary.linear_solver == "sparse"
    np.testing.assert_allclose(sparse.summary.final_cost, dense.summary.final_cost, rtol=1e-9)
    assert sparse.summary.final_cost < 1e-3 * sparse.summary.initial_cost
    np.testing.assert_allclose(sparse.values["points"], dense.values["points"], atol=1e-6)


def test_chunked_solve_recycles_buffers_and_matches_whole(monkeypatch):
    """Chunked BAL with the W accumulators written once per row and recycled between
    linearizations: the same solve as the whole family."""
    prob = _ring(n_cameras=30, n_points=300)
    opts = SolverOptions(function_tolerance=1e-12, parameter_tolerance=1e-12, max_iterations=30,
                         linear_solver="sparse")
    whole = solve(prob, opts)
    monkeypatch.setattr(BALProjection, "CHUNK_MIN_ROWS", 1)
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", 1 << 10)
    st = Structure(prob)
    assert all(pr.partition for pr in st.terms[0].re_pairs)
    part = solve(prob, opts)
    assert part.summary.num_unsuccessful_steps + part.summary.num_successful_steps > 3
    np.testing.assert_allclose(part.summary.final_cost, whole.summary.final_cost, rtol=1e-9)
    np.testing.assert_allclose(part.values["points"], whole.values["points"], atol=1e-7)
    np.testing.assert_allclose(part.values["intrinsics"], whole.values["intrinsics"], rtol=1e-8)
