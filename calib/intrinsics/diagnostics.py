"""How far to trust an intrinsics fit: coverage, distortion sanity, verdict."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.pinhole import distort, undistort_normalized


@dataclass(frozen=True)
class DistortionCheck:
    """Whether the distortion model is usable over the whole image.

    ``monotonic``: the radial distorted radius ``r_d(r) = r (1 + k1 r^2 + k2 r^4 + k3 r^6)``
    grows with ``r`` up to the largest undistorted radius the image reaches (else two
    different rays land on the same pixel ring). ``invertible``: every pixel of a grid over
    the image undistorts (Newton converges) and the map's Jacobian determinant stays
    positive there.
    """

    monotonic: bool
    invertible: bool
    max_radius: float
    first_fold_radius: float | None
    failed_fraction: float
    max_displacement_px: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def check_distortion(params: np.ndarray, image_size: tuple[int, int], grid: int = 41
                     ) -> DistortionCheck:
    fx, fy, cx, cy = params[:4]
    w, h = image_size
    u, v = np.meshgrid(np.linspace(-0.5, w - 0.5, grid), np.linspace(-0.5, h - 0.5, grid))
    xd = np.stack([(u.ravel() - cx) / fx, (v.ravel() - cy) / fy], axis=1)
    xy, ok = undistort_normalized(xd, params)
    if ok.any():
        _, jac, _ = distort(xy[ok], params, True)
        det = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        ok_idx = np.flatnonzero(ok)
        ok[ok_idx[det <= 0]] = False
    r_img = np.linalg.norm(xd, axis=1).max()
    r_max = float(np.nanmax(np.linalg.norm(xy[ok], axis=1))) if ok.any() else float(r_img)
    r_max = max(r_max, float(r_img))
    k1, k2, k3 = params[4], params[5], params[8]
    r = np.linspace(0, 1.05 * r_max, 2000)
    r2 = r * r
    deriv = 1 + 3 * k1 * r2 + 5 * k2 * r2 * r2 + 7 * k3 * r2 ** 3
    bad = np.flatnonzero(deriv <= 0)
    disp = np.hypot((xy[ok, 0] - xd[ok, 0]) * fx, (xy[ok, 1] - xd[ok, 1]) * fy)
    return DistortionCheck(
        monotonic=bad.size == 0, invertible=bool(ok.all()), max_radius=r_max,
        first_fold_radius=float(r[bad[0]]) if bad.size else None,
        failed_fraction=float(1 - ok.mean()),
        max_displacement_px=float(disp.max()) if disp.size else float("nan"))


def coverage(pixels: np.ndarray, image_size: tuple[int, int], cells: tuple[int, int] = (8, 6)
             ) -> np.ndarray:
    """Corner counts ``(rows, cols)`` on a ``cells = (cols, rows)`` grid over the image."""
    w, h = image_size
    cx = np.clip((pixels[:, 0] / w * cells[0]).astype(int), 0, cells[0] - 1)
    cy = np.clip((pixels[:, 1] / h * cells[1]).astype(int), 0, cells[1] - 1)
    return np.bincount(cy * cells[0] + cx, minlength=cells[0] * cells[1]).reshape(cells[1],
                                                                                 cells[0])


def view_warn_threshold(per_view_rms: np.ndarray, used: np.ndarray) -> float | None:
    """Per-view RMS (px) above which a view is reported in a WARN: 3x the median of the
    views used, at least 0.5 px (``None`` with fewer than 3 views)."""
    pv = np.asarray(per_view_rms, dtype=float)[np.asarray(used, dtype=bool)]
    return max(3 * float(np.median(pv)), 0.5) if pv.size >= 3 else None


#: the smallest empty part of the image (a rectangle of coverage cells, as a fraction of the
#: image) that gives a WARN: a third of the image without corners leaves the distortion
#: there extrapolated
GAP_FRACTION = 1 / 3


def largest_gap(cover: np.ndarray) -> tuple[float, tuple[int, int, int, int]]:
    """``(area fraction, (col0, col1, row0, row1))`` of the largest rectangle of empty cells
    (half-open cell ranges) in the coverage grid ``(rows, cols)``."""
    rows, cols = cover.shape
    filled = np.zeros((rows + 1, cols + 1))
    filled[1:, 1:] = np.cumsum(np.cumsum(cover > 0, axis=0), axis=1)
    best, where = 0, (0, 0, 0, 0)
    for r0 in range(rows):
        for r1 in range(r0 + 1, rows + 1):
            for c0 in range(cols):
                for c1 in range(c0 + 1, cols + 1):
                    area = (r1 - r0) * (c1 - c0)
                    if area > best and filled[r1, c1] - filled[r0, c1] - filled[r1, c0] + \
                            filled[r0, c0] == 0:
                        best, where = area, (c0, c1, r0, r1)
    return best / (rows * cols), where


def _gap_words(where: tuple[int, int, int, int], shape: tuple[int, int]) -> str:
    """The rectangle in percent of the image width (x, from the left) and height (y, from
    the top)."""
    c0, c1, r0, r1 = where
    rows, cols = shape
    return (f"x {100 * c0 / cols:.0f}-{100 * c1 / cols:.0f}% of the width, "
            f"y {100 * r0 / rows:.0f}-{100 * r1 / rows:.0f}% of the height")


def verdict(rms: float, per_view_rms: np.ndarray, used: np.ndarray, std: dict, params: np.ndarray,
            dist: DistortionCheck, cover: np.ndarray, converged: bool,
            names: list[str] | None = None) -> tuple[str, list[str]]:
    """``(PASS | WARN | FAIL, reasons)`` from the fit's diagnostics (thresholds documented
    in the README's "How far to trust it" section)."""
    fail, warn = [], []
    if not converged:
        fail.append("the solver did not converge")
    if rms > 2.0:
        fail.append(f"RMS reprojection error {rms:.2f} px > 2 px")
    elif rms > 1.0:
        warn.append(f"RMS reprojection error {rms:.2f} px > 1 px")
    if not dist.monotonic:
        fail.append("radial distortion is not monotonic over the image (folds at normalized "
                    f"radius {dist.first_fold_radius:.3f})")
    if not dist.invertible:
        fail.append(f"distortion is not invertible on {100 * dist.failed_fraction:.1f}% of "
                    "the image")
    n_used = int(used.sum())
    if n_used < 6:
        warn.append(f"only {n_used} views used (>= 10 recommended)")
    limit = view_warn_threshold(per_view_rms, used)
    if limit is not None:
        med = float(np.median(per_view_rms[used]))
        worst = np.flatnonzero(used & (per_view_rms > limit))
        if worst.size:
            which = ", ".join(f"{names[k] if names else k} {per_view_rms[k]:.2f} px"
                              for k in worst[np.argsort(-per_view_rms[worst])][:5])
            more = " ..." if worst.size > 5 else ""
            warn.append(f"{worst.size} view(s) with RMS above 3x the median ({med:.2f} px): "
                        f"{which}{more}")
    empty = float((cover == 0).mean())
    gap, where = largest_gap(cover)
    if empty > 0.5:
        warn.append(f"corners cover only {100 * (1 - empty):.0f}% of the image grid; "
                    "distortion is extrapolated elsewhere")
    elif gap >= GAP_FRACTION - 1e-9:
        warn.append(f"no corners in {100 * gap:.0f}% of the image ("
                    f"{_gap_words(where, cover.shape)}); distortion is "
                    "extrapolated there")
    for name, idx in (("fx", 0), ("fy", 1)):
        if std.get(name, 0) > 0.01 * params[idx]:
            warn.append(f"{name} uncertain: std {std[name]:.2f} px (> 1%)")
    if fail:
        return "FAIL", fail + warn
    return ("WARN", warn) if warn else ("PASS", [])
