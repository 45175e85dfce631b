"""Manifolds of parameter groups: how a tangent step updates a block.

A parameter *group* stores ``M`` blocks as one array ``(M, *shape)``; its manifold maps a
tangent step ``(M, d)`` to new values. SO3/SE3 use left perturbations
(``X <- Exp(delta) X``), Euclidean is additive. See :mod:`calib.lie` for conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lie import _series, so3


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
        """``Exp(delta) x`` with ``Exp([rho, phi]) = [Exp(phi), J_l(phi) rho]``: the same
        expressions as ``se3.compose(se3.exp(delta), x)`` (bitwise), with the angle, its
        skew matrix and its square formed once for both ``Exp(phi)`` and ``J_l(phi)``."""
        rho, phi = delta[:, :3], delta[:, 3:]
        theta = np.linalg.norm(phi, axis=-1)
        k = so3.hat(phi)
        k2 = k @ k
        b = _series.one_minus_cos_over_t2(theta)[:, None, None]
        rot = np.eye(3) + _series.sinc(theta)[:, None, None] * k + b * k2
        jl = np.eye(3) + b * k + _series.t_minus_sin_over_t3(theta)[:, None, None] * k2
        out = np.empty_like(x)
        out[:, :3, :3] = rot @ x[:, :3, :3]
        out[:, :3, 3] = (np.einsum("nij,nj->ni", rot, x[:, :3, 3])
                         + np.einsum("nij,nj->ni", jl, rho))
        out[:, 3] = (0.0, 0.0, 0.0, 1.0)
        return out


Manifold = Euclidean | SO3Manifold | SE3Manifold
