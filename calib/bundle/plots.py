"""Bundle adjustment plot: cost per iteration and the final reprojection errors (PNG)."""

from __future__ import annotations

import os

import numpy as np

from ..plotting import figure, save_png
from ..residuals.bal_projection import BALProjection
from .ba import BundleAdjustmentResult, cameras_to_poses
from .bal import BALProblem


def reprojection_errors(problem: BALProblem, cameras: np.ndarray, points: np.ndarray
                        ) -> np.ndarray:
    """Per-observation reprojection error ``(N,)`` in pixels of ``cameras``/``points`` on
    ``problem``'s observations."""
    fam = BALProjection(problem.observations)
    ci, pi = problem.camera_index, problem.point_index
    r, _ = fam.evaluate([cameras_to_poses(cameras), cameras[:, 6:9], points], [ci, ci, pi],
                        jacobians=False)
    return np.linalg.norm(r, axis=1)


def plot_bundle(problem: BALProblem, result: BundleAdjustmentResult,
                path: str | os.PathLike) -> None:
    """Left: cost ``0.5 sum rho`` per LM iteration (log scale; rejected steps marked).
    Right: histogram of the per-observation reprojection errors (pixels) before and after."""
    fig, (a, b) = figure(1, 2, figsize=(12, 4.5))
    its = result.summary.iterations
    costs = [result.initial_cost]
    for r in its:  # a rejected step leaves the cost where it was
        costs.append(r.cost if r.accepted else costs[-1])
    a.semilogy(range(len(costs)), costs, "o-", ms=3, label="cost after the iteration")
    rej = [(r.iteration, r.cost) for r in its if not r.accepted and np.isfinite(r.cost)]
    if rej:
        a.semilogy(*zip(*rej, strict=True), "x", c="tab:red", label="rejected (trial cost)")
    a.set(xlabel="iteration", ylabel="cost 0.5 sum rho (px^2)",
          title=f"{result.termination}: {result.message}"[:70])
    a.legend(fontsize=8)
    before = reprojection_errors(problem, problem.cameras, problem.points)
    after = reprojection_errors(problem, result.cameras, result.points)
    top = float(np.percentile(np.r_[before, after], 99)) or 1.0
    bins = np.linspace(0, top, 60)
    b.hist(np.minimum(before, top), bins, alpha=0.5, label="before")
    b.hist(np.minimum(after, top), bins, alpha=0.6, label="after")
    b.set(xlabel="reprojection error (px; last bin: 99th percentile and above)",
          ylabel="observations",
          title=f"median {np.median(before):.3g} -> {np.median(after):.3g} px")
    b.legend(fontsize=8)
    save_png(fig, path)
