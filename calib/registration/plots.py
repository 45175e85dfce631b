"""Before/after plot of a registration, from two viewpoints (PNG)."""

from __future__ import annotations

import os

import numpy as np

from ..plotting import figure, save_png
from ..residuals.point_to_point import transform_points
from .result import RegistrationResult, format_length, length_unit


def plot_registration(source: np.ndarray, target: np.ndarray, init: np.ndarray,
                      result: RegistrationResult, path: str | os.PathLike,
                      max_points: int = 6000, seed: int = 0) -> None:
    """Target (grey) and the source at ``init`` (top row) and at the result (bottom row),
    seen along z (left) and along y (right); the source is coloured by each point's
    distance to its nearest target point (one colour scale for both rows, clipped at 3x
    the result's maximum correspondence distance), axes in metres."""
    from .knn import KnnIndex

    rng = np.random.default_rng(seed)

    def sub(p):
        return p[rng.choice(len(p), min(max_points, len(p)), replace=False)]

    t, s = sub(target), sub(source)
    tree = KnnIndex(target)
    vmax = 3 * result.max_correspondence_distance
    scale, unit = length_unit(vmax)
    fig, axes = figure(2, 2, figsize=(12, 9.5))
    art = None
    for row, (T, label) in enumerate(((init, "before"), (result.T_target_source, "after"))):
        q = transform_points(T, s)
        d = np.minimum(tree.query(q, k=1)[0], vmax) / scale
        for col, (a, b, view) in enumerate(((0, 1, "top (x-y)"), (0, 2, "side (x-z)"))):
            ax = axes[row, col]
            ax.scatter(t[:, a], t[:, b], s=0.3, c="0.75", label="target")
            art = ax.scatter(q[:, a], q[:, b], s=0.6, c=d, cmap="viridis_r", vmin=0,
                             vmax=vmax / scale, label="source")
            ax.set(aspect="equal", title=f"{label}: {view}", xlabel="x (m)",
                   ylabel=f"{'yz'[col]} (m)")
            ax.tick_params(labelsize=7)
    axes[0, 0].legend(markerscale=12, loc="best", fontsize=8)
    fig.colorbar(art, ax=axes, shrink=0.6, label=f"source: distance to the target ({unit})")
    fig.suptitle(f"fitness {result.fitness:.3f}, inlier RMSE {format_length(result.inlier_rmse)}, "
                 f"converged {result.converged}")
    save_png(fig, path)
