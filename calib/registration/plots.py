"""Before/after plot of a registration, from two viewpoints (PNG)."""

from __future__ import annotations

import os

import numpy as np

from ..plotting import figure, save_png
from ..residuals.point_to_point import transform_points
from .result import RegistrationResult


def plot_registration(source: np.ndarray, target: np.ndarray, init: np.ndarray,
                      result: RegistrationResult, path: str | os.PathLike,
                      max_points: int = 6000, seed: int = 0) -> None:
    """Scatter target (grey) with source (red) at ``init`` and at the result, seen along z
    (top) and along y (side)."""
    rng = np.random.default_rng(seed)

    def sub(p):
        return p[rng.choice(len(p), min(max_points, len(p)), replace=False)]

    t = sub(target)
    s = sub(source)
    fig, axes = figure(2, 2, figsize=(11, 9))
    for row, (T, label) in enumerate(((init, "before"), (result.T_target_source, "after"))):
        q = transform_points(T, s)
        for col, (a, b, view) in enumerate(((0, 1, "top (x-y)"), (0, 2, "side (x-z)"))):
            ax = axes[row, col]
            ax.scatter(t[:, a], t[:, b], s=0.3, c="0.55", label="target")
            ax.scatter(q[:, a], q[:, b], s=0.3, c="tab:red", label="source")
            ax.set(aspect="equal", title=f"{label}: {view}")
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(markerscale=15, loc="best", fontsize=8)
    fig.suptitle(f"fitness {result.fitness:.3f}, inlier RMSE {result.inlier_rmse:.3g} m, "
                 f"converged {result.converged}")
    save_png(fig, path)
