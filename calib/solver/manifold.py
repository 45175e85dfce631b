"""Manifolds of parameter groups: how a tangent step updates a block.

A parameter *group* stores ``M`` blocks as one array ``(M, *shape)``; its manifold maps a
tangent step ``(M, d)`` to new values. SO3/SE3 use left perturbations
(``X <- Exp(delta) X``), Euclidean is additive. See :mod:`calib.lie` for conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lie import se3, so3


@dataclass(frozen=True)
class Euclidean:
    """R^dim, additive update; values shaped ``(M, dim)``."""

    dim: int

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def tangent_dim(self) -> int:
        return self.dim

    def plus(self, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return x + delta


@dataclass(frozen=True)
class SO3Manifold:
    """Rotation matrices ``(M, 3, 3)``, update ``R <- Exp(delta) R``."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (3, 3)

    @property
    def tangent_dim(self) -> int:
        return 3

    def plus(self, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return so3._exp(delta) @ x


@dataclass(frozen=True)
class SE3Manifold:
    """Rigid transforms ``(M, 4, 4)``, update ``T <- Exp(delta) T``, ``delta = (rho, phi)``."""

    @property
    def shape(self) -> tuple[int, ...]:
        return (4, 4)

    @property
    def tangent_dim(self) -> int:
        return 6

    def plus(self, x: np.ndarray, delta: np.ndarray) -> np.ndarray:
        # exp() validates finiteness; the step is produced internally so skip the public check
        rho, phi = delta[:, :3], delta[:, 3:]
        step = se3.from_rt(so3._exp(phi), np.einsum("nij,nj->ni", so3._jl(phi, 1.0), rho))
        return se3.compose(step, x)


Manifold = Euclidean | SO3Manifold | SE3Manifold
