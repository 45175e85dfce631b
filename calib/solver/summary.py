"""Frozen records of a solve: per-iteration records, the Summary and the SolverResult."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class IterationRecord:
    """One LM iteration. ``cost`` is the cost after the iteration (the trial cost if rejected)."""

    iteration: int
    cost: float
    cost_change: float
    gradient_max_norm: float
    step_norm: float
    gain_ratio: float
    damping: float
    accepted: bool
    linear_solver_iterations: int
    time_s: float


@dataclass(frozen=True)
class Summary:
    """What a solve did. Costs are ``0.5 * sum rho(|r_n|^2)`` (as Ceres).

    ``termination`` is ``converged`` (a tolerance was met), ``no_convergence`` (iteration or
    time cap, or no step could reduce the cost) or ``failure`` (non-finite values, a
    linear solver breakdown); ``user`` if the callback stopped it.
    """

    termination: str
    message: str
    initial_cost: float
    final_cost: float
    iterations: tuple[IterationRecord, ...]
    num_successful_steps: int
    num_unsuccessful_steps: int
    num_residuals: int
    num_residual_scalars: int
    num_parameters: int
    num_eliminated_parameters: int
    linear_solver: str
    phase_times_s: dict = field(default_factory=dict)
    total_time_s: float = 0.0

    @property
    def converged(self) -> bool:
        return self.termination == "converged"

    def to_dict(self, with_iterations: bool = True) -> dict:
        d = asdict(self)
        if not with_iterations:
            d.pop("iterations")
        d["num_iterations"] = len(self.iterations)
        return d

    def brief(self) -> str:
        return (f"{self.termination}: {self.message} | cost {self.initial_cost:.6e} -> "
                f"{self.final_cost:.6e} in {len(self.iterations)} iterations "
                f"({self.total_time_s:.3f} s, {self.linear_solver})")


@dataclass(frozen=True)
class SolverResult:
    """Optimized values (dict name -> array, same shapes as given), the summary, the
    requested covariance / information blocks (see :mod:`calib.solver` API) and the
    requested per-block products of eliminated groups (``SolverOptions.products``: name ->
    ``(M, w, w)``, present only where the stacked path gave them) and, with them, the
    residuals at the solution of each stacked term (residual block index -> ``(N, m)``)."""

    values: dict
    summary: Summary
    covariance: dict
    information: dict
    covariance_rank_deficient: tuple[str, ...] = ()
    products: dict = field(default_factory=dict)
    residuals: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]
