"""The residual-family protocol: many residuals of one kind, evaluated vectorized.

A family of ``N`` residuals, each of dimension ``m`` (``residual_dim``), reads one
parameter block from each of its *slots*. The problem binds slot ``j`` to a named
parameter group (an array of ``M_j`` blocks, e.g. ``(M, 4, 4)`` poses or ``(M, 3)``
points) and an index array ``indices[j]`` of shape ``(N,)`` saying which block of
that group residual ``n`` reads.

``evaluate`` receives the *full* group arrays (not gathered), so a family whose
residuals all share one block (registration: one pose) can broadcast instead of
copying, and a family with per-residual blocks gathers ``values[j][indices[j]]``.

A family may also implement :meth:`ResidualFamily.restrict`, so that the engine evaluates
it in row chunks, and :meth:`ResidualFamily.evaluate_stacked` (with ``stacked = True``), so
that the engine takes every sum of a chunk from one product (:mod:`calib.solver.stacked`).

Jacobians are taken with respect to the group's tangent-space perturbation
(Euclidean: additive; SO3/SE3: left, ``X <- Exp(delta) X``; SE3 twists are
translation first, ``delta = (rho, phi)``), shaped ``(N, m, d_j)`` with ``d_j`` the
tangent dimension of slot ``j``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np


class ResidualFamily(ABC):
    """Abstract base of a vectorized residual family (see module docstring)."""

    #: Dimension ``m`` of one residual.
    residual_dim: int = 1
    #: The family implements :meth:`evaluate_stacked`.
    stacked: bool = False

    @abstractmethod
    def evaluate(
        self,
        values: Sequence[np.ndarray],
        indices: Sequence[np.ndarray],
        jacobians: bool = True,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Residuals ``(N, m)`` and, if ``jacobians``, one ``(N, m, d_j)`` array per slot.

        ``values[j]`` is the full array of the group bound to slot ``j``;
        ``indices[j]`` the ``(N,)`` block index each residual reads from it.
        Return ``None`` for the Jacobian list when ``jacobians`` is False.
        """

    def restrict(self, rows: slice) -> ResidualFamily | None:
        """The family restricted to its residuals ``rows`` (a slice of ``0..N``), evaluated
        with ``indices[j][rows]``; or ``None`` (the default) when it must be evaluated whole.

        A family that can be restricted is evaluated and summed in cache-sized chunks, so
        the engine never holds its whole Jacobian.
        """
        return None

    def evaluate_stacked(self, values: Sequence[np.ndarray], indices: Sequence[np.ndarray],
                         out: np.ndarray) -> None:
        """Write ``[J_0 | J_1 | ... | r]`` into ``out`` ``(N, m, sum_j d_j + 1)``: every
        slot's Jacobian over its full tangent dimension ``d_j`` in slot order, then the
        residuals, every entry (``out`` comes uninitialised). The same values as
        :meth:`evaluate` with Jacobians (NaN residuals where it gives them). Only called on
        families with ``stacked = True``."""
        raise NotImplementedError(f"{type(self).__name__} has no stacked evaluation")
