"""Random linear least-squares problems: the engine must reproduce numpy's lstsq exactly,
whatever the block structure, elimination, constant coordinates and linear solver."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calib.residuals.base import ResidualFamily
from calib.solver import Euclidean, Problem, SolverOptions, solve


class LinearPair(ResidualFamily):
    """``r_n = A_n x_{a(n)} + B_n y_{b(n)} - c_n`` with per-residual matrices."""

    def __init__(self, a, b, c):
        self.a, self.b, self.c = a, b, c
        self.residual_dim = c.shape[1]

    def evaluate(self, values, indices, jacobians=True):
        x = values[0][indices[0]]
        y = values[1][indices[1]]
        r = np.einsum("nij,nj->ni", self.a, x) + np.einsum("nij,nj->ni", self.b, y) - self.c
        return r, ([self.a, self.b] if jacobians else None)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), eliminate=st.booleans(),
       method=st.sampled_from(["dense", "sparse", "cg"]), fix_coord=st.booleans())
def test_linear_problem_matches_lstsq(seed, eliminate, method, fix_coord):
    rng = np.random.default_rng(seed)
    nx, ny, dx, dy, m = rng.integers(1, 4), rng.integers(2, 12), 2, 3, 2
    n = 4 * ny + 3 * nx
    ia = rng.integers(0, nx, n)
    ib = np.r_[np.repeat(np.arange(ny), 2), rng.integers(0, ny, n - 2 * ny)]
    a = rng.normal(size=(n, m, dx))
    b = rng.normal(size=(n, m, dy))
    c = rng.normal(size=(n, m))
    x0 = rng.normal(size=(nx, dx))
    y0 = rng.normal(size=(ny, dy))
    p = Problem()
    p.add_parameter("x", x0, Euclidean(dx))
    p.add_parameter("y", y0, Euclidean(dy), eliminate=eliminate)
    if fix_coord:
        p.set_constant("x", coords=[1])
    p.add_residuals(LinearPair(a, b, c), [("x", ia), ("y", ib)])
    res = solve(p, SolverOptions(linear_solver=method, cg_tolerance=1e-14,
                                 function_tolerance=1e-14, max_iterations=50))
    # dense reference over the free coordinates
    J = np.zeros((n * m, nx * dx + ny * dy))
    rows = np.arange(n)
    for k in range(m):
        for j in range(dx):
            J[rows * m + k, ia * dx + j] = a[:, k, j]
        for j in range(dy):
            J[rows * m + k, nx * dx + ib * dy + j] = b[:, k, j]
    free = np.ones(J.shape[1], bool)
    if fix_coord:
        free[np.arange(nx) * dx + 1] = False
    z0 = np.r_[x0.ravel(), y0.ravel()]
    rhs = c.ravel() - J[:, ~free] @ z0[~free]
    sol, *_ = np.linalg.lstsq(J[:, free], rhs, rcond=None)
    z = z0.copy()
    z[free] = sol
    np.testing.assert_allclose(res.values["x"].ravel(), z[:nx * dx], atol=1e-6)
    np.testing.assert_allclose(res.values["y"].ravel(), z[nx * dx:], atol=1e-6)
    cost = 0.5 * np.sum((J @ z - c.ravel()) ** 2)
    assert abs(res.summary.final_cost - cost) <= 1e-9 * max(cost, 1.0)
