"""The Levenberg-Marquardt engine shared by every task in calib.

Each iteration solves ``(J^T J + mu D) dx = -J^T r`` with ``D = clip(diag(J^T J))``,
eliminating the marked groups by the Schur complement, and updates ``mu`` from the gain
ratio ``rho = (actual decrease) / (decrease predicted by the linear model)`` with
Nielsen's rule: accepted -> ``mu *= max(1/3, 1 - (2 rho - 1)^3)``, ``nu = 2``;
rejected -> ``mu *= nu``, ``nu *= 2``. Far from a minimum ``mu`` grows and the step
approaches scaled gradient descent; near one it shrinks to Gauss-Newton. The predicted
decrease uses ``dx^T J^T J dx`` from the assembled blocks; a trial point is linearized at
once only while the model has been predicting well, else its cost is checked first.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from time import perf_counter

import numpy as np

from . import linear_solver, stacked
from .covariance import covariance_and_information
from .heap import keep_freed_memory
from .normal_equations import assemble, hessian_quadratic_form, linearize, recycle
from .options import SolverOptions
from .problem import Problem
from .schur import LinearSolveError, back_substitute, diagonals, reduce
from .structure import Structure, free_size
from .summary import IterationRecord, SolverResult, Summary
from .threads import blas_threads

log = logging.getLogger(__name__)


class _Clock:
    def __init__(self) -> None:
        self.times: defaultdict[str, float] = defaultdict(float)

    def add(self, phase: str, t0: float) -> float:
        t1 = perf_counter()
        self.times[phase] += t1 - t0
        return t1


def _update_plan(structure: Structure) -> list:
    """Per group with free coordinates, what :func:`_apply_step` and :func:`_x_norm` need,
    formed once per structure: ``(name, layout, reduced indices (n_free, df) or None when
    eliminated, free blocks or None when every block is free, tangent coordinates or None
    when every one is free)``."""
    plan = structure.__dict__.get("_update_plan")
    if plan is None:
        plan = []
        for name, lay in structure.layouts.items():
            if lay.size == 0:
                continue
            plan.append((name, lay, None if lay.eliminate else lay.index_matrix(),
                         None if lay.n_free == len(lay.block_pos) else lay.free_blocks,
                         None if lay.df == lay.manifold.tangent_dim else lay.free_coords))
        structure.__dict__["_update_plan"] = plan
    return plan


def _apply_step(structure: Structure, values: dict, dx_r: np.ndarray,
                dx_e: dict) -> tuple[dict, float]:
    """The trial point ``values (+) dx`` and its :func:`_x_norm`, in one pass."""
    out = dict(values)  # groups without free coordinates keep their arrays
    total = 0.0
    for name, lay, index, blocks, coords in _update_plan(structure):
        v = values[name]
        tangent = dx_e[name] if index is None else dx_r[index]
        if coords is not None:
            full = np.zeros((lay.n_free, lay.manifold.tangent_dim))
            full[:, coords] = tangent
            tangent = full
        if blocks is None:
            new = out[name] = lay.manifold.plus(v, tangent)
            free = new.reshape(-1)
        else:
            new = v.copy()
            new[blocks] = free = lay.manifold.plus(v[blocks], tangent)
            out[name] = new
            free = free.reshape(-1)
        total += float(free @ free)
    return out, math.sqrt(total)


def _x_norm(structure: Structure, values: dict) -> float:
    """``|x|`` over the blocks with free coordinates (their whole values), as in Ceres'
    parameter tolerance."""
    total = 0.0
    for name, _, _, blocks, _ in _update_plan(structure):
        v = values[name]
        free = (v if blocks is None else v[blocks]).ravel()
        total += float(free @ free)
    return float(np.sqrt(total))


def _one_call_step(method: str, neq) -> bool:
    """Is the damped step one call (:func:`.linear_solver.damped_dense`)? A dense system
    with nothing to eliminate: the tiny path, an ICP pose, a camera's intrinsics."""
    return method == "dense" and not neq.elim


def _tiny(problem: Problem, opts: SolverOptions) -> bool:
    """Solve as one dense system over every free coordinate: a problem with at most
    ``opts.no_schur_max_size`` free coordinates in all. With eliminated groups they are
    then not eliminated (unless a covariance or information is asked, whose blocks are
    defined on the eliminated layout): the block machinery's fixed cost per iteration
    (batched 3x3 inverses, pair products, sparse matrices) is larger than the arithmetic.
    Without, the layout is the same either way and ``A`` is a dense array (an ICP pose: no
    sparse matrix at all)."""
    if opts.linear_solver not in ("auto", "dense"):
        return False
    elim = any(g.eliminate for g in problem.groups.values())
    if elim and (opts.covariance or opts.information or opts.products):
        return False
    n = sum(free_size(g) for g in problem.groups.values())
    return n <= min(opts.no_schur_max_size, opts.dense_max_size)


def solve(problem: Problem, options: SolverOptions | None = None) -> SolverResult:
    """Minimise ``0.5 * sum rho(|r_n|^2)`` over the problem's free parameters.

    Never mutates ``problem``. Returns a :class:`SolverResult` whose summary says why it
    stopped; callers turn ``failure`` / ``no_convergence`` into errors as they see fit.
    BLAS threads: one unless ``CALIB_BLAS_THREADS`` says otherwise (:mod:`.threads`).
    """
    with blas_threads():
        return _solve(problem, options)


def _solve(problem: Problem, options: SolverOptions | None) -> SolverResult:
    opts = options or SolverOptions()
    keep_freed_memory()
    t_start = perf_counter()
    clock = _Clock()
    t0 = perf_counter()
    structure = Structure(problem, schur=not _tiny(problem, opts))
    values = {n: g.value.copy() for n, g in problem.groups.items()}
    method = linear_solver.choose(structure, opts.linear_solver, opts.dense_max_size,
                                  opts.sparse_max_size)
    # a dense reduced solve densifies A anyway: assemble it dense (the same sums), with no
    # sparse matrix per linearization and, for a camera or a rig, no scipy.sparse at all
    structure.dense_a = structure.dense_a or method == "dense"
    n_params = structure.n_reduced + structure.n_eliminated
    n_res = sum(rb.num_residuals for rb in problem.residual_blocks)
    n_scalars = sum(rb.num_residuals * rb.family.residual_dim for rb in problem.residual_blocks)
    t0 = clock.add("structure", t0)

    lin = linearize(structure, values, True)
    t0 = clock.add("evaluate", t0)
    initial_cost = lin.cost
    records: list[IterationRecord] = []
    n_ok = n_bad = 0

    def finish(termination: str, message: str, cost: float) -> SolverResult:
        cov, info, deficient, prods, resid = {}, {}, (), {}, {}
        if (opts.covariance or opts.information or opts.products) and lin.ok:
            tc = perf_counter()
            final = lin if lin.has_jacobians else linearize(structure, values, True)
            neq = assemble(structure, final)
            if opts.covariance or opts.information:
                cov, info, deficient = covariance_and_information(
                    structure, neq, opts.covariance, opts.information, method)
            if opts.products:
                prods = stacked.products(structure, neq, opts.products)
                resid = stacked.residuals(structure, neq)
            clock.add("covariance", tc)
        summary = Summary(
            termination=termination, message=message, initial_cost=initial_cost,
            final_cost=cost, iterations=tuple(records), num_successful_steps=n_ok,
            num_unsuccessful_steps=n_bad, num_residuals=n_res, num_residual_scalars=n_scalars,
            num_parameters=n_params, num_eliminated_parameters=structure.n_eliminated,
            linear_solver=method, phase_times_s=dict(clock.times),
            total_time_s=perf_counter() - t_start)
        if log.isEnabledFor(logging.DEBUG):  # brief() formats five numbers
            log.debug(summary.brief())
        return SolverResult(values, summary, cov, info, deficient, prods, resid)

    if not lin.ok:
        return finish("failure", f"at the initial point: {lin.bad}", float("inf"))
    if n_params == 0:
        return finish("converged", "no free parameters", lin.cost)

    cost = lin.cost
    neq = assemble(structure, lin)
    t0 = clock.add("assemble", t0)
    mu, nu = opts.initial_damping, 2.0
    diag = diagonals(neq, opts.min_diagonal, opts.max_diagonal)
    gmax = neq.gradient_max_norm()
    if gmax <= opts.gradient_tolerance:
        return finish("converged", f"gradient tolerance: max|g| = {gmax:.3e}", cost)

    x_norm = _x_norm(structure, values)  # of the current point: updated on acceptance
    trusted = opts.trust_first_step  # has the linear model predicted the last step well?
    for it in range(1, opts.max_iterations + 1):
        t_it = perf_counter()
        if t_it - t_start > opts.max_time_s:
            return finish("no_convergence", f"time limit of {opts.max_time_s} s reached", cost)
        t0 = t_it
        try:
            if _one_call_step(method, neq):
                dx_r, lin_its, dx_e = linear_solver.damped_dense(neq.A, neq.g_r, diag[0],
                                                                 mu), 1, {}
                t0 = clock.add("linear_solve", t0)
            else:
                red = reduce(structure, neq, mu, diag, dense=method == "dense", blocks=True)
                t0 = clock.add("schur", t0)
                dx_r, lin_its = linear_solver.solve(structure, red.S, red.b, method,
                                                    opts.cg_tolerance, opts.cg_max_iterations)
                t0 = clock.add("linear_solve", t0)
                if neq.elim:
                    dx_e = back_substitute(neq, red, dx_r)
                    t0 = clock.add("schur", t0)
                else:
                    dx_e = {}
        except LinearSolveError as exc:
            n_bad += 1
            mu, nu = mu * nu, nu * 2
            records.append(IterationRecord(it, cost, 0.0, gmax, 0.0, 0.0, mu, False, 0,
                                           perf_counter() - t_it))
            if mu > opts.max_damping:
                return finish("failure", f"linear solver failed: {exc}", cost)
            continue
        step_sq = float(dx_r @ dx_r)
        if dx_e:
            step_sq += sum(float(np.sum(v * v)) for v in dx_e.values())
        step_norm = math.sqrt(step_sq)
        if step_norm <= opts.parameter_tolerance * (x_norm + opts.parameter_tolerance):
            records.append(IterationRecord(it, cost, 0.0, gmax, step_norm, 0.0, mu, False,
                                           lin_its, perf_counter() - t_it))
            return finish("converged", f"parameter tolerance: |dx| = {step_norm:.3e}", cost)
        g_dot = float(neq.g_r @ dx_r)
        if dx_e:
            g_dot += sum(float(np.sum(neq.elim[n].g * v)) for n, v in dx_e.items())
        predicted = -g_dot - 0.5 * hessian_quadratic_form(neq, dx_r, dx_e)
        t0 = clock.add("model", t0)
        trial_values, trial_norm = _apply_step(structure, values, dx_r, dx_e)
        t0 = clock.add("update", t0)
        last = it == opts.max_iterations  # no Jacobians needed after the last iteration
        # Jacobians at the trial point right away only while the model has been predicting
        # well; otherwise (first step, after a rejection or a poor gain) the cost alone
        # decides first, so a rejected step costs a residual evaluation, not a linearization
        trial = linearize(structure, trial_values, not last and trusted)
        t0 = clock.add("evaluate", t0)
        actual = cost - trial.cost
        gain = actual / predicted if predicted > 0 else -np.inf
        accepted = trial.ok and predicted > 0 and actual > 0
        if accepted and not last and not trial.has_jacobians:
            trial = linearize(structure, trial_values, True)
            t0 = clock.add("evaluate", t0)
            accepted = trial.ok
        trusted = accepted and gain > 0.25
        if accepted:
            n_ok += 1
            old_cost = cost
            recycle(structure, lin)  # the point left behind: its accumulators are free
            values, lin, cost = trial_values, trial, trial.cost
            x_norm = trial_norm
            if last:
                records.append(IterationRecord(it, cost, actual, gmax, step_norm, float(gain),
                                               mu, True, lin_its, perf_counter() - t_it))
                if opts.callback is not None and opts.callback(records[-1]) is False:
                    return finish("user", "stopped by the callback", cost)
                if actual <= opts.function_tolerance * old_cost:
                    return finish("converged", "function tolerance: |dcost|/cost = "
                                  f"{actual / max(old_cost, 1e-300):.3e}", cost)
                break
            neq = assemble(structure, lin)
            t0 = clock.add("assemble", t0)
            gmax = neq.gradient_max_norm()
            new_diag = diagonals(neq, opts.min_diagonal, opts.max_diagonal)
            if opts.running_max_diagonal:
                new_diag = (np.maximum(diag[0], new_diag[0]),
                            {n: np.maximum(diag[1][n], v) for n, v in new_diag[1].items()})
            diag = new_diag
            mu = max(mu * max(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3), opts.min_damping)
            nu = 2.0
        else:
            n_bad += 1
            mu, nu = mu * nu, nu * 2.0
            recycle(structure, trial)
        rec = IterationRecord(it, cost if accepted else trial.cost, actual, gmax, step_norm,
                              float(gain), mu, accepted, lin_its, perf_counter() - t_it)
        records.append(rec)
        if opts.callback is not None and opts.callback(rec) is False:
            return finish("user", "stopped by the callback", cost)
        if accepted:
            if actual <= opts.function_tolerance * old_cost:
                return finish("converged", f"function tolerance: |dcost|/cost = "
                              f"{actual / max(old_cost, 1e-300):.3e}", cost)
            if gmax <= opts.gradient_tolerance:
                return finish("converged", f"gradient tolerance: max|g| = {gmax:.3e}", cost)
        elif mu > opts.max_damping:
            return finish("no_convergence", "no step reduces the cost (damping exceeded "
                          f"{opts.max_damping:.0e}); the current point may be a minimum", cost)
    return finish("no_convergence", f"iteration limit of {opts.max_iterations} reached", cost)
