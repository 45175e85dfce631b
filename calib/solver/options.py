"""Solver options (frozen, validated on construction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError

LINEAR_SOLVERS = ("auto", "dense", "sparse", "cg")


@dataclass(frozen=True)
class SolverOptions:
    """Levenberg-Marquardt options.

    Attributes:
        max_iterations: cap on LM iterations (accepted + rejected steps).
        max_time_s: wall-time cap in seconds (``inf`` for none).
        function_tolerance: stop when an accepted step gives
            ``|cost_old - cost_new| <= function_tolerance * cost_old``.
        gradient_tolerance: stop when ``max_i |g_i| <= gradient_tolerance`` with
            ``g = J^T rho' r`` the gradient of the cost over free tangent coordinates.
        parameter_tolerance: stop when ``|dx| <= parameter_tolerance * (|x| + parameter_tolerance)``
            with ``|x|`` the norm of the Euclidean coordinates (tangent steps for manifolds).
        initial_damping: first LM damping ``mu`` (relative to ``diag(J^T J)``).
        min_damping, max_damping: bounds on ``mu``; exceeding ``max_damping`` ends the
            solve (no step reduces the cost).
        min_diagonal, max_diagonal: clamp of ``diag(J^T J)`` used as damping matrix.
        running_max_diagonal: damp with the running maximum of ``diag(J^T J)`` over the
            iterations (as MINPACK) instead of the current one (as Ceres); more robust on
            badly scaled and large-residual problems.
        linear_solver: ``auto`` (dense Cholesky for a reduced system of at most
            ``dense_max_size`` unknowns, sparse direct up to ``sparse_max_size``, else CG),
            ``dense``, ``sparse`` or ``cg`` (block-Jacobi preconditioned conjugate gradients).
        no_schur_max_size: a problem with eliminated groups but at most this many free
            coordinates in all (and no covariance or information asked) is solved as one
            dense system without elimination (less fixed cost per iteration).
        cg_tolerance, cg_max_iterations: CG stops at ``|S x - b| <= cg_tolerance |b|`` (an
            inexact Newton step, as Ceres' ITERATIVE_SCHUR; LM corrects it through the gain ratio).
        covariance: names of groups whose covariance is computed at the solution.
        information: names of groups whose (reduced) information matrix is returned; a
            tuple of non-eliminated group names gets their joint matrix, cross blocks
            included, keyed by that tuple.
        products: names of eliminated groups whose per-block products ``H_p = [J | r]^T
            [J | r]`` at the solution are returned (``SolverResult.products``), when the
            one term that reads the group takes the stacked path (:mod:`.stacked`; absent
            otherwise): from the last linearization, no extra pass; with them the
            stacked terms' residuals there (``SolverResult.residuals``).
        trust_first_step: linearize the first trial point at once, as after a step the
            model predicted well (by default its cost is checked first). For starts whose
            first step is nearly always accepted (a board fit from Zhang's closed form):
            one residual evaluation less per solve; a rejected first step then costs a
            linearization. The steps and the result are the same either way.
        callback: called with each :class:`~calib.solver.summary.IterationRecord`;
            returning ``False`` stops the solve (termination ``user``).
    """

    max_iterations: int = 100
    max_time_s: float = float("inf")
    function_tolerance: float = 1e-8
    gradient_tolerance: float = 1e-12
    parameter_tolerance: float = 1e-10
    initial_damping: float = 1e-4
    min_damping: float = 1e-32
    max_damping: float = 1e16
    min_diagonal: float = 1e-6
    max_diagonal: float = 1e32
    running_max_diagonal: bool = False
    linear_solver: str = "auto"
    dense_max_size: int = 2500
    sparse_max_size: int = 20000
    no_schur_max_size: int = 128
    cg_tolerance: float = 1e-2
    cg_max_iterations: int = 500
    covariance: tuple[str, ...] = ()
    information: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    trust_first_step: bool = False
    callback: Callable | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.max_iterations, int) and self.max_iterations >= 0):
            raise InputError("max_iterations must be a non-negative integer, "
                             f"got {self.max_iterations}")
        for name in ("function_tolerance", "gradient_tolerance", "parameter_tolerance",
                     "cg_tolerance"):
            v = getattr(self, name)
            if not (v >= 0):
                raise InputError(f"{name} must be >= 0, got {v}")
        if not (self.max_time_s > 0):
            raise InputError(f"max_time_s must be > 0, got {self.max_time_s}")
        if not (0 < self.min_damping <= self.initial_damping <= self.max_damping):
            raise InputError("need 0 < min_damping <= initial_damping <= max_damping")
        if self.linear_solver not in LINEAR_SOLVERS:
            raise InputError(f"linear_solver must be one of {LINEAR_SOLVERS}, "
                             f"got {self.linear_solver!r}")
        object.__setattr__(self, "covariance", tuple(self.covariance))
        object.__setattr__(self, "information", tuple(self.information))
        object.__setattr__(self, "products", tuple(self.products))
