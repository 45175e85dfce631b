"""The frozen result of an intrinsics fit, its human summary and its JSON report."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from types import MappingProxyType

import numpy as np

from ..camera.base import get_model
from ..camera.camera import Camera
from ..io.json_safe import json_safe
from ..solver import Summary
from .diagnostics import DistortionCheck, ModelAdvice
from .trust import Trust


class OpenCVView:
    """``param_names``, ``K`` and ``dist`` of a result with a lens ``model`` name and its
    ``params``: a single camera's (:class:`IntrinsicsResult`) and a rig camera's
    (:class:`calib.rig.CameraFit`)."""

    model: str
    params: np.ndarray

    @property
    def param_names(self) -> tuple[str, ...]:
        return get_model(self.model).param_names

    @property
    def K(self) -> np.ndarray:
        """``(3, 3)`` camera matrix."""
        return get_model(self.model).to_opencv(self.params)[0]

    @property
    def dist(self) -> np.ndarray:
        """Distortion in the model's (OpenCV's) order; ``[xi, alpha]`` for double-sphere."""
        return get_model(self.model).to_opencv(self.params)[1]


@dataclass(frozen=True, eq=False)
class IntrinsicsResult(OpenCVView):
    """A calibrated camera with its uncertainty and diagnostics.

    Attributes:
        camera: the fitted :class:`~calib.camera.Camera` (any model).
        std: one standard deviation per parameter by name (pixels for fx..cy), from the
            covariance at the solution scaled by the residual variance ``sum|e|^2 / (2N - p)``.
        covariance: ``(P, P)`` in the order of the model's ``param_names``.
        rms_px: ``sqrt(sum |e|^2 / N)`` over the N corners used (OpenCV's definition).
        per_view_rms_px: ``(V,)`` RMS per view (NaN for views not used).
        views_used: ``(V,)`` bool; poses: ``(V, 4, 4)`` ``T_cam_board`` per view.
        residuals: ``(N, 2)`` pixel errors of the corners used; points_px ``(N, 2)`` their
            observed pixels; view_index ``(N,)``.
        verdict: ``PASS``, ``WARN`` or ``FAIL``; reasons: why.
        options: the :class:`~calib.intrinsics.FitOptions` used; fixed: parameters held
            constant by them (their ``std`` is 0: not estimated).
        rejected_view_rms_px: RMS of each rejected view in the fit that rejected it.
        trust: :class:`~calib.intrinsics.trust.Trust`: projection uncertainty over the image
            and cross-validation of the two halves of the views (None when not asked for).
        model_advice: :class:`~calib.intrinsics.diagnostics.ModelAdvice`: residual structure
            and the richer models compared, with the one to use instead if any.

    The result is immutable: its arrays are read-only and ``std`` is a read-only mapping.
    """

    camera: Camera
    std: dict
    covariance: np.ndarray
    rms_px: float
    per_view_rms_px: np.ndarray
    view_names: tuple[str, ...]
    views_used: np.ndarray
    poses: np.ndarray
    residuals: np.ndarray
    points_px: np.ndarray
    view_index: np.ndarray
    rejected_corners: int
    rejected_views: tuple[str, ...]
    distortion_check: DistortionCheck
    coverage: np.ndarray
    verdict: str
    reasons: tuple[str, ...]
    init_method: str
    solver_summary: Summary
    options: object = None  # FitOptions (not imported here: fit.py imports this module)
    fixed: tuple[str, ...] = ()
    rejected_view_rms_px: dict = field(default_factory=dict)
    model_advice: ModelAdvice | None = None
    trust: Trust | None = None

    def __post_init__(self) -> None:
        for name in ("covariance", "per_view_rms_px", "views_used", "poses", "residuals",
                     "points_px", "view_index", "coverage"):
            a = np.array(getattr(self, name))  # a private copy, then read-only
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "std", MappingProxyType(dict(self.std)))
        object.__setattr__(self, "rejected_view_rms_px",
                           MappingProxyType(dict(self.rejected_view_rms_px)))

    @property
    def model(self) -> str:
        """The lens model's name (``camera.model``)."""
        return self.camera.model

    @property
    def params(self) -> np.ndarray:
        """``(P,)`` read-only, in the order of :attr:`param_names` (``camera.params``)."""
        return self.camera.params

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)`` px (``camera.image_size``)."""
        return self.camera.image_size

    def worst_views(self, n: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-np.nan_to_num(self.per_view_rms_px, nan=-1.0))
        return [(self.view_names[i], float(self.per_view_rms_px[i])) for i in order[:n]
                if self.views_used[i]]

    def summary(self) -> str:
        p = dict(zip(self.param_names, self.params, strict=True))
        lines = [
            f"model: {self.model}",
            f"verdict: {self.verdict}" + ("" if not self.reasons else
                                          " (" + "; ".join(self.reasons) + ")"),
            f"RMS reprojection error: {self.rms_px:.4f} px over {len(self.residuals)} corners "
            f"in {int(self.views_used.sum())}/{len(self.views_used)} views",
        ]
        for k in self.param_names:
            err = "(fixed)" if k in self.fixed else f"+/- {self.std[k]:.2g}"
            if k == "fx" and getattr(self.options, "fix_aspect", False):
                err += f"  (tied: fx = {self.options.aspect_ratio:g} * fy)"
            lines.append(f"  {k:>5} = {p[k]: .6g}  {err}")
        worst = ", ".join(f"{n} {r:.3f} px" for n, r in self.worst_views())
        lines.append(f"worst views: {worst}")
        if self.rejected_corners or self.rejected_views:
            views = ", ".join(f"{n} ({self.rejected_view_rms_px.get(n, float('nan')):.2f} px)"
                              for n in self.rejected_views) or "none"
            lines.append(f"rejected: {self.rejected_corners} corners; views: {views}")
        if self.trust is not None:
            lines.append(self._trust_line())
        lines.append(f"solver: {self.solver_summary.brief()}")
        return "\n".join(lines)

    def _trust_line(self) -> str:
        pu, cv = self.trust.at_infinity, self.trust.cross_validation
        line = (f"projection σ (at infinity): median {pu.median:.3g} px, worst {pu.max:.3g} px; "
                f"at the boards' {self.trust.at_board_distance.distance_m:.2g} m: median "
                f"{self.trust.at_board_distance.median:.3g} px")
        if cv is None:
            return line + f"; cross-validation skipped ({self.trust.cv_skipped})"
        return line + (f"; cross-validation: halves differ by median {cv.median:.3g} px, worst "
                       f"{cv.max:.3g} px ({cv.ratio_median:.2g}x their noise)")

    def to_dict(self) -> dict:
        """The JSON report (see the README for the keys)."""
        names = self.param_names
        return {
            "model": self.model,
            "image_size": list(self.image_size),
            "K": self.K.tolist(),
            "dist": self.dist.tolist(),
            "dist_order": list(names[4:]),
            "params": {k: float(v) for k, v in zip(names, self.params, strict=True)},
            "std": {k: (None if k in self.fixed or not np.isfinite(v) else v)
                    for k, v in self.std.items()},
            "fixed": list(self.fixed),
            "tied": ({"fx": f"{self.options.aspect_ratio:g} * fy"}
                     if getattr(self.options, "fix_aspect", False) else {}),
            "options": asdict(self.options) if self.options is not None else None,
            "rms_px": self.rms_px,
            "per_view": [self._view_entry(n, r, u) for n, r, u in
                         zip(self.view_names, self.per_view_rms_px, self.views_used,
                             strict=True)],
            "worst_views": [{"image": n, "rms_px": r} for n, r in self.worst_views()],
            "rejected_corners": self.rejected_corners,
            "rejected_views": list(self.rejected_views),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "distortion_check": self.distortion_check.to_dict(),
            "model_advice": (self.model_advice.to_dict() if self.model_advice is not None
                             else None),
            "coverage": {"grid_counts": self.coverage.tolist(),
                         "empty_cells_fraction": float((self.coverage == 0).mean())},
            "initialization": self.init_method,
            "board_poses": [{"image": n, "T_cam_board": T.tolist() if u else None}
                            for n, T, u in zip(self.view_names, self.poses, self.views_used,
                                               strict=True)],
            **(self.trust.to_dict() if self.trust is not None else
               {"projection_uncertainty_px": None, "cross_validation_px": None}),
            "solver": self.solver_summary.to_dict(with_iterations=False),
        }

    def _view_entry(self, name: str, rms: float, used: bool) -> dict:
        if used:
            return {"image": name, "rms_px": float(rms), "used": True}
        out = {"image": name, "rms_px": None, "used": False}
        if name in self.rejected_view_rms_px:  # its RMS in the fit that rejected it
            out.update(rejected=True, rms_before_rejection_px=self.rejected_view_rms_px[name])
        return out

    def to_json(self, indent: int = 2) -> str:
        """The JSON report as text (:meth:`to_dict`, NaN written as null)."""
        return json.dumps(json_safe(self.to_dict()), indent=indent) + "\n"
