"""Manifolds of parameter groups: how a tangent step updates a block.

A parameter *group* stores ``M`` blocks as one array ``(M, *shape)``; its manifold maps a
tangent step ``(M, d)`` to new values. SO3/SE3 use left perturbations
(``X <- Exp(delta) X``), Euclidean is additive. See :mod:`calib.lie` for conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._native import kernels as _kernels
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
        """``Exp(delta) x`` with ``Exp([rho, phi]) = [Exp(phi), J_l(phi) rho]``: the
        expressions of ``se3.compose(se3.exp(delta), x)`` (equal within a few ulp), one
        transform at a time in compiled code (``csrc/lie.c``), with the series of
        the Taylor coefficients ``calib.lie._series._RODRIGUES`` below its small angle."""
        out = np.empty(x.shape)
        _kernels.se3_plus(x, delta, _series._RODRIGUES, _series.SMALL_ANGLE, out)
        return out


Manifold = Euclidean | SO3Manifold | SE3Manifold
