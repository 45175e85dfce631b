"""PNG plots of an intrinsics fit: residual vectors, per-view RMS, histogram, coverage and
distortion map."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera.base import LensModel, get_model
from ..camera.pinhole import PINHOLE
from ..plotting import figure, save_png
from .diagnostics import check_distortion, undistort_unfolded, view_warn_threshold
from .result import IntrinsicsResult

DPI = 120
_INVALID_COLOR = "0.82"  # the grey of pixels where the distortion model is unusable
_INVALID_HATCH = "////"


@dataclass(frozen=True)
class DistortionMap:
    """Distortion displacement sampled on a regular grid of pixel cells over the image.

    Attributes:
        u, v: ``(W,)`` and ``(H,)`` pixel coordinates of the cell centres.
        extent: ``(left, right, bottom, top)`` for ``imshow`` (pixel edges -0.5..w-0.5).
        displacement_px: ``(H, W)`` distance in pixels between each distorted pixel and its
            undistorted (ideal pinhole) position; NaN where ``invalid``.
        invalid: ``(H, W)`` bool, where the model is unusable by the criterion of
            :func:`~calib.intrinsics.diagnostics.check_distortion`: undistortion (Newton)
            does not converge, the distortion Jacobian determinant is <= 0, or the
            undistorted radius lies at or beyond the radius where ``r (1 + k1 r^2 + k2 r^4
            + k3 r^6)`` stops growing (``first_fold_radius``).
        first_fold_radius: normalized radius of the first fold (None if monotonic).
        vmin, vmax: colour limits, from the valid cells only (NaN if none is valid).
        reference: the ideal projection the displacement is measured against: ``pinhole``
            (``f tan(theta)``; pinhole and rational models) or ``equidistant`` (``f theta``;
            fisheye and double-sphere, whose field of view a pinhole cannot reach).

    For models other than pinhole, ``invalid`` follows the model-generic check (unproject
    fails or does not re-project, or the ray lies beyond the first fold angle) and
    ``first_fold_radius`` is that angle (rad).
    """

    u: np.ndarray
    v: np.ndarray
    extent: tuple[float, float, float, float]
    displacement_px: np.ndarray
    invalid: np.ndarray
    first_fold_radius: float | None
    vmin: float
    vmax: float
    reference: str = "pinhole"


def distortion_map(params: np.ndarray, image_size: tuple[int, int], columns: int = 160,
                   model: LensModel = PINHOLE) -> DistortionMap:
    """The data of ``distortion.png`` (see :class:`DistortionMap`); ``columns`` cells across,
    rows in proportion to the image aspect."""
    if model.name != "pinhole":
        return _model_map(np.asarray(params, dtype=float), image_size, columns, model)
    p = np.asarray(params, dtype=float)
    fx, fy, cx, cy = p[:4]
    w, h = (int(s) for s in image_size)
    nu, nv, uu, vv = _cell_centres(image_size, columns)
    xd = np.stack([(uu.ravel() - cx) / fx, (vv.ravel() - cy) / fy], axis=1)
    # the same tests as check_distortion: Newton converged, Jacobian determinant > 0 ...
    xy, ok = undistort_unfolded(xd, p)
    # ... and the radial model grows with r up to the ray's radius (no fold before it)
    fold = check_distortion(p, (w, h)).first_fold_radius
    if fold is not None:
        ok &= np.linalg.norm(xy, axis=1) < fold
    disp = np.full(len(xd), np.nan)
    disp[ok] = np.hypot((xy[ok, 0] - xd[ok, 0]) * fx, (xy[ok, 1] - xd[ok, 1]) * fy)
    ok &= np.isfinite(disp)
    disp[~ok] = np.nan
    if ok.any():
        vmin, vmax = 0.0, float(np.max(disp[ok]))
    else:
        vmin = vmax = float("nan")
    return DistortionMap(u=uu[0], v=vv[:, 0], extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                         displacement_px=disp.reshape(nv, nu), invalid=~ok.reshape(nv, nu),
                         first_fold_radius=fold, vmin=vmin, vmax=vmax)


def _cell_centres(image_size: tuple[int, int], columns: int
                  ) -> tuple[int, int, np.ndarray, np.ndarray]:
    """``(nu, nv, u, v)``: pixel centres ``(nv, nu)`` of ``columns`` cells across the image
    and rows in proportion to its aspect."""
    w, h = (int(s) for s in image_size)
    nu = max(2, int(columns))
    nv = max(2, round(nu * h / w))
    u = (np.arange(nu) + 0.5) * w / nu - 0.5
    v = (np.arange(nv) + 0.5) * h / nv - 0.5
    uu, vv = np.meshgrid(u, v)
    return nu, nv, uu, vv


def _model_map(p: np.ndarray, image_size: tuple[int, int], columns: int, model: LensModel
               ) -> DistortionMap:
    """:func:`distortion_map` for any model through its unproject."""
    fx, fy, cx, cy = p[:4]
    w, h = (int(s) for s in image_size)
    nu, nv, uu, vv = _cell_centres(image_size, columns)
    pix = np.stack([uu.ravel(), vv.ravel()], axis=1)
    with np.errstate(all="ignore"):
        rays, ok = model.unproject(pix, p)
        ok &= np.isfinite(rays).all(axis=1)
        back, valid = model.project(np.where(ok[:, None], rays, [0.0, 0.0, 1.0]), p)
        ok &= valid & (np.linalg.norm(back - pix, axis=1) < 1e-3)
        theta = np.arccos(np.clip(rays[:, 2], -1.0, 1.0))
        fold = check_distortion(p, (w, h), model=model).first_fold_radius
        if fold is not None:
            ok &= theta < fold
        wide = model.name in ("fisheye", "double-sphere")
        scale = theta / np.hypot(rays[:, 0], rays[:, 1]) if wide else 1.0 / rays[:, 2]
        ideal = np.stack([fx * rays[:, 0] * scale + cx, fy * rays[:, 1] * scale + cy], axis=1)
        disp = np.linalg.norm(ideal - pix, axis=1)
    ok &= np.isfinite(disp)
    disp[~ok] = np.nan
    vmin, vmax = (0.0, float(np.max(disp[ok]))) if ok.any() else (float("nan"),) * 2
    return DistortionMap(u=uu[0], v=vv[:, 0], extent=(-0.5, w - 0.5, h - 0.5, -0.5),
                         displacement_px=disp.reshape(nv, nu), invalid=~ok.reshape(nv, nu),
                         first_fold_radius=fold, vmin=vmin, vmax=vmax,
                         reference="equidistant" if wide else "pinhole")


def _caption(result: IntrinsicsResult) -> str:
    p = dict(zip(result.param_names, result.params, strict=True))
    w, h = result.image_size
    used = int(np.sum(result.views_used))
    dist = "  ".join(f"{k} {p[k]:.3g}" for k in result.param_names[4:])
    return (f"verdict {result.verdict}  |  {used}/{len(result.views_used)} views, "
            f"RMS {result.rms_px:.3f} px  |  {result.model} model\n"
            f"{w}x{h} px  |  fx {p['fx']:.1f}  fy {p['fy']:.1f}  cx {p['cx']:.1f}  "
            f"cy {p['cy']:.1f} px  |  {dist}")


def _titles(fig, ax, title: str, result: IntrinsicsResult) -> None:
    """The plot's title, and above it two grey lines naming the verdict and the camera."""
    ax.set_title(title, fontsize=12, fontweight="bold", loc="left", pad=8)
    ax.annotate(_caption(result), xy=(0, 1), xycoords="axes fraction", xytext=(0, 26),
                textcoords="offset points", fontsize=8, color="0.3", ha="left", va="bottom",
                annotation_clip=False, linespacing=1.4)


def _image_axes(ax, w: int, h: int) -> None:
    ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5), aspect="equal",
           xlabel="u (px)", ylabel="v (px)")
    ax.add_patch(_rect(w, h, fill=False, edgecolor="0.4", lw=1.0, zorder=0.5))


def _rect(w: int, h: int, **kw):
    from matplotlib.patches import Rectangle

    return Rectangle((-0.5, -0.5), w, h, **kw)


def _view_colors(result: IntrinsicsResult) -> tuple[np.ndarray, list[int]]:
    """One RGBA colour per view and the views to name in a legend: a distinct colour per
    view up to 20 views; beyond, grey-blue for all but the 5 worst used views."""
    import matplotlib as mpl

    n = len(result.view_names)
    if n <= 20:
        # tab20 with its 10 saturated colours first, then their light variants
        idx = range(n) if n <= 10 else [*range(0, 20, 2), *range(1, 20, 2)][:n]
        cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
        return np.array([cmap(i) for i in idx]).reshape(n, 4), list(range(n))
    colors = np.tile(mpl.colors.to_rgba("#9fb3c8"), (n, 1))
    rms = np.where(result.views_used, np.nan_to_num(result.per_view_rms_px, nan=-1.0), -1.0)
    worst = [int(k) for k in np.argsort(-rms, kind="stable")[:5] if result.views_used[k]]
    for i, k in enumerate(worst):
        colors[k] = mpl.colormaps["tab10"](i)
    return colors, worst


def _residuals(result: IntrinsicsResult):
    from matplotlib.lines import Line2D

    w, h = result.image_size
    r, uv, vi = result.residuals, result.points_px, np.asarray(result.view_index)
    colors, named = _view_colors(result)
    err = np.linalg.norm(r, axis=1)
    p99 = float(np.percentile(err, 99)) if err.size else 0.0
    scale = 0.05 * max(w, h) / max(p99, 1e-9)
    # views with the larger RMS drawn last (on top), so that the worst view is never
    # buried under the others
    view_rms = np.nan_to_num(np.asarray(result.per_view_rms_px, dtype=float), nan=0.0)
    order = np.argsort(view_rms[vi], kind="stable")
    fig, ax = figure(figsize=(9, 6.5), layout="constrained")
    q = ax.quiver(uv[order, 0], uv[order, 1], r[order, 0] * scale, r[order, 1] * scale,
                  color=colors[vi[order]], angles="xy", scale_units="xy", scale=1,
                  width=0.0022, headwidth=3.5)
    key = float(f"{max(p99, 1e-9):.1g}")  # a round reference length near the 99th pct
    ax.quiverkey(q, 0.86, 1.015, key * scale, f"{key:g} px error", labelpos="W",
                 coordinates="axes", color="k", fontproperties={"size": 9})
    _image_axes(ax, w, h)
    _titles(fig, ax, f"Reprojection residuals, arrows magnified {scale:.0f}x", result)
    rejected = set(result.rejected_views)
    before = dict(getattr(result, "rejected_view_rms_px", None) or {})
    handles = []
    for k in named:
        name = result.view_names[k]
        if result.views_used[k]:
            label = f"{name}  {result.per_view_rms_px[k]:.2f} px"
        else:
            label = f"{name}  {'rejected' if name in rejected else 'not used'}"
            if name in before:
                label += f" ({before[name]:.2f} px)"
        handles.append(Line2D([], [], color=colors[k] if result.views_used[k] else "0.75",
                              lw=2.5, ls="-" if result.views_used[k] else ":", label=label))
    if len(named) < len(colors):
        handles.append(Line2D([], [], color=colors[np.setdiff1d(
            np.arange(len(colors)), named)[0]], lw=2.5,
            label=f"the other {len(colors) - len(named)} views"))
    title = "view  RMS" if len(named) == len(colors) else f"{len(named)} worst views  RMS"
    ax.legend(handles=handles, title=title, fontsize=7, title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def _per_view_rms(result: IntrinsicsResult):
    from matplotlib.patches import Patch

    names = list(result.view_names)
    n = len(names)
    used = np.asarray(result.views_used, dtype=bool)
    rms = np.asarray(result.per_view_rms_px, dtype=float)
    colors, named = _view_colors(result)
    top = 1.2 * max(float(np.nanmax(rms[used])) if used.any() else 0.0, result.rms_px, 1e-3)
    fig, ax = figure(figsize=(min(max(9.0, 0.2 * n + 4.5), 22.0), 4.8), layout="constrained")
    x = np.arange(n)
    ax.bar(x[used], rms[used], color=colors[used], edgecolor="0.2", lw=0.5, width=0.8)
    rejected = set(result.rejected_views)
    before = dict(getattr(result, "rejected_view_rms_px", None) or {})
    for k in np.flatnonzero(~used):
        # a hatched grey column: its RMS in the fit that rejected it (clipped to the axes,
        # whose scale is set by the views used) or, without one, the full height
        val = before.get(names[k], np.nan)
        ax.bar(k, min(val, top) if np.isfinite(val) else top, width=0.8, zorder=0,
               facecolor=_INVALID_COLOR, edgecolor="0.45", hatch=_INVALID_HATCH, lw=0.5)
        if np.isfinite(val) and val > top:  # off the scale: an arrow up
            ax.annotate("", xy=(k, 1.1 * top), xytext=(k, top), zorder=4,
                        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=1.5))
        label = "rejected" if names[k] in rejected else "not used"
        if np.isfinite(val):
            label += f": {val:.2f} px before"
        ax.text(k, 0.5 * min(val, top) if np.isfinite(val) else 0.5 * top, label,
                rotation=90, ha="center", va="center", fontsize=8, color="0.1",
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="0.6", lw=0.5))
    if n <= 40:
        for k in np.flatnonzero(used):
            ax.annotate(f"{rms[k]:.3f}", (k, rms[k]), xytext=(0, 3), textcoords="offset points",
                        rotation=90, ha="center", va="bottom", fontsize=7, zorder=4,
                        bbox=dict(boxstyle="round,pad=0.1", fc=(1, 1, 1, 0.85), ec="none"))
    line = ax.axhline(result.rms_px, color="crimson", ls="--", lw=1.5,
                      label=f"overall RMS {result.rms_px:.3f} px")
    limit = view_warn_threshold(rms, used)
    lines = [line]
    if limit is not None:
        top = max(top, 1.05 * limit)
        lines.append(ax.axhline(limit, color="darkorange", ls=":", lw=1.8,
                                label=f"WARN above {limit:.3f} px\n(3x the median, >= 0.5 px)"))
    handles = [Patch(facecolor="white", edgecolor="0.2", lw=0.5,
                     label="RMS of the view's corners (px),\ncoloured as in residuals.png")]
    if len(named) < n:
        handles.append(Patch(facecolor=colors[named[0]], edgecolor="0.2", lw=0.5,
                             label=f"the {len(named)} worst views\n(coloured as in "
                             "residuals.png)"))
    if (~used).any():
        handles.append(Patch(facecolor=_INVALID_COLOR, edgecolor="0.6", hatch=_INVALID_HATCH,
                             label="view not used in the fit" + (
                                 "\n(its RMS before rejection)" if before else "")))
    ax.legend(handles=[*handles, *lines], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1),
              frameon=False)
    ax.set_xticks(x, names, rotation=90, fontsize=8 if n <= 40 else 6)
    ax.set(xlim=(-0.6, n - 0.4), ylim=(0, top * 1.15), xlabel="view",
           ylabel="RMS reprojection error (px)")
    ax.grid(axis="y", alpha=0.3)
    _titles(fig, ax, f"Reprojection RMS per view ({int(used.sum())}/{n} views used)", result)
    return fig


def _histogram(result: IntrinsicsResult):
    err = np.linalg.norm(result.residuals, axis=1)
    fig, ax = figure(figsize=(8, 4.5), layout="constrained")
    ax.hist(err, bins=50, color="tab:blue", edgecolor="white", lw=0.3)
    ax.axvline(result.rms_px, color="crimson", ls="--", lw=1.5,
               label=f"RMS {result.rms_px:.3f} px")
    if err.size:
        ax.axvline(float(np.median(err)), color="k", ls=":", lw=1.5,
                   label=f"median {np.median(err):.3f} px")
    ax.legend(fontsize=9)
    ax.set(xlabel="corner reprojection error |e| (px)", ylabel="number of corners", xlim=(0, None))
    _titles(fig, ax, f"Residual histogram ({len(err)} corners)", result)
    return fig


def _coverage(result: IntrinsicsResult):
    w, h = result.image_size
    uv = result.points_px
    cov = np.asarray(result.coverage)
    rows, cols = cov.shape
    fig, ax = figure(figsize=(9, 6.5), layout="constrained")
    vmax = max(int(cov.max()), 1)
    im = ax.imshow(cov, extent=(-0.5, w - 0.5, h - 0.5, -0.5), cmap="Blues", vmin=0,
                   vmax=vmax, interpolation="nearest")
    # ~3 px dots at the saved size, smaller (and translucent) when there are very many
    size = float(np.clip(12000.0 / max(len(uv), 1), 3.0, 16.0))
    ax.scatter(uv[:, 0], uv[:, 1], s=size, c="#e8590c", edgecolors="none",
               alpha=0.9 if len(uv) < 5000 else 0.5, zorder=2)
    for i in range(rows):
        for j in range(cols):
            ax.text((j + 0.5) * w / cols - 0.5, (i + 0.5) * h / rows - 0.5, str(int(cov[i, j])),
                    ha="center", va="center", fontsize=9, fontweight="bold", zorder=3,
                    color="#c92a2a" if cov[i, j] == 0 else "black",
                    bbox=None if cov[i, j] == 0 else
                    dict(boxstyle="round,pad=0.15", fc=(1, 1, 1, 0.8), ec="none"))
    for j in range(1, cols):
        ax.axvline(j * w / cols - 0.5, color="0.6", lw=0.6, zorder=1)
    for i in range(1, rows):
        ax.axhline(i * h / rows - 0.5, color="0.6", lw=0.6, zorder=1)
    fig.colorbar(im, ax=ax, label="corners per cell", shrink=0.8)
    _image_axes(ax, w, h)
    empty = int((cov == 0).sum())
    _titles(fig, ax, f"Corner coverage: {cov.size - empty}/{cov.size} cells hit "
            f"(dots: {len(uv)} corners used)", result)
    return fig


def _projection_uncertainty(result: IntrinsicsResult):
    """Map of the worst-direction projection σ at infinity (and, as contours, the
    cross-validation difference) over the image."""
    w, h = result.image_size
    fig, ax = figure(figsize=(9, 6.5), layout="constrained")
    _image_axes(ax, w, h)
    if result.trust is None:
        ax.text(0.5, 0.5, "not computed (FitOptions.trust = False)", ha="center",
                transform=ax.transAxes)
        return fig
    pu, cv = result.trust.at_infinity, result.trust.cross_validation
    from matplotlib.colors import LogNorm

    lo = max(float(pu.sigma_px.min()), 1e-6)
    levels = np.geomspace(lo, max(float(pu.sigma_px.max()), 1.01 * lo), 13)
    tc = ax.tricontourf(pu.pixels[:, 0], pu.pixels[:, 1], np.maximum(pu.sigma_px, lo),
                        levels=levels, norm=LogNorm(levels[0], levels[-1]), cmap="viridis")
    bar = fig.colorbar(tc, ax=ax, label="projection σ at infinity (px, worst direction)",
                       shrink=0.8, format="%.2g")
    bar.minorticks_off()
    if cv is not None and len(cv.pixels) >= 3:
        ax.scatter(cv.pixels[:, 0], cv.pixels[:, 1], s=8 + 30 * np.minimum(cv.ratio, 5),
                   facecolors="none", edgecolors="#e8590c", linewidths=0.8,
                   label="cross-validation cells (size: difference / noise)")
        ax.legend(loc="lower right", fontsize=8)
    uv = result.points_px
    ax.scatter(uv[:, 0], uv[:, 1], s=2, c="white", alpha=0.6, edgecolors="none")
    extra = ("" if cv is None else f"; halves differ {cv.median:.2g} px "
             f"({cv.ratio_median:.2g}x noise)")
    _titles(fig, ax, f"Projection σ (infinity): median {pu.median:.2g} px, worst "
            f"{pu.max:.2g} px{extra}", result)
    return fig


def _distortion(result: IntrinsicsResult):
    import matplotlib as mpl

    w, h = result.image_size
    m = distortion_map(result.params, (w, h), model=get_model(result.model))
    fig, ax = figure(figsize=(9, 6.5), layout="constrained")
    ax.add_patch(_rect(w, h, facecolor=_INVALID_COLOR, edgecolor="0.55", hatch=_INVALID_HATCH,
                       lw=0, zorder=0))
    cmap = mpl.colormaps["viridis"].with_extremes(bad=(0, 0, 0, 0))
    valid = ~m.invalid
    vmin, vmax = (m.vmin, m.vmax) if valid.any() and m.vmax > m.vmin else (0.0, 1.0)
    im = ax.imshow(np.ma.masked_array(m.displacement_px, m.invalid), extent=m.extent,
                   cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", zorder=1)
    ref = ("undistorted pixel" if m.reference == "pinhole" else
           "equidistant (f theta) pixel")
    fig.colorbar(im, ax=ax, label=f"distortion displacement (px)\n|distorted - {ref}|",
                 shrink=0.8)
    if valid.sum() > 3:
        levels = [lv for lv in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if lv < vmax]
        if levels:
            cs = ax.contour(m.u, m.v, m.displacement_px, levels=levels, colors="white",
                            linewidths=0.7, alpha=0.8, zorder=2)
            ax.clabel(cs, fmt="%g px", fontsize=7)
    ax.plot(result.params[2], result.params[3], "+", color="red", ms=12,
            mew=2, zorder=3, label="principal point")
    handles = [ax.get_lines()[-1]]
    hull = _hull(result.points_px)
    if hull is not None:
        from matplotlib import patheffects

        handles += ax.plot(*np.vstack([hull, hull[:1]]).T, color="white", ls="--", lw=1.4,
                           zorder=3, label="hull of the corners used",
                           path_effects=[patheffects.withStroke(linewidth=3, foreground="0.1")])
    _image_axes(ax, w, h)
    title = "Distortion displacement"
    if m.invalid.any():
        from matplotlib.patches import Patch

        frac = 100 * float(m.invalid.mean())
        why = ("model folds" if m.first_fold_radius is not None else "not invertible")
        handles.append(Patch(facecolor=_INVALID_COLOR, edgecolor="0.55", hatch=_INVALID_HATCH,
                             label=f"unusable ({why})"))
        title += f": {frac:.0f}% of the image unusable, {why}"
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.09), fontsize=8,
              ncols=3, frameon=False)
    _titles(fig, ax, title, result)
    return fig


def _hull(points: np.ndarray) -> np.ndarray | None:
    """Vertices of the convex hull of ``points`` ``(N, 2)`` (None if degenerate)."""
    try:
        from scipy.spatial import ConvexHull

        return points[ConvexHull(points).vertices]
    except Exception:  # fewer than 3 points, collinear...
        return None


#: The PNGs of :func:`write_plots`: file name and the function building its figure;
#: PLOT_FILES: their names, in order.
PLOTS = (("residuals.png", _residuals), ("per_view_rms.png", _per_view_rms),
         ("histogram.png", _histogram), ("coverage.png", _coverage),
         ("distortion.png", _distortion),
         ("projection_uncertainty.png", _projection_uncertainty))
PLOT_FILES = tuple(name for name, _ in PLOTS)


def write_plots(result: IntrinsicsResult, folder: str | os.PathLike) -> list[Path]:
    """Write :data:`PLOT_FILES` (residuals, per-view RMS, histogram, coverage, distortion,
    projection uncertainty) into ``folder`` (created if needed); returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in PLOTS:
        paths.append(out / name)
        save_png(build(result), paths[-1], dpi=DPI)
    return paths
