"""How far to trust an intrinsics fit: coverage, distortion sanity, model choice, verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..camera.base import LensModel
from ..camera.pinhole import PINHOLE, distort_columns, undistort_normalized


@dataclass(frozen=True)
class DistortionCheck:
    """Whether the distortion model is usable over the whole image.

    ``monotonic``: the radial distorted radius ``r_d(r) = r (1 + k1 r^2 + k2 r^4 + k3 r^6)``
    grows with ``r`` up to the largest undistorted radius the image reaches (else two
    different rays land on the same pixel ring). ``invertible``: every pixel of a grid over
    the image undistorts (Newton converges) and the map's Jacobian determinant stays
    positive there.

    Other models (:func:`check_distortion` with ``model``): ``monotonic``: along every
    azimuth the image radius of a ray grows with its angle off the axis until the ray leaves
    the image; ``invertible``: every pixel of the grid unprojects (the model's ``valid``)
    and re-projects onto itself within 1e-3 px. ``max_radius`` and ``first_fold_radius`` are
    then angles off the axis in radians (``max_radius``: the widest pixel of the image);
    ``within_corners``: neither failure occurs within the image radius the observed corners
    reach (beyond it the model is extrapolated: a warning, not a failure).
    """

    monotonic: bool
    invertible: bool
    max_radius: float
    first_fold_radius: float | None
    failed_fraction: float
    max_displacement_px: float
    model: str = "pinhole"
    within_corners: bool = True

    @property
    def usable(self) -> bool:
        """No failure where it matters: the whole image for pinhole (monotonic and
        invertible), the disc the corners reach for the other models."""
        if self.model == "pinhole":
            return self.monotonic and self.invertible
        return self.within_corners

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def undistort_unfolded(xd: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole undistortion of normalized points ``xd (N, 2)``: ``(xy (N, 2), ok (N,))``,
    ``ok`` where Newton converged and the distortion's Jacobian determinant is positive
    there (the map is not folded at that point)."""
    xy, ok = undistort_normalized(xd, params)
    if ok.any():
        _, _, a, b, d = distort_columns(xy[ok, 0], xy[ok, 1], np.asarray(params, float))
        ok[np.flatnonzero(ok)[a * d - b * b <= 0]] = False
    return xy, ok


def check_distortion(params: np.ndarray, image_size: tuple[int, int], grid: int = 41,
                     model: LensModel = PINHOLE, corners_px: np.ndarray | None = None
                     ) -> DistortionCheck:
    """:class:`DistortionCheck` of ``params`` (the model's parameter vector) over a
    ``grid x grid`` lattice of the image ``(width, height)``; ``corners_px (N, 2)``, the
    observed corners, bound the region where a failure is fatal (models other than
    pinhole: ``within_corners``)."""
    if model.name != "pinhole":
        return _check_model(model, np.asarray(params, float), image_size, grid, corners_px)
    fx, fy, cx, cy = params[:4]
    w, h = image_size
    u, v = np.meshgrid(np.linspace(-0.5, w - 0.5, grid), np.linspace(-0.5, h - 0.5, grid))
    xd = np.stack([(u.ravel() - cx) / fx, (v.ravel() - cy) / fy], axis=1)
    xy, ok = undistort_unfolded(xd, params)
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


#: Fraction of the grid pixels within the corners' radius that may fail to unproject
#: before the model counts as unusable there (a fold fails a ring: > 5% on the cases seen).
IN_DISC_FAIL = 0.01


def _check_model(model: LensModel, params: np.ndarray, image_size: tuple[int, int],
                 grid: int, corners_px: np.ndarray | None) -> DistortionCheck:
    """The model-generic check (see :class:`DistortionCheck`)."""
    fx, fy, cx, cy = params[:4]
    w, h = image_size
    u, v = np.meshgrid(np.linspace(-0.5, w - 0.5, grid), np.linspace(-0.5, h - 0.5, grid))
    pix = np.stack([u.ravel(), v.ravel()], axis=1)
    with np.errstate(all="ignore"):
        rays, ok = model.unproject(pix, params)
        ok = ok & np.isfinite(rays).all(axis=1)
        back, valid = model.project(np.where(ok[:, None], rays, [0.0, 0.0, 1.0]), params)
        ok &= valid & (np.linalg.norm(back - pix, axis=1) < 1e-3)
        angle = np.arccos(np.clip(rays[ok, 2], -1.0, 1.0)) if ok.any() else np.zeros(1)
        fold, fold_rad = _first_fold(model, params, image_size)
    rad = np.hypot((pix[:, 0] - cx) / fx, (pix[:, 1] - cy) / fy)
    # displacement: where the pixel lands against an equidistant (f theta) lens
    disp = np.abs(rad[ok] - angle) * min(fx, fy) if ok.any() else np.array([np.nan])
    within = True
    if corners_px is not None and len(corners_px):
        reach = float(np.max(np.hypot((corners_px[:, 0] - cx) / fx, (corners_px[:, 1] - cy) / fy)))
        disc = rad <= reach
        # a fold or pole inside the disc fails a whole ring of grid pixels; a single pixel
        # where Newton's inversion stalls at the disc's edge does not count
        lost = float(np.mean(~ok[disc])) if disc.any() else 0.0
        within = lost <= IN_DISC_FAIL and (fold is None or fold_rad > reach)
    return DistortionCheck(
        monotonic=fold is None, invertible=bool(ok.all()), max_radius=float(angle.max()),
        first_fold_radius=fold, failed_fraction=float(1 - ok.mean()),
        max_displacement_px=float(np.nanmax(disp)) if np.isfinite(disp).any() else 0.0,
        model=model.name, within_corners=bool(within))


def _first_fold(model: LensModel, params: np.ndarray, image_size: tuple[int, int],
                azimuths: int = 16, steps: int = 900) -> tuple[float | None, float]:
    """Smallest angle off the axis (rad) where the image radius of a ray stops growing, or
    the model's valid region ends, before the ray leaves the image, over ``azimuths``
    directions, and the normalized image radius there; ``(None, inf)`` if it never does."""
    fx, fy, cx, cy = params[:4]
    w, h = image_size
    theta = np.linspace(1e-4, np.pi * 0.999, steps)
    phi = np.linspace(0, 2 * np.pi, azimuths, endpoint=False)
    tt, pp = np.meshgrid(theta, phi)  # (azimuths, steps)
    pts = np.stack([np.sin(tt) * np.cos(pp), np.sin(tt) * np.sin(pp), np.cos(tt)], -1)
    uv, valid = model.project(pts.reshape(-1, 3), params)
    uv, valid = uv.reshape(azimuths, steps, 2), valid.reshape(azimuths, steps)
    valid &= np.isfinite(uv).all(axis=2)
    rad = np.hypot((uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy)
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & \
        (uv[..., 1] <= h - 0.5)
    # each azimuth from the axis up to where the ray first leaves the image (or the valid
    # region): a fold is a shrinking radius there, or the valid region ending inside
    reach = np.cumprod(inside & valid, axis=1).astype(bool)
    shrinks = (np.diff(rad, axis=1) <= 0) & reach[:, 1:] & reach[:, :-1]
    ends = reach[:, :-1] & ~valid[:, 1:]
    bad = shrinks | ends
    if not bad.any():
        return None, float("inf")
    a, i = np.unravel_index(np.argmin(np.where(bad, theta[None, 1:], np.inf)), bad.shape)
    return float(theta[1:][i]), float(rad[a, i])


#: The models to compare with when a fit leaves structure it cannot explain, in order.
RICHER = {"pinhole": ("rational", "fisheye"), "rational": ("fisheye",),
          "double-sphere": ("fisheye",), "fisheye": ("double-sphere",)}

#: Radial-pattern test: equal-width bins of image radius (those with 10 corners or more).
RADIAL_BINS = 12
#: A bin mean of the radial residual must exceed this (px) to count: a pattern below it is
#: invisible in any use of the camera. Measured: exact-model synthetic sets at 0.3 px noise
#: reach 0.03 px; pinhole fits of rendered 160 deg fisheye boards 0.5-3 px.
RADIAL_MIN_PX = 0.05
#: A richer model counts as far better when its drop in sum of squares is this many times
#: what its extra parameters would absorb from pure noise (``max(extra, 1) sigma^2``) and
#: its RMS is at most RICHER_RMS_RATIO of the fitted model's.
RICHER_CHI2_FACTOR = 10.0
RICHER_RMS_RATIO = 0.8


@dataclass(frozen=True)
class RadialPattern:
    """Mean radial residual (px, positive outwards from the principal point) in up to
    ``RADIAL_BINS`` equal-width bins of image radius, and its chi-square against
    zero with the fit's residual variance. ``significant``: chi-square beyond ``bins + 5
    sqrt(2 bins)`` (about 5 sigma) and some bin mean above :data:`RADIAL_MIN_PX`."""

    radius_px: tuple[float, ...]
    mean_px: tuple[float, ...]
    chi2: float
    significant: bool

    def to_dict(self) -> dict:
        return {"radius_px": list(self.radius_px), "mean_radial_residual_px": list(self.mean_px),
                "chi2": self.chi2, "bins": len(self.mean_px), "significant": self.significant}


def radial_pattern(residuals: np.ndarray, pixels: np.ndarray, centre: np.ndarray,
                   n_free: int) -> RadialPattern:
    """:class:`RadialPattern` of ``residuals (N, 2)`` (px) at ``pixels (N, 2)`` about
    ``centre (2,)`` (the principal point); ``n_free`` free parameters of the fit."""
    # on (N,) columns: reductions and broadcasts over the last axis of (N, 2) are slow, as
    # is np.hypot (this runs after every fit)
    dx, dy = pixels[:, 0] - centre[0], pixels[:, 1] - centre[1]
    rad = np.sqrt(dx * dx + dy * dy)
    er = (residuals[:, 0] * dx + residuals[:, 1] * dy) / np.maximum(rad, 1e-9)
    n = len(er)
    # equal-width radius bins (no sort: this runs after every fit); bins with fewer than 10
    # corners are merged into none and left out
    which = np.minimum((rad * (RADIAL_BINS / max(float(rad.max()), 1e-9))).astype(np.int64),
                       RADIAL_BINS - 1)
    cnt = np.bincount(which, minlength=RADIAL_BINS)
    keep = cnt >= 10
    mean = (np.bincount(which, er, RADIAL_BINS) / np.maximum(cnt, 1))[keep]
    cnt = cnt[keep]
    bins = max(int(keep.sum()), 1)
    sigma2 = float(np.sum(residuals * residuals) / max(2 * n - n_free, 1))
    chi2 = float(np.sum(cnt * mean * mean) / max(sigma2, 1e-300))
    sig = mean.size > 0 and chi2 > bins + 5 * np.sqrt(2 * bins) and \
        float(np.abs(mean).max()) > RADIAL_MIN_PX
    r_mid = (np.bincount(which, rad, RADIAL_BINS)[keep]) / cnt
    return RadialPattern(tuple(float(v) for v in r_mid), tuple(float(v) for v in mean), chi2,
                         bool(sig))


@dataclass(frozen=True, eq=False)
class ModelAdvice:
    """Whether the fitted lens model explains the corners, and which to try instead.

    Attributes:
        model: the fitted model; rms_px its RMS.
        radial: :class:`RadialPattern` of its residuals.
        compared: ``{model: RMS px}`` of the richer models fitted to the same corners (only
            when the radial pattern, an RMS over 1 px or a failed distortion check called
            for it).
        suggest: the model to use instead (None: keep this one): the richer model with the
            lowest RMS whose drop in sum of squares exceeds :data:`RICHER_CHI2_FACTOR` times
            what its extra parameters explain and whose RMS is at most
            :data:`RICHER_RMS_RATIO` times this one's.
        wrong: this model cannot represent the lens (the suggested one halves an RMS above
            1 px, or passes the distortion check this one fails): a FAIL, not a WARN.
    """

    model: str
    rms_px: float
    radial: RadialPattern
    compared: dict = field(default_factory=dict)
    suggest: str | None = None
    wrong: bool = False

    def reason(self) -> str | None:
        """One sentence for the verdict, or None when there is nothing to say."""
        if self.suggest is not None:
            alt = self.compared[self.suggest]
            what = ("cannot represent this lens" if self.wrong else
                    "leaves structure in the residuals it cannot explain")
            return (f"the {self.model} model {what}: the {self.suggest} model fits the same "
                    f"corners at {alt:.3f} px RMS (vs {self.rms_px:.3f} px); use --model "
                    f"{self.suggest}")
        if self.radial.significant:
            worst = float(np.abs(self.radial.mean_px).max())
            tried = (f"; {', '.join(self.compared)} did not explain it" if self.compared
                     else "")
            return (f"residuals keep a radial pattern the {self.model} model cannot explain "
                    f"(mean radial error up to {worst:.2f} px by image radius{tried})")
        return None

    def to_dict(self) -> dict:
        return {"model": self.model, "rms_px": self.rms_px, "radial": self.radial.to_dict(),
                "compared_rms_px": dict(self.compared), "suggest": self.suggest,
                "wrong_model": self.wrong}


def compare_models(model: str, res: dict, pattern: RadialPattern, others: list[dict]
                   ) -> ModelAdvice:
    """:class:`ModelAdvice` from the fitted model's solve ``res`` and the richer models'
    fits ``others`` (each with ``residuals``, ``n_free``, ``model`` and ``ok``: its
    distortion check passed)."""
    def ssr(d):
        return float(np.sum(d["residuals"] ** 2))

    n = len(res["residuals"])
    rms = float(np.sqrt(ssr(res) / n))
    compared = {o["model"]: float(np.sqrt(ssr(o) / len(o["residuals"]))) for o in others}
    best, best_rms = None, rms
    for o in others:
        sigma2 = ssr(o) / max(2 * len(o["residuals"]) - o["n_free"], 1)
        extra = max(o["n_free"] - res["n_free"], 1)
        drop = ssr(res) - ssr(o)
        r = compared[o["model"]]
        if o["ok"] and drop > RICHER_CHI2_FACTOR * extra * max(sigma2, 1e-300) and \
                r <= RICHER_RMS_RATIO * rms and r < best_rms:
            best, best_rms = o["model"], r
    dist_ok = res.get("dist_ok", True)
    wrong = best is not None and ((rms > 1.0 and best_rms < 0.5 * rms) or not dist_ok)
    return ModelAdvice(model, rms, pattern, compared, best, wrong)


def coverage(pixels: np.ndarray, image_size: tuple[int, int], cells: tuple[int, int] = (8, 6)
             ) -> np.ndarray:
    """Corner counts ``(rows, cols)`` on a ``cells = (cols, rows)`` grid over the image."""
    w, h = image_size
    cx = np.clip((pixels[:, 0] / w * cells[0]).astype(int), 0, cells[0] - 1)
    cy = np.clip((pixels[:, 1] / h * cells[1]).astype(int), 0, cells[1] - 1)
    return np.bincount(cy * cells[0] + cx, minlength=cells[0] * cells[1]).reshape(cells[1],
                                                                                 cells[0])


def board_checks(model: LensModel, params: np.ndarray, image_size: tuple[int, int],
                 corners_px: np.ndarray) -> tuple[DistortionCheck, np.ndarray]:
    """One camera's checks on its fit, for a single camera and for each camera of a rig:
    :func:`check_distortion` over the image (failures fatal within the region of its
    observed corners ``corners_px (N, 2)``) and the :func:`coverage` of those corners."""
    return (check_distortion(params, image_size, model=model, corners_px=corners_px),
            coverage(corners_px, image_size))


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
    # every rectangle at once, indexed [r0, r1 - 1, c0, c1 - 1]: the first (in that order)
    # of the largest empty ones, as a loop over r0, r1, c0, c1 would find it
    r0 = np.arange(rows)[:, None, None, None]
    r1 = np.arange(1, rows + 1)[None, :, None, None]
    c0 = np.arange(cols)[None, None, :, None]
    c1 = np.arange(1, cols + 1)[None, None, None, :]
    inside = filled[r1, c1] - filled[r0, c1] - filled[r1, c0] + filled[r0, c0]
    area = np.where((r1 > r0) & (c1 > c0) & (inside == 0), (r1 - r0) * (c1 - c0), 0)
    k = int(np.argmax(area))
    best = int(area.flat[k])
    if best == 0:
        return 0.0, (0, 0, 0, 0)
    a, b, c, d = np.unravel_index(k, area.shape)
    return best / (rows * cols), (int(c), int(d) + 1, int(a), int(b) + 1)


def _gap_words(where: tuple[int, int, int, int], shape: tuple[int, int]) -> str:
    """The rectangle in percent of the image width (x, from the left) and height (y, from
    the top)."""
    c0, c1, r0, r1 = where
    rows, cols = shape
    return (f"x {100 * c0 / cols:.0f}-{100 * c1 / cols:.0f}% of the width, "
            f"y {100 * r0 / rows:.0f}-{100 * r1 / rows:.0f}% of the height")


def verdict(rms: float, per_view_rms: np.ndarray, used: np.ndarray, std: dict, params: np.ndarray,
            dist: DistortionCheck, cover: np.ndarray, converged: bool,
            names: list[str] | None = None, advice: ModelAdvice | None = None,
            trust=None) -> tuple[str, list[str]]:
    """``(PASS | WARN | FAIL, reasons)`` from the fit's diagnostics (thresholds documented
    in the README's "How far to trust it" section); ``trust``: a
    :class:`~calib.intrinsics.trust.Trust` whose cross-validation found systematic error
    adds a WARN naming the likely causes."""
    fail, warn = [], []
    if not converged:
        fail.append("the solver did not converge")
    if rms > 2.0:
        fail.append(f"RMS reprojection error {rms:.2f} px > 2 px")
    elif rms > 1.0:
        warn.append(f"RMS reprojection error {rms:.2f} px > 1 px")
    if advice is not None and advice.reason() is not None:
        (fail if advice.wrong else warn).append(advice.reason())
    if dist.model == "pinhole":
        if not dist.monotonic:
            fail.append("radial distortion is not monotonic over the image (folds at "
                        f"normalized radius {dist.first_fold_radius:.3f})")
        if not dist.invertible:
            fail.append(f"distortion is not invertible on {100 * dist.failed_fraction:.1f}% "
                        "of the image")
    elif not (dist.monotonic and dist.invertible):
        where = ("inside the region the corners cover" if not dist.within_corners else
                 "beyond the corners (extrapolated: do not use that part of the image)")
        what = (f"folds at {np.degrees(dist.first_fold_radius):.1f} deg off the axis"
                if dist.first_fold_radius is not None else
                f"cannot be inverted on {100 * dist.failed_fraction:.1f}% of the image")
        (fail if not dist.within_corners else warn).append(
            f"the {dist.model} model {what}, {where}")
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
    if trust is not None and trust.causes:
        cv = trust.cross_validation
        warn.append(f"cross-validation: fits on the two halves of the views differ by "
                    f"{cv.median:.2f} px (median over the image), {cv.ratio_median:.1f}x what "
                    f"their noise explains: systematic error; likely "
                    + "; or ".join(trust.causes))
    for name, idx in (("fx", 0), ("fy", 1)):
        if std.get(name, 0) > 0.01 * params[idx]:
            warn.append(f"{name} uncertain: std {std[name]:.2f} px (> 1%)")
    if fail:
        return "FAIL", fail + warn
    return ("WARN", warn) if warn else ("PASS", [])
