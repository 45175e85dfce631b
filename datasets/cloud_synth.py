"""Seeded synthetic point clouds with known geometry (tests and benchmarks)."""

from __future__ import annotations

import numpy as np


def plane(n: int = 5000, size: float = 10.0, noise: float = 0.002, seed: int = 0) -> np.ndarray:
    """A flat square floor in the x-y plane (z = 0): leaves x, y and yaw unconstrained."""
    rng = np.random.default_rng(seed)
    p = np.c_[rng.uniform(-size / 2, size / 2, (n, 2)), np.zeros(n)]
    p[:, 2] += rng.normal(0, noise, n)
    return p


def corridor(n: int = 6000, length: float = 20.0, width: float = 2.0, height: float = 2.5,
             noise: float = 0.002, seed: int = 0) -> np.ndarray:
    """A straight corridor along x (floor, ceiling, two walls): translation along x is free."""
    rng = np.random.default_rng(seed)
    k = n // 4
    x = rng.uniform(-length / 2, length / 2, 4 * k)
    u = rng.uniform(0, 1, 4 * k)
    pts = np.empty((4 * k, 3))
    pts[:, 0] = x
    # floor, ceiling
    pts[:k, 1], pts[:k, 2] = (u[:k] - 0.5) * width, 0.0
    pts[k:2 * k, 1], pts[k:2 * k, 2] = (u[k:2 * k] - 0.5) * width, height
    # walls
    pts[2 * k:3 * k, 1], pts[2 * k:3 * k, 2] = -width / 2, u[2 * k:3 * k] * height
    pts[3 * k:, 1], pts[3 * k:, 2] = width / 2, u[3 * k:] * height
    return pts + rng.normal(0, noise, pts.shape)


def wavy_surface(n: int, size: float = 20.0, amplitude: float = 0.8, noise: float = 0.0,
                 seed: int = 0) -> np.ndarray:
    """A smooth non-degenerate terrain-like surface (about ``size`` metres across)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-size / 2, size / 2, (n, 2))
    z = amplitude * (np.sin(xy[:, 0] * 0.7) * np.cos(xy[:, 1] * 0.5)
                     + 0.5 * np.sin(0.3 * xy[:, 0] + 1.3 * xy[:, 1]))
    pts = np.c_[xy, z]
    return pts + rng.normal(0, noise, pts.shape) if noise else pts
