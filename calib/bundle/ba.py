"""Bundle adjustment of BAL problems on the shared LM engine.

Cameras are an SE3 group (``T_cam_world``, left perturbation) and an interleaved Euclidean
group ``(f, k1, k2)``; points are Schur-eliminated, so the linear system is over cameras
only (dense Cholesky, sparse direct or block-Jacobi PCG, chosen by size).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, NotConvergedError
from ..io.validate import as_array
from ..lie import se3, so3
from ..residuals.bal_projection import BALProjection
from ..solver import (
    Euclidean,
    IterationRecord,
    Problem,
    SE3Manifold,
    SolverOptions,
    Summary,
    make_loss,
    solve,
)
from ..solver.threads import blas_policy
from .bal import BALProblem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BundleAdjustmentResult:
    """Refined cameras ``(C, 9)`` (BAL layout) and points ``(P, 3)`` with the solve's story.

    ``initial_cost`` / ``final_cost`` are ``0.5 * sum rho(|r|^2)`` over all observations
    (Ceres' definition); ``num_behind_camera`` counts observations whose point was behind
    its camera at the start (kept, as Ceres does).
    """

    cameras: np.ndarray
    points: np.ndarray
    initial_cost: float
    final_cost: float
    iterations: int
    termination: str
    message: str
    time_s: float
    phase_times_s: dict
    num_behind_camera: int
    summary: Summary

    def to_dict(self) -> dict:
        return {"initial_cost": self.initial_cost, "final_cost": self.final_cost,
                "iterations": self.iterations, "termination": self.termination,
                "message": self.message, "time_s": self.time_s,
                "phase_times_s": self.phase_times_s, "num_behind_camera": self.num_behind_camera,
                "num_cameras": len(self.cameras), "num_points": len(self.points),
                "num_observations": self.summary.num_residuals,
                "linear_solver": self.summary.linear_solver,
                "per_iteration": [r.__dict__ for r in self.summary.iterations]}

    def as_problem(self, template: BALProblem) -> BALProblem:
        return BALProblem(self.cameras, self.points, template.camera_index,
                          template.point_index, template.observations)


def cameras_to_poses(cameras: np.ndarray) -> np.ndarray:
    """BAL cameras ``(C, 9)`` -> ``T_cam_world (C, 4, 4)``."""
    return se3.from_rt(so3.exp(cameras[:, :3]), cameras[:, 3:6])


def poses_to_cameras(T: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    return np.c_[so3.log(T[:, :3, :3]), T[:, :3, 3], intrinsics]


@blas_policy
def bundle_adjust(
    cameras: np.ndarray, points: np.ndarray, camera_index: np.ndarray,
    point_index: np.ndarray, observations: np.ndarray, loss: str | None = None,
    loss_scale: float = 1.0, max_iterations: int = 50, linear_solver: str = "auto",
    function_tolerance: float = 1e-6, gradient_tolerance: float = 1e-10,
    parameter_tolerance: float = 1e-8, max_time_s: float = float("inf"),
    callback: Callable[[IterationRecord], object] | None = None,
) -> BundleAdjustmentResult:
    """Minimise the BAL reprojection error over cameras and points.

    Args:
        cameras: ``(C, 9)`` angle-axis[3], translation[3], f, k1, k2 (BAL layout).
        points: ``(P, 3)`` world points.
        camera_index, point_index: ``(N,)`` the camera and point of each observation.
        observations: ``(N, 2)`` measured pixels (BAL convention: image centre at 0).
        loss, loss_scale: robust loss on each observation's squared error (pixels).
        max_iterations, linear_solver, *_tolerance, max_time_s: engine options (tolerances
            default to Ceres' values).
        callback: called after each iteration with its record.

    Cameras or points no observation refers to are returned unchanged (with a warning).
    Observations whose point is behind its camera at the start are kept and counted in
    ``num_behind_camera`` (with a warning), as Ceres does on BAL problems.

    Raises:
        InputError: shapes, NaN/inf, mismatched lengths, indices out of range.
        NotConvergedError: the engine failed (non-finite residuals).
    """
    t0 = time.perf_counter()
    cams = as_array("cameras", cameras, (-1, 9))
    pts = as_array("points", points, (-1, 3))
    obs = as_array("observations", observations, (-1, 2))
    ci = as_array("camera_index", camera_index, (-1,), dtype=np.int64)
    pi = as_array("point_index", point_index, (-1,), dtype=np.int64)
    n = len(obs)
    if len(ci) != n or len(pi) != n:
        raise InputError(f"camera_index ({len(ci)}), point_index ({len(pi)}) and observations "
                         f"({n}) must have the same length")
    if n == 0:
        raise InputError("no observations")
    for name, idx, count in (("camera_index", ci, len(cams)), ("point_index", pi, len(pts))):
        bad = np.flatnonzero((idx < 0) | (idx >= count))
        if bad.size:
            raise InputError(f"{name}[{bad[0]}] = {idx[bad[0]]} is out of range [0, {count})")
    unseen = [(name, int(np.sum(np.bincount(idx, minlength=count) == 0)))
              for name, idx, count in (("cameras", ci, len(cams)), ("points", pi, len(pts)))]
    for name, k in unseen:
        if k:
            log.warning("%d %s have no observation; they are left unchanged", k, name)
    fam = BALProjection(obs)
    T0 = cameras_to_poses(cams)
    K0 = cams[:, 6:9]
    depth = fam.camera_points([T0, K0, pts], [ci, ci, pi])[:, 2]
    behind = int(np.sum(depth >= 0))
    if behind:
        log.warning("%d of %d observations are behind their camera; they are kept (as Ceres "
                    "does)", behind, n)
    prob = Problem()
    prob.add_parameter("poses", T0, SE3Manifold())
    prob.add_parameter("intrinsics", K0, Euclidean(3))
    prob.add_parameter("points", pts, Euclidean(3), eliminate=True)
    lf = make_loss(loss, loss_scale) if loss not in (None, "none") else None
    prob.add_residuals(fam, [("poses", ci), ("intrinsics", ci), ("points", pi)], loss=lf)
    res = solve(prob, SolverOptions(
        max_iterations=max_iterations, linear_solver=linear_solver,
        function_tolerance=function_tolerance, gradient_tolerance=gradient_tolerance,
        parameter_tolerance=parameter_tolerance, max_time_s=max_time_s, callback=callback,
        sparse_max_size=4000))
    s = res.summary
    if s.termination == "failure":
        raise NotConvergedError(f"bundle adjustment failed: {s.message}")
    out_cams = poses_to_cameras(res.values["poses"], res.values["intrinsics"])
    return BundleAdjustmentResult(
        cameras=out_cams, points=res.values["points"], initial_cost=s.initial_cost,
        final_cost=s.final_cost, iterations=len(s.iterations), termination=s.termination,
        message=s.message, time_s=time.perf_counter() - t0, phase_times_s=s.phase_times_s,
        num_behind_camera=behind, summary=s)


def bundle_adjust_problem(problem: BALProblem, **kwargs) -> BundleAdjustmentResult:
    """:func:`bundle_adjust` on a :class:`BALProblem`."""
    return bundle_adjust(problem.cameras, problem.points, problem.camera_index,
                         problem.point_index, problem.observations, **kwargs)
