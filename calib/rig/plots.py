"""PNG plots of a rig fit (matplotlib, Agg): the rig and the board poses in 3-D, each
camera's residuals, and the covisibility graph."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .result import RigResult

PLOT_FILES = ("rig_3d.png", "residuals.png", "covisibility.png")


def _rig_3d(result: RigResult, ax) -> None:
    """Camera centres and axes, and each frame's board outline, in the reference frame."""
    T_ref_cam = np.linalg.inv(result.T_cam_ref)
    scale = max(float(np.ptp(T_ref_cam[:, :3, 3], axis=0).max()), 0.05) * 0.4
    for c, T in enumerate(T_ref_cam):
        o = T[:3, 3]
        for k, col in enumerate("rgb"):
            e = o + scale * T[:3, k]
            ax.plot(*np.c_[o, e], color=col, lw=1.5)
        ax.text(*o, result.cameras[c].name, fontsize=8)
    b = result.board_points
    corners = np.array([[b[:, 0].min(), b[:, 1].min(), 0], [b[:, 0].max(), b[:, 1].min(), 0],
                        [b[:, 0].max(), b[:, 1].max(), 0], [b[:, 0].min(), b[:, 1].max(), 0],
                        [b[:, 0].min(), b[:, 1].min(), 0]])
    for T in result.T_rig_board:
        p = corners @ T[:3, :3].T + T[:3, 3]
        ax.plot(p[:, 0], p[:, 1], p[:, 2], color="0.5", lw=0.6)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_zlabel("z (m)")
    ax.set_title(f"rig and {len(result.T_rig_board)} board poses (reference "
                 f"{result.cameras[0].name})")


def _residuals(result: RigResult, fig) -> None:
    n = len(result.cameras)
    cols = min(n, 4)
    rows = (n + cols - 1) // cols
    lim = max(float(np.nanpercentile(np.abs(result.residuals), 99.5)), 1e-3) * 1.2
    for c, cam in enumerate(result.cameras):
        ax = fig.add_subplot(rows, cols, c + 1)
        r = result.residuals[result.cam == c]
        ax.scatter(r[:, 0], r[:, 1], s=2, alpha=0.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"{cam.name}: RMS {cam.rms_px:.3f} px", fontsize=9)
        ax.set_xlabel("du (px)")
        ax.set_ylabel("dv (px)")


def _covisibility(result: RigResult, ax) -> None:
    n = len(result.cameras)
    ang = 2 * np.pi * np.arange(n) / n
    xy = np.c_[np.cos(ang), np.sin(ang)]
    cv = result.covisibility
    top = max(int(cv[~np.eye(n, dtype=bool)].max(initial=0)), 1)
    tree = {(a, b) for a, b, *_ in result.tree} | {(b, a) for a, b, *_ in result.tree}
    for i in range(n):
        for j in range(i + 1, n):
            if cv[i, j]:
                col = "C3" if (i, j) in tree else "0.6"
                ax.plot(*xy[[i, j]].T, color=col, lw=0.5 + 4 * cv[i, j] / top)
                ax.text(*xy[[i, j]].mean(axis=0), str(int(cv[i, j])), fontsize=8)
    ax.scatter(xy[:, 0], xy[:, 1], s=300, color="C0", zorder=3)
    for i, cam in enumerate(result.cameras):
        ax.text(*(1.18 * xy[i]), f"{cam.name}\n{int(cv[i, i])} views", ha="center",
                va="center", fontsize=8)
    ax.set_xlim(-1.5, 1.5)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("frames seen together (red: edges of the initial tree)")


def write_plots(result: RigResult, folder: str | os.PathLike) -> list[Path]:
    """Write :data:`PLOT_FILES` into ``folder`` (created); returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig = plt.figure(figsize=(7, 6))
    _rig_3d(result, fig.add_subplot(projection="3d"))
    paths.append(out / PLOT_FILES[0])
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    n = len(result.cameras)
    fig = plt.figure(figsize=(3.2 * min(n, 4), 3.2 * ((n + 3) // 4) + 0.4))
    _residuals(result, fig)
    fig.tight_layout()
    paths.append(out / PLOT_FILES[1])
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 6))
    _covisibility(result, ax)
    paths.append(out / PLOT_FILES[2])
    fig.savefig(paths[-1], dpi=100)
    plt.close(fig)
    return paths
