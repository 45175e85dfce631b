"""How far an intrinsics fit can be trusted beyond its σ: projection uncertainty at infinity
and at the boards' distance, cross-validation between the two halves of the views, and
which systematic error the evidence points to (:mod:`calib.intrinsics.uncertainty` holds the
math; this module applies it to a fit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.base import LensModel
from .uncertainty import (
    CrossValidation,
    ProjectionUncertainty,
    blocks_from_products,
    compare_projections,
    coupled_from_blocks,
    grid_rays,
    observed_cells,
    per_point_bias,
    projection_uncertainties,
    split_halves,
    systematic_causes,
    view_blocks,
)

#: Views needed for cross-validation (each half must determine a camera on its own).
MIN_CV_VIEWS = 6


@dataclass(frozen=True)
class SolvedViews:
    """What :func:`assess` needs of a solve: parameters, the used views' poses ``(V, 4, 4)``,
    and per residual row its board point ``(R, 3)``, pose ``(R,)`` (into ``poses``),
    pixel ``(R, 2)``, residual ``(R, 2)``, board point id ``(R,)``; ``n_free`` estimated
    parameters (camera and poses)."""

    params: np.ndarray
    poses: np.ndarray
    board: np.ndarray
    pose_index: np.ndarray
    pixels: np.ndarray
    residuals: np.ndarray
    point_ids: np.ndarray
    n_free: int

    @property
    def residual_variance(self) -> float:
        r = self.residuals
        return float(np.sum(r * r) / max(r.size - self.n_free, 1))


@dataclass(frozen=True, eq=False)
class Trust:
    """Projection uncertainty (at infinity and at the boards' median distance),
    cross-validation (None with ``cv_skipped`` saying why) and the systematic-error causes
    the evidence points to (empty when the halves agree)."""

    at_infinity: ProjectionUncertainty
    at_board_distance: ProjectionUncertainty
    cross_validation: CrossValidation | None
    cv_skipped: str | None
    point_bias: float
    causes: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "projection_uncertainty_px": {**self.at_infinity.to_dict(),
                                          "at_board_distance": self.at_board_distance.to_dict()},
            "cross_validation_px": (self.cross_validation.to_dict()
                                    if self.cross_validation is not None
                                    else {"median": None, "max": None,
                                          "skipped": self.cv_skipped}),
            "corner_bias_chi2": self.point_bias if np.isfinite(self.point_bias) else None,
            "systematic_error": list(self.causes),
        }


def assess(model: LensModel, fit: SolvedViews, free: np.ndarray, aspect: float | None,
           image_size: tuple[int, int], radial_structure: bool, n_points: int,
           products: np.ndarray | None = None) -> Trust:
    """The trust figures of a fit.

    Args:
        model: the lens model; fit: the solve (:class:`SolvedViews`).
        free: estimated camera coordinates; aspect: fx = aspect * fy when tied.
        radial_structure: the residuals keep a radial pattern (model advice).
        n_points: number of board point ids.
        products: the solve's per-view ``[J | r]^T [J | r]`` at the solution
            (:attr:`~calib.intrinsics.problem.BoardSolve.frame_products`) when the engine
            gave them: then the per-view blocks need no further pass over the corners.

    Each half of the views is "refitted" by one Gauss-Newton step from the full solution
    on its own corners (its minimum to first order: the regime the comparison assumes),
    from the same per-view blocks as the full fit's covariance: no extra solve.
    """
    if products is not None:
        bl = blocks_from_products(model, fit.params, free, aspect, products)
    else:
        bl = view_blocks(model, fit.params, fit.poses, fit.board, fit.pose_index,
                         fit.residuals, free, aspect)
    s2 = fit.residual_variance
    nv = len(fit.poses)
    cc = coupled_from_blocks(bl, np.arange(nv), s2)
    distance = float(np.median(np.linalg.norm(fit.poses[:, :3, 3], axis=1)))
    rays = grid_rays(cc, image_size)
    inf, near = projection_uncertainties(cc, image_size, (None, distance), rays=rays)
    bias = per_point_bias(fit.residuals, fit.point_ids, n_points, np.sqrt(s2))
    if nv < MIN_CV_VIEWS:
        return Trust(inf, near, None, f"{nv} views; cross-validation needs {MIN_CV_VIEWS}",
                     bias, ())
    a, b = split_halves(nv)
    half = np.ones(nv, dtype=np.int64)
    half[a] = 0
    cells = observed_cells(fit.pixels, image_size, groups=half[fit.pose_index],
                           n_groups=2).all(axis=0)
    cv = compare_projections(coupled_from_blocks(bl, a, s2, step=True),
                             coupled_from_blocks(bl, b, s2, step=True), image_size,
                             (len(a), len(b)), cells=cells)
    return Trust(inf, near, cv, None, bias, tuple(systematic_causes(cv, radial_structure, bias)))
