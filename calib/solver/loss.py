"""Robust losses ``rho(s)`` of the squared residual norm ``s = |r|^2`` (Ceres convention).

Each loss returns ``(rho, rho', rho'')`` evaluated elementwise; ``rho(s) ~ s`` near 0 and
``scale`` is where the loss stops being quadratic (``a`` in Ceres, ``f_scale`` in scipy):
``rho_a(s) = a^2 rho_1(s / a^2)``. The cost is ``0.5 * sum rho(s)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Loss:
    """Base class; subclasses implement :meth:`_unit` (the loss for ``scale = 1``)."""

    scale: float = 1.0
    #: ``rho'' <= 0`` for every ``s >= 0`` (true of every loss here): the engine's robust
    #: correction is then plain reweighting and never needs ``rho''`` (:meth:`first_order`)
    NONPOSITIVE_CURVATURE = False

    def __post_init__(self) -> None:
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"loss scale must be a positive finite number, got {self.scale}")

    def __call__(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rho(s), rho'(s), rho''(s))`` for squared norms ``s >= 0``."""
        a2 = self.scale * self.scale
        r0, r1, r2 = self._unit(np.asarray(s, dtype=float) / a2)
        return a2 * r0, r1, r2 / a2

    def first_order(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(rho(s), rho'(s))``, the same values as ``self(s)[:2]``."""
        a2 = self.scale * self.scale
        r0, r1 = self._unit_first(np.asarray(s, dtype=float) / a2)
        return a2 * r0, r1

    def _unit_first(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._unit(z)[:2]

    def rho(self, s: np.ndarray) -> np.ndarray:
        """``rho(s)`` alone (a cost evaluation), the same values as ``self(s)[0]``."""
        a2 = self.scale * self.scale
        return a2 * self._rho_unit(np.asarray(s, dtype=float) / a2)

    def _unit(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _rho_unit(self, z: np.ndarray) -> np.ndarray:
        return self._unit(z)[0]


@dataclass(frozen=True)
class TrivialLoss(Loss):
    """``rho(s) = s`` (plain least squares)."""

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        return z, np.ones_like(z), np.zeros_like(z)


@dataclass(frozen=True)
class HuberLoss(Loss):
    """``rho(z) = z`` for ``z <= 1``, ``2 sqrt(z) - 1`` otherwise."""

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        rho, r1 = self._unit_first(z)
        return rho, r1, np.where(z > 1.0, -0.5 * r1 * r1 * r1, 0.0)  # -1 / (2 z^1.5)

    def _unit_first(self, z):
        big = z > 1.0
        sq = np.sqrt(np.where(big, z, 1.0))
        return np.where(big, 2.0 * sq - 1.0, z), np.where(big, 1.0 / sq, 1.0)

    def _rho_unit(self, z):
        big = z > 1.0
        return np.where(big, 2.0 * np.sqrt(np.where(big, z, 1.0)) - 1.0, z)


@dataclass(frozen=True)
class SoftL1Loss(Loss):
    """``rho(z) = 2 (sqrt(1 + z) - 1)``."""

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        t = np.sqrt(1.0 + z)
        return 2.0 * (t - 1.0), 1.0 / t, -0.5 / (t * t * t)


@dataclass(frozen=True)
class CauchyLoss(Loss):
    """``rho(z) = log(1 + z)``."""

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        t = 1.0 + z
        return np.log1p(z), 1.0 / t, -1.0 / (t * t)


@dataclass(frozen=True)
class ArctanLoss(Loss):
    """``rho(z) = arctan(z)`` (scipy's ``'arctan'``)."""

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        t = 1.0 + z * z
        return np.arctan(z), 1.0 / t, -2.0 * z / (t * t)


@dataclass(frozen=True)
class TukeyLoss(Loss):
    """Tukey's biweight: ``rho(z) = (1 - (1 - z)^3) / 3`` for ``z <= 1``, ``1/3`` beyond.

    Redescending: residuals with ``|r| > scale`` get zero weight (Ceres' TukeyLoss up
    to the constant factor, chosen so that ``rho(z) ~ z`` near 0).
    """

    NONPOSITIVE_CURVATURE = True

    def _unit(self, z):
        inside = z <= 1.0
        u = np.where(inside, 1.0 - z, 0.0)
        rho = np.where(inside, (1.0 - u**3) / 3.0, 1.0 / 3.0)
        return rho, u * u, np.where(inside, -2.0 * u, 0.0)


_BY_NAME = {
    "none": TrivialLoss, "linear": TrivialLoss, "trivial": TrivialLoss, "huber": HuberLoss,
    "soft_l1": SoftL1Loss, "soft-l1": SoftL1Loss, "cauchy": CauchyLoss, "arctan": ArctanLoss,
    "tukey": TukeyLoss,
}


def make_loss(name: str | None, scale: float = 1.0) -> Loss:
    """Loss by name (``none|huber|soft_l1|cauchy|arctan|tukey``) with the given scale."""
    key = "none" if name is None else name.lower()
    if key not in _BY_NAME:
        raise InputError(f"unknown loss {name!r}; choose one of {sorted(set(_BY_NAME))}")
    return _BY_NAME[key](scale=scale)
