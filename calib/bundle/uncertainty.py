"""Standard deviations of each camera's intrinsics ``(f, k1, k2)`` after bundle adjustment.

Bundle adjustment leaves a 7-dimensional gauge free (a similarity of the whole scene changes
no residual), so the information of the reduced (camera) system is singular. The intrinsics
are gauge-invariant (a similarity moves poses and points, never the focal length or the
distortion), so the gauge's null vectors are zero in their coordinates and the
pseudo-inverse gives their marginal covariance exactly: ``Cov(f, k1, k2) = s2 [S^+]``, with
``S`` the Schur complement over cameras and ``s2 = 2 cost / (2 N - n_free)`` the residual
variance. Poses are gauge-dependent and have no covariance without a chosen gauge.
"""

from __future__ import annotations

import numpy as np

from ..residuals.bal_projection import BALProjection
from ..solver import Euclidean, Problem, SE3Manifold, SolverOptions, make_loss, solve
from ..solver.covariance import DENSE_LIMIT
from .ba import cameras_to_poses

#: Reduced unknowns (9 per camera) up to which the covariance is computed (a dense
#: pseudo-inverse of the camera system).
MAX_CAMERAS = DENSE_LIMIT // 9


def intrinsics_std(cameras: np.ndarray, points: np.ndarray, camera_index: np.ndarray,
                   point_index: np.ndarray, observations: np.ndarray, loss: str | None = None,
                   loss_scale: float = 1.0) -> np.ndarray | None:
    """``(C, 3)`` standard deviations of ``(f, k1, k2)`` per camera at a solution (BAL
    layout, pixels for ``f``), or ``None`` when there are more than :data:`MAX_CAMERAS`
    cameras. A camera no observation refers to gets NaN."""
    if len(cameras) > MAX_CAMERAS:
        return None
    fam = BALProjection(np.asarray(observations, dtype=float))
    prob = Problem()
    prob.add_parameter("poses", cameras_to_poses(cameras), SE3Manifold())
    prob.add_parameter("intrinsics", cameras[:, 6:9].copy(), Euclidean(3))
    prob.add_parameter("points", np.asarray(points, dtype=float), Euclidean(3), eliminate=True)
    lf = make_loss(loss, loss_scale) if loss not in (None, "none") else None
    prob.add_residuals(fam, [("poses", camera_index), ("intrinsics", camera_index),
                             ("points", point_index)], loss=lf)
    res = solve(prob, SolverOptions(max_iterations=0, covariance=("intrinsics",)))
    s = res.summary
    dof = max(2 * s.num_residuals - s.num_parameters + 7, 1)  # the gauge is not estimated
    s2 = 2.0 * s.final_cost / dof
    var = np.diag(res.covariance["intrinsics"]).reshape(-1, 3) * s2
    seen = np.bincount(camera_index, minlength=len(cameras)) > 0
    out = np.sqrt(np.clip(var, 0.0, None))
    out[~seen] = np.nan
    return out
