"""The dense Schur complement by pair products against ``A + mu D - W C^-1 W^T`` formed with
dense numpy from the same normal equations."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
from solver_toys import bal_problem

from calib.solver import Problem
from calib.solver.normal_equations import linearize
from calib.solver.schur import LinearSolveError, diagonals, inverse_and_factor, reduce
from calib.solver.structure import Structure


def _problem(constant: str) -> Problem:
    prob = bal_problem(7, 60, seed=4)
    if constant == "coords":  # 7-wide camera blocks
        prob.set_constant("intrinsics", coords=[1, 2])
    elif constant == "blocks":  # poses and intrinsics separate units: 3-row sub-blocks
        prob.set_constant("poses", blocks=[0])
        prob.set_constant("points", blocks=[5, 6])
    return prob


@pytest.mark.parametrize("constant", ["none", "coords", "blocks"])
def test_dense_reduction_equals_explicit_schur(constant):
    prob = _problem(constant)
    st = Structure(prob)
    neq = linearize(st, {n: g.value for n, g in prob.groups.items()}, True).neq
    diag = diagonals(neq, 1e-6, 1e32)
    mu = 1e-3
    red = reduce(st, neq, mu, diag, dense=True)
    es = neq.elim["points"]
    d = es.C.shape[1]
    c_inv = np.linalg.inv(es.C + mu * diag[1]["points"][:, :, None] * np.eye(d))
    W = es.W.toarray()
    S = neq.A.toarray() + np.diag(mu * diag[0]) - W @ sla.block_diag(*c_inv) @ W.T
    wq = W @ np.einsum("pij,pj->pi", c_inv, es.g).ravel()
    b = -neq.g_r + wq
    assert isinstance(red.S, np.ndarray)
    # entries scaled by sqrt(A_ii A_jj): the columns differ by 1e20 (k2 against rotation)
    n = 1.0 / np.sqrt(np.diag(neq.A.toarray()) + mu * diag[0])
    assert np.abs(n[:, None] * (red.S - S) * n).max() <= 1e-10
    assert np.all(np.abs(red.b - b) <= 1e-9 * (np.abs(neq.g_r) + np.abs(wq)))
    sparse = reduce(st, neq, mu, diag, dense=False)  # the general path agrees too
    assert np.abs(n[:, None] * (sparse.S.toarray() - red.S) * n).max() <= 1e-10
    if constant == "blocks":
        assert st.row_block == 3


@pytest.mark.parametrize("d", [1, 3, 6])
def test_inverse_and_factor_against_numpy(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(50, d, d))
    C = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(d)
    c_inv, l_inv = inverse_and_factor(C)
    assert np.allclose(c_inv, np.linalg.inv(C), rtol=1e-10, atol=1e-10)
    low = np.linalg.cholesky(C)
    assert np.allclose(l_inv @ low, np.eye(d), atol=1e-10)
    assert np.allclose(np.triu(l_inv, 1), 0.0)
    C[7] = -C[7]  # one block not positive definite
    with pytest.raises(LinearSolveError):
        inverse_and_factor(C)
