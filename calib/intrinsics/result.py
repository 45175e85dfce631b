"""The frozen result of an intrinsics fit, its human summary and its JSON report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.pinhole import PARAM_NAMES, CameraModel
from ..solver import Summary
from .diagnostics import DistortionCheck


@dataclass(frozen=True)
class IntrinsicsResult:
    """A calibrated camera with its uncertainty and diagnostics.

    Attributes:
        camera: the fitted :class:`~calib.camera.CameraModel`.
        std: one standard deviation per parameter (pixels for fx..cy), from the covariance
            at the solution scaled by the residual variance ``sum|e|^2 / (2N - p)``.
        covariance: ``(9, 9)`` in the order of :data:`~calib.camera.PARAM_NAMES`.
        rms_px: ``sqrt(sum |e|^2 / N)`` over the N corners used (OpenCV's definition).
        per_view_rms_px: ``(V,)`` RMS per view (NaN for views not used).
        views_used: ``(V,)`` bool; poses: ``(V, 4, 4)`` ``T_cam_board`` per view.
        residuals: ``(N, 2)`` pixel errors of the corners used; points_px ``(N, 2)`` their
            observed pixels; view_index ``(N,)``.
        verdict: ``PASS``, ``WARN`` or ``FAIL``; reasons: why.
    """

    camera: CameraModel
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

    @property
    def K(self) -> np.ndarray:
        return self.camera.K

    @property
    def dist(self) -> np.ndarray:
        return self.camera.dist

    def worst_views(self, n: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-np.nan_to_num(self.per_view_rms_px, nan=-1.0))
        return [(self.view_names[i], float(self.per_view_rms_px[i])) for i in order[:n]
                if self.views_used[i]]

    def summary(self) -> str:
        p = dict(zip(PARAM_NAMES, self.camera.params, strict=True))
        lines = [
            f"verdict: {self.verdict}" + ("" if not self.reasons else
                                          " (" + "; ".join(self.reasons) + ")"),
            f"RMS reprojection error: {self.rms_px:.4f} px over {len(self.residuals)} corners "
            f"in {int(self.views_used.sum())}/{len(self.views_used)} views",
        ]
        for k in PARAM_NAMES:
            lines.append(f"  {k:>2} = {p[k]: .6g}  +/- {self.std[k]:.2g}")
        worst = ", ".join(f"{n} {r:.3f} px" for n, r in self.worst_views())
        lines.append(f"worst views: {worst}")
        if self.rejected_corners or self.rejected_views:
            lines.append(f"rejected: {self.rejected_corners} corners, views "
                         f"{list(self.rejected_views)}")
        lines.append(f"solver: {self.solver_summary.brief()}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """The JSON report (see the README for the keys)."""
        cam = self.camera
        return {
            "image_size": list(cam.image_size),
            "K": cam.K.tolist(),
            "dist": cam.dist.tolist(),
            "dist_order": ["k1", "k2", "p1", "p2", "k3"],
            "params": {k: float(v) for k, v in zip(PARAM_NAMES, cam.params, strict=True)},
            "std": dict(self.std),
            "rms_px": self.rms_px,
            "per_view": [
                {"image": n, "rms_px": None if not u else float(r), "used": bool(u)}
                for n, r, u in zip(self.view_names, self.per_view_rms_px, self.views_used,
                                   strict=True)],
            "worst_views": [{"image": n, "rms_px": r} for n, r in self.worst_views()],
            "rejected_corners": self.rejected_corners,
            "rejected_views": list(self.rejected_views),
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "distortion_check": self.distortion_check.to_dict(),
            "coverage": {"grid_counts": self.coverage.tolist(),
                         "empty_cells_fraction": float((self.coverage == 0).mean())},
            "initialization": self.init_method,
            "solver": self.solver_summary.to_dict(with_iterations=False),
        }
