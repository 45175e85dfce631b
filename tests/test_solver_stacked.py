"""The engine's stacked path (calib.solver.stacked): a board family writes [J | r] into one
buffer and every sum comes from one product per view. Checked against numerical
derivatives (the buffer's columns, the returned products), against the general path (the
normal equations, the solve) and for when it applies, its failure messages and its
products option."""

from __future__ import annotations

import numpy as np
import pytest

import calib.solver.chunks as chunks
import calib.solver.structure as structure_mod
from calib.camera import get_model
from calib.errors import InputError
from calib.lie import se3
from calib.residuals.base import ResidualFamily
from calib.residuals.reprojection import BoardReprojection
from calib.solver import Euclidean, HuberLoss, Problem, SE3Manifold, SolverOptions, solve
from calib.solver.normal_equations import linearize
from calib.solver.structure import Structure
from calib.testing import assert_jacobian_close, numeric_family_jacobians

PARAMS = {
    "pinhole": np.array([800.0, 790.0, 330.0, 250.0, -0.2, 0.05, 0.001, -0.002, 0.01]),
    "rational": np.array([800.0, 790.0, 330.0, 250.0, -0.2, 0.05, 0.001, -0.002, 0.01,
                          0.02, -0.01, 0.005]),
    "fisheye": np.array([400.0, 402.0, 330.0, 250.0, 0.05, -0.01, 0.002, -0.001]),
    "double-sphere": np.array([300.0, 302.0, 330.0, 250.0, -0.2, 0.6]),
}


def _views(seed: int, model, params, nv: int = 12, equal: bool = True):
    """Board rows ``(board (R, 3), pixels (R, 2), view (R,))`` of ``nv`` noisy views and the
    true poses ``(nv, 4, 4)``; ``equal=False`` drops random corners."""
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(9) * 0.03, np.arange(6) * 0.03)
    board = np.c_[gx.ravel() - 0.12, gy.ravel() - 0.075, np.zeros(54)]
    T = se3.exp(np.c_[rng.normal(0, 0.03, (nv, 3)), rng.normal(0, 0.25, (nv, 3))])
    T[:, :3, 3] += [0.0, 0.0, 0.6]
    bp, uv, vidx = [], [], []
    for v in range(nv):
        keep = np.ones(54, bool) if equal else rng.random(54) > 0.3
        pix = model.project(se3.act(T[v], board[keep]), params)[0]
        bp.append(board[keep])
        uv.append(pix + rng.normal(0, 0.3, pix.shape))
        vidx.append(np.full(int(keep.sum()), v))
    return np.concatenate(bp), np.concatenate(uv), np.concatenate(vidx), T


def _problem(seed=1, model_name="pinhole", equal=True, loss=None, fix=(), aspect=None):
    model = get_model(model_name)
    params = PARAMS[model_name].copy()
    bp, uv, vidx, T = _views(seed, model, params, equal=equal)
    rng = np.random.default_rng(seed + 100)
    start = params * (1 + rng.normal(0, 0.003, len(params)))
    p = Problem()
    p.add_parameter("camera", start[None], Euclidean(model.num_params))
    p.add_parameter("poses", se3.exp(rng.normal(0, 0.005, (len(T), 6))) @ T, SE3Manifold(),
                    eliminate=True)
    p.add_residuals(BoardReprojection(bp, uv, aspect, model),
                    [("camera", np.zeros(len(uv), int)), ("poses", vidx)], loss=loss)
    held = list(fix) + ([0] if aspect is not None else [])
    if held:
        p.set_constant("camera", coords=held)
    return p


def _values(p):
    return {n: g.value for n, g in p.groups.items()}


@pytest.mark.parametrize("model_name,aspect", [("pinhole", None), ("pinhole", 0.99),
                                               ("rational", None), ("fisheye", None),
                                               ("double-sphere", None)])
def test_stacked_buffer_matches_numerical_jacobians(model_name, aspect):
    """Every column the family writes into the engine's buffer layout (a ``(w, rows)``
    column-major block seen as ``(rows, 2, w)``), against central differences; the last
    column equals the plain residuals; no entry is left unwritten."""
    p = _problem(2, model_name, aspect=aspect)
    rb = p.residual_blocks[0]
    fam, vals = rb.family, [p.groups["camera"].value, p.groups["poses"].value]
    npar = get_model(model_name).num_params
    raw = np.full((2, npar + 7, rb.num_residuals), np.nan)
    fam.evaluate_stacked(vals, rb.indices, raw.transpose(2, 0, 1))
    out = raw.transpose(2, 0, 1)
    assert np.isfinite(out).all()
    r, _ = fam.evaluate(vals, rb.indices, jacobians=False)
    np.testing.assert_array_equal(out[:, :, -1], r)
    jc, jp = numeric_family_jacobians(fam, vals, rb.indices,
                                      [Euclidean(npar), SE3Manifold()], eps=1e-6)
    if aspect is not None:  # the tied fx: fy's column carries both, fx's is zero
        jc[:, :, 1] += aspect * jc[:, :, 0]
        jc[:, :, 0] = 0.0
    assert_jacobian_close(out[:, :, :npar], jc, rtol=1e-6)
    assert_jacobian_close(out[:, :, npar:npar + 6], jp, rtol=1e-6)


def _general(monkeypatch):
    """Build structures without the stacked path (the general path's sums)."""
    monkeypatch.setattr(structure_mod, "plan_stacked", lambda tp: None)


@pytest.mark.parametrize("fix,aspect,doubles,equal", [
    ((), None, 1 << 40, True), ((8,), None, 1 << 12, True), ((6, 7), 1.01, 1 << 13, True),
    ((), None, 1 << 40, False), ((8,), 1.01, 1 << 12, False)])
def test_stacked_normal_equations_equal_the_general_path(monkeypatch, fix, aspect, doubles,
                                                        equal):
    """One chunk or several (whole views each when the views are equal; unequal views split
    by chunk boundaries), held coordinates (index columns), a tied aspect: A, g_r, C, g_e, W
    agree with the general path's to rounding; the cost is the same number."""
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", doubles)
    p = _problem(3, fix=fix, aspect=aspect, equal=equal)
    s = Structure(p)
    assert s.terms[0].stacked is not None
    assert (len(s.terms[0].chunks) > 1) == (doubles < 1 << 20)
    got = linearize(s, _values(p))
    _general(monkeypatch)
    want = linearize(Structure(p), _values(p))
    assert got.cost == want.cost
    a, b = got.neq, want.neq

    def close(x, y):
        np.testing.assert_allclose(x, y, rtol=1e-11, atol=1e-13 * np.abs(y).max())

    close(a.g_r, b.g_r)
    close(a.A.toarray(), b.A.toarray())
    ea, eb = a.elim["poses"], b.elim["poses"]
    close(ea.C, eb.C)
    close(ea.g, eb.g)
    close(ea.W.toarray(), eb.W.toarray())


@pytest.mark.parametrize("model_name", ["pinhole", "fisheye"])
def test_stacked_solve_matches_the_general_solve(monkeypatch, model_name):
    p = _problem(4, model_name)
    opts = SolverOptions(function_tolerance=1e-12, parameter_tolerance=1e-14,
                         no_schur_max_size=0)  # not the tiny path: eliminate the poses
    got = solve(p, opts)
    _general(monkeypatch)
    want = solve(p, opts)
    assert got.summary.termination == want.summary.termination == "converged"
    np.testing.assert_allclose(got.values["camera"], want.values["camera"], rtol=1e-9)
    np.testing.assert_allclose(got.values["poses"], want.values["poses"], atol=1e-12)
    np.testing.assert_allclose(got.summary.final_cost, want.summary.final_cost, rtol=1e-12)


def test_stacked_path_only_where_it_applies():
    """Views in order (equal or not) without a loss: stacked. A robust loss (the products
    would be weighted), rows out of view order: the general path."""
    assert Structure(_problem()).terms[0].stacked is not None
    assert Structure(_problem(equal=False)).terms[0].stacked is not None
    assert Structure(_problem(loss=HuberLoss(1.0))).terms[0].stacked is None
    p = _problem()
    rb = p.residual_blocks[0]
    perm = np.random.default_rng(0).permutation(rb.num_residuals)
    q = Problem()
    for n, g in p.groups.items():
        q.add_parameter(n, g.value, g.manifold, eliminate=g.eliminate)
    fam = rb.family
    q.add_residuals(BoardReprojection(fam.board_points[perm], fam.observed[perm]),
                    [("camera", rb.indices[0][perm]), ("poses", rb.indices[1][perm])])
    assert Structure(q).terms[0].stacked is None


@pytest.mark.parametrize("equal,doubles", [(True, 1 << 40), (False, 1 << 12)])
def test_products_equal_numerical_normal_matrices(monkeypatch, equal, doubles):
    """``SolverOptions.products``: per view ``[J | r]^T [J | r]`` at the solution (unequal
    views split over chunks too), against the product of numerical Jacobians and the
    residuals there; the residuals kept with them are the family's own there."""
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", doubles)
    p = _problem(5, fix=(8,), equal=equal)
    res = solve(p, SolverOptions(products=("poses",)))
    h = res.products["poses"]
    assert h.shape == (12, 16, 16)
    rb = p.residual_blocks[0]
    vals = [res.values["camera"], res.values["poses"]]
    r, _ = rb.family.evaluate(vals, rb.indices, jacobians=False)
    np.testing.assert_array_equal(res.residuals[0], r)  # the last linearization's, kept
    jc, jp = numeric_family_jacobians(rb.family, vals, rb.indices, [Euclidean(9),
                                                                   SE3Manifold()], eps=1e-6)
    for v in range(12):
        rows = rb.indices[1] == v
        b = np.concatenate([jc[rows], jp[rows], r[rows][:, :, None]], axis=2).reshape(-1, 16)
        want = b.T @ b
        scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
        np.testing.assert_array_less(np.abs(h[v] - want), 1e-6 * scale + 1e-9)


def test_products_absent_off_the_stacked_path_and_unknown_groups():
    res = solve(_problem(loss=HuberLoss(1.0)), SolverOptions(products=("poses",)))
    assert res.products == {} and res.residuals == {}
    with pytest.raises(InputError, match="camera"):
        solve(_problem(), SolverOptions(products=("camera",)))


def test_stacked_failures_name_the_cause(monkeypatch):
    """A NaN residual at the start, and a NaN Jacobian entry (finite residuals), end the
    solve as on the general path."""
    p = _problem(6)
    p.groups["poses"].value[3, 2, 3] = np.nan
    opts = SolverOptions(no_schur_max_size=0)
    res = solve(p, opts)
    assert res.summary.termination == "failure"
    assert "non-finite residual in BoardReprojection" in res.summary.message
    write = BoardReprojection.evaluate_stacked

    def bad_jacobian(self, values, indices, out):
        write(self, values, indices, out)
        out[5, 1, 3] = np.nan

    monkeypatch.setattr(BoardReprojection, "evaluate_stacked", bad_jacobian)
    res = solve(_problem(6), opts)
    assert res.summary.termination == "failure"
    assert "non-finite Jacobian in BoardReprojection" in res.summary.message


def test_joint_information_by_dense_elimination_equals_numerical_schur_complement():
    """An information without covariances comes from the dense elimination: the Schur
    complement over the poses of ``J^T J`` from numerical Jacobians (held k3: zero row and
    column), and the same matrix as when a covariance is asked too (sparse elimination)."""
    p = _problem(7, fix=(8,))
    res = solve(p, SolverOptions(max_iterations=0, information=(("camera",),)))
    both = solve(p, SolverOptions(max_iterations=0, information=(("camera",),),
                                  covariance=("camera",)))
    got = res.information[("camera",)]
    rb = p.residual_blocks[0]
    vals = [p.groups["camera"].value, p.groups["poses"].value]
    jc, jp = numeric_family_jacobians(rb.family, vals, rb.indices, [Euclidean(9),
                                                                   SE3Manifold()], eps=1e-6)
    jc[:, :, 8] = 0.0
    nv = len(vals[1])
    J = np.zeros((2 * rb.num_residuals, 9 + 6 * nv))
    J[:, :9] = jc.reshape(-1, 9)
    for v in range(nv):
        rows = np.repeat(rb.indices[1] == v, 2)
        J[rows, 9 + 6 * v:15 + 6 * v] = jp[rb.indices[1] == v].reshape(-1, 6)
    H = J.T @ J
    A, W, C = H[:9, :9], H[:9, 9:], H[9:, 9:]
    want = A - W @ np.linalg.solve(C, W.T)
    want[8, :] = want[:, 8] = 0.0
    scale = np.sqrt(np.outer(np.diag(want), np.diag(want))) + 1e-300
    np.testing.assert_array_less(np.abs(got - want), 1e-6 * scale + 1e-12)
    np.testing.assert_allclose(got, both.information[("camera",)], rtol=1e-10,
                               atol=1e-12 * np.abs(got).max())


class _Rosenbrock(ResidualFamily):
    """``r = (10 (x1 - x0^2), 1 - x0)`` on one Euclidean block: from (-1.2, 1) the first
    Gauss-Newton step overshoots (a rejected first step)."""

    residual_dim = 1

    def evaluate(self, values, indices, jacobians=True):
        x0, x1 = values[0][0]
        r = np.array([[10 * (x1 - x0 * x0)], [1 - x0]])
        return r, ([np.array([[[-20 * x0, 10.0]], [[-1.0, 0.0]]])] if jacobians else None)


def _counted(monkeypatch):
    """Count the engine's linearizations: ``{True: with Jacobians, False: cost only}``."""
    import calib.solver.lm as lm

    calls = {True: 0, False: 0}
    real = lm.linearize

    def counting(structure, values, jacobians=True):
        calls[jacobians] += 1
        return real(structure, values, jacobians)

    monkeypatch.setattr(lm, "linearize", counting)
    return calls


def test_trust_first_step_keeps_every_step(monkeypatch):
    """``trust_first_step``: the same iterations and result (bit for bit); an accepted first
    step saves its cost-only evaluation, a rejected one (Rosenbrock from (-1.2, 1)) costs a
    linearization instead."""
    p = _problem(9)
    rosen = Problem()
    rosen.add_parameter("x", np.array([[-1.2, 1.0]]))
    rosen.add_residuals(_Rosenbrock(), [("x", np.zeros(2, int))])
    for prob, accepted in ((p, True), (rosen, False)):
        runs = []
        for trust in (False, True):
            calls = _counted(monkeypatch)
            res = solve(prob, SolverOptions(trust_first_step=trust, initial_damping=1e-8,
                                            no_schur_max_size=0))
            runs.append((res, dict(calls)))
        (a, ca), (b, cb) = runs
        assert a.summary.iterations[0].accepted == accepted
        assert a.summary.termination == b.summary.termination == "converged"
        for name in a.values:
            np.testing.assert_array_equal(a.values[name], b.values[name])
        assert [r.cost for r in a.summary.iterations] == [r.cost for r in b.summary.iterations]
        if accepted:
            assert (cb[False], cb[True]) == (ca[False] - 1, ca[True])
        else:
            assert (cb[False], cb[True]) == (ca[False] - 1, ca[True] + 1)
