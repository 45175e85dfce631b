"""A function-tolerance stop that looks ahead, for the intrinsics solves whose cost falls
slowly along a long, flat, curved valley (the rational model: its numerator and
denominator coefficients trade against each other).

The engine's test stops when one accepted step lowers the cost by at most
``function_tolerance`` of it. On such a valley the Gauss-Newton model underestimates how
far the minimum is (gain ratio near 2 on every step) and the decreases shrink geometrically
by a ratio ``q`` close to 1, so a step below the tolerance can leave many times that decrease
still to come: on synthetic rational sets the engine's stop lay 0.013-0.033 std from the
minimum OpenCV and a longer solve both reach. This stop extrapolates instead: with ``d_k``
the last accepted decrease and ``q = d_k / d_(k-1)``, the decrease still to come is about
``d_k q / (1 - q)`` (a geometric tail; unbounded when ``q >= 1``), and the solve stops when
that and ``d_k`` are both at most the tolerance. Where the decreases fall fast (``q <= 1/2``:
Gauss-Newton's quadratic convergence near a well-determined minimum) it stops exactly where
the engine's test does.
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

#: The termination message of a solve this module stopped.
MESSAGE = "function tolerance (extrapolated): |dcost|/cost = {:.3e}, still to come {:.3e}"


class _LookAhead:
    """The callback: stops when the last accepted decrease and its geometric tail are both
    at most ``tol`` of the cost before the step."""

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
        if max(d, tail) <= self.tol * before:
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
