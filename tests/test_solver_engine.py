"""Engine behaviour: Schur elimination is exact, solvers agree, covariance, guards."""

from __future__ import annotations

import numpy as np
import pytest
from solver_toys import NormalizedProjection, toy_bundle

from calib.errors import InputError
from calib.residuals.base import ResidualFamily
from calib.solver import (
    CauchyLoss,
    Euclidean,
    HuberLoss,
    Problem,
    SE3Manifold,
    SolverOptions,
    solve,
)
from calib.solver.normal_equations import assemble, linearize
from calib.solver.structure import Structure


def _problem(d, eliminate, loss=None):
    p = Problem()
    p.add_parameter("T", d["t0"], SE3Manifold())
    p.add_parameter("X", d["x0"], Euclidean(3), eliminate=eliminate)
    p.set_constant("T", blocks=[0])
    p.set_constant("X", blocks=[0])
    p.add_residuals(NormalizedProjection(d["obs"]), [("T", d["cam"]), ("X", d["pt"])], loss=loss)
    return p


@pytest.mark.parametrize("loss", [None, HuberLoss(0.002), CauchyLoss(0.002)])
def test_schur_gives_same_steps_and_solution(loss):
    d = toy_bundle()
    a = solve(_problem(d, False, loss), SolverOptions(linear_solver="dense"))
    b = solve(_problem(d, True, loss), SolverOptions(linear_solver="dense"))
    ca = [r.cost for r in a.summary.iterations]
    cb = [r.cost for r in b.summary.iterations]
    assert len(ca) == len(cb)
    np.testing.assert_allclose(ca, cb, rtol=1e-9)
    np.testing.assert_allclose([r.step_norm for r in a.summary.iterations],
                               [r.step_norm for r in b.summary.iterations], rtol=1e-6)
    np.testing.assert_allclose(a.values["X"], b.values["X"], atol=1e-9)
    np.testing.assert_allclose(a.values["T"], b.values["T"], atol=1e-9)
    assert a.summary.converged and b.summary.converged


@pytest.mark.parametrize("method", ["dense", "sparse", "cg"])
def test_linear_solvers_agree(method):
    d = toy_bundle(seed=1)
    ref = solve(_problem(d, True), SolverOptions(linear_solver="dense"))
    res = solve(_problem(d, True), SolverOptions(linear_solver=method, cg_tolerance=1e-12))
    assert res.summary.linear_solver == method
    assert res.summary.converged
    np.testing.assert_allclose(res.summary.final_cost, ref.summary.final_cost, rtol=1e-8)
    np.testing.assert_allclose(res.values["X"], ref.values["X"], atol=1e-7)


def test_recovers_ground_truth_and_does_not_mutate_problem():
    d = toy_bundle(noise=0.0, seed=2)
    p = _problem(d, True)
    before = p.groups["T"].value.copy()
    res = solve(p, SolverOptions(function_tolerance=1e-14))
    np.testing.assert_array_equal(p.groups["T"].value, before)
    np.testing.assert_allclose(res.values["X"], d["x_true"], atol=1e-6)
    assert res.summary.final_cost < 1e-16
    assert res.summary.initial_cost > 1e-4


def _dense_jtj(d, p):
    """Full J^T J via the engine's own families but dense assembly (independent of Schur)."""
    s = Structure(p)
    lin = linearize(s, {n: g.value for n, g in p.groups.items()})
    # finite-difference J over the free tangent coordinates, dense
    fam = NormalizedProjection(d["obs"])
    from calib.testing import numeric_family_jacobians

    jt, jx = numeric_family_jacobians(fam, [p.groups["T"].value, p.groups["X"].value],
                                      [d["cam"], d["pt"]], [SE3Manifold(), Euclidean(3)])
    n_res = len(d["cam"])
    nc, npt = p.groups["T"].num_blocks, p.groups["X"].num_blocks
    J = np.zeros((2 * n_res, 6 * nc + 3 * npt))
    rows = np.arange(n_res)
    for k in range(2):
        for a in range(6):
            J[2 * rows + k, 6 * d["cam"] + a] = jt[:, k, a]
        for a in range(3):
            J[2 * rows + k, 6 * nc + 3 * d["pt"] + a] = jx[:, k, a]
    keep = np.ones(J.shape[1], bool)
    keep[:6] = False  # constant pose 0
    keep[6 * nc:6 * nc + 3] = False  # constant point 0
    return J[:, keep], lin


def test_covariance_equals_dense_inverse():
    d = toy_bundle(seed=3)
    sol = solve(_problem(d, True), SolverOptions(covariance=("T", "X"), information=("T",)))
    p = _problem(d, False)
    for name in ("T", "X"):
        p.groups[name].value[:] = sol.values[name]
    J, _ = _dense_jtj(d, p)
    cov_full = np.linalg.inv(J.T @ J)
    nc = d["t0"].shape[0]
    cov_t = sol.covariance["T"]
    assert cov_t.shape == (6 * nc, 6 * nc)
    np.testing.assert_allclose(cov_t[:6], 0.0)  # constant block
    np.testing.assert_allclose(cov_t[6:, 6:], cov_full[:6 * (nc - 1), :6 * (nc - 1)],
                               rtol=1e-4, atol=1e-12)
    cov_x = sol.covariance["X"]
    off = 6 * (nc - 1)
    for k in (1, 5, 17):
        sl = slice(off + 3 * (k - 1), off + 3 * k)
        np.testing.assert_allclose(cov_x[k], cov_full[sl, sl], rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(cov_x[0], 0.0)
    assert sol.information["T"].shape == (6 * nc, 6 * nc)


def test_constant_coordinates_stay_fixed():
    d = toy_bundle(seed=4)
    p = _problem(d, True)
    p.set_constant("X", coords=[2])
    res = solve(p)
    np.testing.assert_array_equal(res.values["X"][:, 2], d["x0"][:, 2])
    assert not np.allclose(res.values["X"][:, :2], d["x0"][:, :2])
    np.testing.assert_array_equal(res.values["T"][0], d["t0"][0])


class _Nan(ResidualFamily):
    residual_dim = 1

    def __init__(self, bad_after=None):
        self.calls = 0
        self.bad_after = bad_after

    def evaluate(self, values, indices, jacobians=True):
        self.calls += 1
        x = values[0][indices[0]]
        r = x - 3.0
        if self.bad_after is not None and self.calls > self.bad_after:
            r = r * np.nan
        return r, ([np.ones((len(x), 1, 1))] if jacobians else None)


def test_non_finite_residuals_stop_with_failure():
    p = Problem()
    p.add_parameter("x", np.array([[0.0]]))
    p.add_residuals(_Nan(bad_after=0), [("x", np.zeros(1, int))])
    res = solve(p)
    assert res.summary.termination == "failure"
    assert "non-finite" in res.summary.message


def test_non_finite_trial_is_rejected_not_accepted():
    p = Problem()
    p.add_parameter("x", np.array([[0.0]]))
    p.add_residuals(_Nan(bad_after=1), [("x", np.zeros(1, int))])
    res = solve(p, SolverOptions(max_iterations=5))
    assert res.summary.termination != "converged"
    np.testing.assert_array_equal(res.values["x"], [[0.0]])


def test_bad_problem_definitions_raise_input_error():
    p = Problem()
    with pytest.raises(InputError):
        p.add_parameter("x", np.array([[np.nan]]))
    p.add_parameter("x", np.zeros((2, 3)))
    with pytest.raises(InputError):
        p.add_parameter("x", np.zeros((2, 3)))
    with pytest.raises(InputError):
        p.add_residuals(NormalizedProjection(np.zeros((1, 2))), [("x", np.array([5]))])
    with pytest.raises(InputError):
        SolverOptions(linear_solver="magic")
    with pytest.raises(InputError):
        HuberLoss(-1.0)


def test_iteration_cap_and_records():
    d = toy_bundle(seed=5)
    res = solve(_problem(d, True), SolverOptions(max_iterations=2, function_tolerance=0))
    assert res.summary.termination == "no_convergence"
    assert len(res.summary.iterations) == 2
    rec = res.summary.iterations[0]
    assert rec.iteration == 1 and rec.damping > 0 and rec.time_s >= 0
    assert res.summary.phase_times_s["evaluate"] > 0
    seen = []
    solve(_problem(d, True), SolverOptions(callback=lambda r: seen.append(r.cost)))
    assert len(seen) >= 1


def test_gradient_is_exact_with_robust_loss():
    """Assembled gradient equals a numerical gradient of 0.5*sum rho (loss included)."""
    d = toy_bundle(seed=6)
    loss = CauchyLoss(0.01)
    p = _problem(d, True, loss)
    s = Structure(p)
    vals = {n: g.value for n, g in p.groups.items()}
    neq = assemble(s, linearize(s, vals))
    from calib.solver.manifold import Euclidean as E

    def cost_at_point(x1):
        v = dict(vals)
        v["X"] = vals["X"].copy()
        v["X"][1] = x1
        return linearize(s, v, jacobians=False).cost

    from calib.testing import numeric_jacobian

    g_num = numeric_jacobian(cost_at_point, vals["X"][1], manifold=E(3))[0]
    np.testing.assert_allclose(neq.elim["X"].g[0], g_num, rtol=1e-6, atol=1e-12)


def _focal_problem(d, eliminate, fix_focal_block=None):
    from solver_toys import FocalProjection

    f0 = np.full((d["t0"].shape[0], 1), 1.0)
    f0[1:] += 0.01
    p = Problem()
    p.add_parameter("T", d["t0"], SE3Manifold())
    p.add_parameter("F", f0, Euclidean(1))
    p.add_parameter("X", d["x0"], Euclidean(3), eliminate=eliminate)
    p.set_constant("T", blocks=[0])
    p.set_constant("X", blocks=[0])
    p.set_constant("F", blocks=[0] if fix_focal_block is None else [0, fix_focal_block])
    p.add_residuals(FocalProjection(d["obs"]), [("T", d["cam"]), ("F", d["cam"]),
                                                ("X", d["pt"])])
    return p


@pytest.mark.parametrize("fix_focal_block", [None, 3])
def test_interleaved_camera_units_are_exact(fix_focal_block):
    """Pose + per-camera intrinsics are interleaved into one unit when always read together;
    when their free blocks differ they are not. Both must equal the plain solve."""
    d = toy_bundle(seed=7)
    s = Structure(_focal_problem(d, True, fix_focal_block))
    assert (["T", "F"] in s.units) == (fix_focal_block is None)
    a = solve(_focal_problem(d, False, fix_focal_block),
              SolverOptions(linear_solver="dense", covariance=("F",)))
    for method in ("dense", "sparse", "cg"):
        b = solve(_focal_problem(d, True, fix_focal_block),
                  SolverOptions(linear_solver=method, cg_tolerance=1e-12, covariance=("F",)))
        np.testing.assert_allclose(b.summary.final_cost, a.summary.final_cost, rtol=1e-9)
        np.testing.assert_allclose(b.values["F"], a.values["F"], atol=1e-8)
        np.testing.assert_allclose(b.values["T"], a.values["T"], atol=1e-8)
        np.testing.assert_allclose(b.covariance["F"], a.covariance["F"], rtol=1e-5,
                                   atol=1e-14)
    if fix_focal_block is not None:
        np.testing.assert_array_equal(a.values["F"][fix_focal_block], 1.01)
