"""Residual builders: vectorized residual families with analytic Jacobians."""

from .base import ResidualFamily

__all__ = ["ResidualFamily"]
