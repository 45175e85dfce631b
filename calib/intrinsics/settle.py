"""A function-tolerance stop that looks ahead, for the intrinsics solves whose cost falls
slowly along a long, flat, curved valley (the rational model: its numerator and
denominator coefficients trade against each other).

The engine's test stops when one accepted step lowers the cost by at most
``function_tolerance`` of it. On such a valley that misleads in two ways (synthetic rational
sets, bench/bench_lens_models.py ``--rational-seeds``): the Gauss-Newton model underestimates
how far the minimum lies (gain ratio near 2 on every step) and the decreases shrink by a ratio
``q`` of 0.8-0.9 per step, so a step under the tolerance leaves 4-9 times its decrease still to
come (stops 0.011-0.033 std short of the minimum OpenCV converges to); and a step the linear
model mispredicted (gain ratio 0.006) lowers the cost by little because it was poor, not
because the minimum is near (0.5 std short). This rule stops when the last accepted decrease
``d_k`` is at most the tolerance (the engine's test) and the decrease still to come,
extrapolated as a geometric tail ``d_k q / (1 - q)`` with ``q = d_k / d_(k-1)`` (unbounded when
``q >= 1``), is at most :data:`TAIL` of it; steps with a gain ratio under :data:`MIN_GAIN`
neither stop the solve nor set ``q``. Where Gauss-Newton converges quadratically (``q`` of
1e-3 and less) it stops where the engine's test does.

Not caught: a step held back by the damping (damping above the valley's curvature, gain
ratio 1) whose decrease falls under the tolerance; the decreases grow again once the
damping falls. A Gauss-Newton probe at each stop catches it but, where the model is
over-parametrized (rational on a Brown-Conrady lens: no minimum at finite coefficients,
OpenCV drifts too), turns a 4-iteration fit into 70-80.
"""

from __future__ import annotations

from dataclasses import replace

from ..solver import Problem, SolverOptions, solve
from ..solver.summary import IterationRecord, SolverResult

#: Models whose fits stop by this rule (pinhole and fisheye converge fast: the engine's test).
SETTLED_MODELS = ("rational",)

#: Accepted steps whose gain ratio is below this neither stop the solve nor count as the
#: previous decrease: the linear model mispredicted them, so a small decrease says the step
#: was poor, not that the minimum is near (the engine's "trusted" threshold).
MIN_GAIN = 0.25

#: The decrease still to come must be at most this fraction of the tolerance.
TAIL = 0.1

#: The termination message of a solve this module stopped.
MESSAGE = "function tolerance (extrapolated): |dcost|/cost = {:.3e}, still to come {:.3e}"


class _LookAhead:
    """The callback: stops when the last accepted decrease is at most ``tol`` of the cost
    before the step and its geometric tail at most ``TAIL * tol``."""

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.last = None  # the previous accepted decrease
        self.stopped: tuple[float, float] | None = None

    def __call__(self, rec: IterationRecord) -> bool:
        if not rec.accepted or rec.gain_ratio < MIN_GAIN:
            return True
        d = rec.cost_change
        before = rec.cost + d
        q = d / self.last if self.last else 0.0
        self.last = d
        tail = d * q / (1.0 - q) if q < 1.0 else float("inf")
        if d <= self.tol * before and tail <= TAIL * self.tol * before:
            self.stopped = (d / max(before, 1e-300), tail / max(before, 1e-300))
            return False
        return True


def solve_settled(problem: Problem, options: SolverOptions) -> SolverResult:
    """:func:`calib.solver.solve` with the look-ahead stop (module docstring) in place of
    ``options.function_tolerance``; a solve it stops reports ``converged``. The other
    tolerances, the caps and ``options.callback`` (called first) act as in the engine."""
    rule = _LookAhead(options.function_tolerance)
    user = options.callback

    def callback(rec: IterationRecord) -> bool:
        if user is not None and user(rec) is False:
            return False
        return rule(rec)

    res = solve(problem, replace(options, function_tolerance=0.0, callback=callback))
    if rule.stopped is None:
        return res
    summary = replace(res.summary, termination="converged",
                      message=MESSAGE.format(*rule.stopped))
    return replace(res, summary=summary)
