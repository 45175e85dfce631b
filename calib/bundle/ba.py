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
from types import MappingProxyType

import numpy as np

# the engine's dense solve beyond 16 unknowns (every BA) uses scipy's LAPACK: imported with
# the task, as before the engine imported it lazily, not inside the first solve
import scipy.linalg  # noqa: F401

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

#: largest magnitude accepted in a camera or point value: beyond it sums of squares in the
#: solver's step test overflow (points at 1e200 "converged" after one unchanged step), and no
#: BAL problem comes near it (the largest values in the shipped problems are ~1e4)
MAX_ABS_VALUE = 1e12
#: the gauge of a BAL problem (a similarity: rotation, translation, scale) is free
GAUGE_DOF = 7


def _finite(x):
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True, eq=False)
class BundleAdjustmentResult:
    """Refined cameras ``(C, 9)`` (BAL layout) and points ``(P, 3)`` with the solve's story.

    ``initial_cost`` / ``final_cost`` are ``0.5 * sum rho(|r|^2)`` over all observations
    (Ceres' definition); ``num_behind_camera`` counts observations whose point was behind
    its camera at the start (kept, as Ceres does). ``warnings``: what the user should know
    (an under-determined problem, unobserved cameras or points, points behind cameras).
    The result is immutable: its arrays are read-only, ``phase_times_s`` a read-only mapping.
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
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("cameras", "points"):
            a = np.array(getattr(self, name), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        object.__setattr__(self, "phase_times_s", MappingProxyType(dict(self.phase_times_s)))
        object.__setattr__(self, "warnings", tuple(self.warnings))

    def to_dict(self) -> dict:
        """JSON-ready report (a non-finite number, such as the gain ratio of a step the
        model predicted no decrease for, becomes ``None``)."""
        return {"initial_cost": _finite(self.initial_cost), "final_cost": _finite(self.final_cost),
                "iterations": self.iterations, "termination": self.termination,
                "message": self.message, "time_s": self.time_s,
                "phase_times_s": dict(self.phase_times_s),
                "num_behind_camera": self.num_behind_camera,
                "num_cameras": len(self.cameras), "num_points": len(self.points),
                "num_observations": self.summary.num_residuals,
                "linear_solver": self.summary.linear_solver, "warnings": list(self.warnings),
                "per_iteration": [{k: _finite(v) if isinstance(v, float) else v
                                   for k, v in r.__dict__.items()}
                                  for r in self.summary.iterations]}

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
    cams, pts, obs, ci, pi = _check(cameras, points, observations, camera_index, point_index)
    if not (isinstance(loss_scale, int | float | np.floating) and 1e-6 <= loss_scale <= 1e6):
        raise InputError(f"loss_scale {loss_scale!r}: must be between 1e-06 and 1e+06 pixels")
    warnings = _coverage_warnings(cams, pts, ci, pi)
    # camera-major rows: the engine's per-camera sums and W's block order need no gather
    order = np.lexsort((pi, ci))
    obs, ci, pi = obs[order], ci[order], pi[order]
    fam = BALProjection(obs)
    T0 = cameras_to_poses(cams)
    K0 = cams[:, 6:9]
    depth = fam.camera_points([T0, K0, pts], [ci, ci, pi])[:, 2]
    behind = int(np.sum(depth >= 0))
    if behind:
        warnings.append(f"{behind} of {len(obs)} observations are behind their camera; they "
                        "are kept (as Ceres does)")
    for w in warnings:
        log.warning("%s", w)
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
        num_behind_camera=behind, summary=s, warnings=tuple(warnings))


def _check(cameras, points, observations, camera_index, point_index):
    """Shapes, finiteness, magnitudes, lengths and index ranges (one InputError each)."""
    cams = as_array("cameras", cameras, (-1, 9))
    pts = as_array("points", points, (-1, 3))
    obs = as_array("observations", observations, (-1, 2))
    ci = as_array("camera_index", camera_index, (-1,), dtype=np.int64)
    pi = as_array("point_index", point_index, (-1,), dtype=np.int64)
    for name, a in (("cameras", cams), ("points", pts), ("observations", obs)):
        big = np.argwhere(np.abs(a) > MAX_ABS_VALUE)
        if big.size:
            i, j = big[0]
            raise InputError(f"{name}[{i}, {j}] = {a[i, j]:.3g} is beyond +-{MAX_ABS_VALUE:.0e} "
                             "(corrupt data or wrong units?)")
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
    return cams, pts, obs, ci, pi


def _coverage_warnings(cams, pts, ci, pi) -> list[str]:
    """Unobserved cameras or points, and a problem with fewer residuals than unknowns."""
    out = []
    for name, idx, count in (("cameras", ci, len(cams)), ("points", pi, len(pts))):
        k = int(np.sum(np.bincount(idx, minlength=count) == 0))
        if k:
            out.append(f"{k} {name} have no observation; they are left unchanged")
    unknowns = 9 * len(np.unique(ci)) + 3 * len(np.unique(pi)) - GAUGE_DOF
    if 2 * len(ci) < unknowns:
        out.append(f"under-determined: {2 * len(ci)} residuals for {unknowns} unknowns (9 per "
                   f"camera, 3 per point, less a {GAUGE_DOF}-dof gauge); the solution is not "
                   "unique and the solver may stop without converging")
    return out


def bundle_adjust_problem(problem: BALProblem, **kwargs) -> BundleAdjustmentResult:
    """:func:`bundle_adjust` on a :class:`BALProblem`."""
    return bundle_adjust(problem.cameras, problem.points, problem.camera_index,
                         problem.point_index, problem.observations, **kwargs)
