"""PNG plots of an intrinsics fit: residual vectors, histogram, coverage, distortion."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..camera.pinhole import undistort_normalized
from ..plotting import figure, save_png
from .result import IntrinsicsResult


def write_plots(result: IntrinsicsResult, folder: str | os.PathLike) -> list[Path]:
    """Write ``residuals.png``, ``histogram.png``, ``coverage.png`` and ``distortion.png``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    w, h = result.camera.image_size
    r, uv = result.residuals, result.points_px
    paths = []

    fig, ax = figure(figsize=(8, 6))
    err = np.linalg.norm(r, axis=1)
    scale = 0.05 * max(w, h) / max(float(np.percentile(err, 99)), 1e-9)
    q = ax.quiver(uv[:, 0], uv[:, 1], r[:, 0] * scale, r[:, 1] * scale, err, angles="xy",
                  scale_units="xy", scale=1, cmap="viridis", width=0.002)
    fig.colorbar(q, ax=ax, label="error (px)")
    ax.set(xlim=(0, w), ylim=(h, 0), aspect="equal",
           title=f"Reprojection residuals (x{scale:.0f}), RMS {result.rms_px:.3f} px")
    paths.append(out / "residuals.png")
    save_png(fig, paths[-1])

    fig, ax = figure(figsize=(7, 4))
    ax.hist(err, bins=50, color="tab:blue")
    ax.set(xlabel="corner error (px)", ylabel="corners",
           title=f"Residual histogram ({len(err)} corners)")
    paths.append(out / "histogram.png")
    save_png(fig, paths[-1])

    fig, ax = figure(figsize=(7, 5))
    im = ax.imshow(result.coverage, extent=(0, w, h, 0), cmap="magma")
    ax.plot(uv[:, 0], uv[:, 1], ",", color="cyan")
    fig.colorbar(im, ax=ax, label="corners per cell")
    ax.set(title="Corner coverage of the image")
    paths.append(out / "coverage.png")
    save_png(fig, paths[-1])

    p = result.camera.params
    u, v = np.meshgrid(np.linspace(0, w - 1, 80), np.linspace(0, h - 1, 60))
    xd = np.stack([(u.ravel() - p[2]) / p[0], (v.ravel() - p[3]) / p[1]], axis=1)
    xy, ok = undistort_normalized(xd, p)
    disp = np.hypot((xy[:, 0] - xd[:, 0]) * p[0], (xy[:, 1] - xd[:, 1]) * p[1])
    disp[~ok] = np.nan
    fig, ax = figure(figsize=(7, 5))
    im = ax.imshow(disp.reshape(u.shape), extent=(0, w, h, 0), cmap="viridis")
    fig.colorbar(im, ax=ax, label="distortion displacement (px)")
    ax.set(title="Distortion magnitude" + ("" if ok.all() else " (white: not invertible)"))
    paths.append(out / "distortion.png")
    save_png(fig, paths[-1])
    return paths
