"""Reference bundle adjustment: COLMAP's Ceres bundle adjuster (C++ cost functions) via pycolmap.

BAL -> COLMAP: camera model RADIAL ``(f, cx, cy, k1, k2)`` with ``cx = cy = 0`` held fixed;
BAL cameras look down ``-z``, COLMAP's down ``+z``, so ``R_colmap = diag(1, -1, -1) R_bal``,
``t_colmap = diag(1, -1, -1) t_bal`` and the observation's ``y`` is negated. With that,
COLMAP's residual equals BAL's up to the sign of ``y``, so costs compare directly.

COLMAP gives zero residual to observations behind their camera, so it effectively solves the
problem without them; costs are recomputed here with calib's BAL residual (no loss) from the
returned cameras and points, on all observations and on those in front at the start.
"""

from __future__ import annotations

import time

import numpy as np
import pycolmap

from calib.bundle.ba import cameras_to_poses
from calib.lie import so3
from calib.residuals.bal_projection import BALProjection

FLIP = np.diag([1.0, -1.0, -1.0])


def bal_cost(cameras, points, ci, pi, obs) -> float:
    """``0.5 * sum |r|^2`` of the BAL model (no loss)."""
    r, _ = BALProjection(obs).evaluate([cameras_to_poses(cameras), cameras[:, 6:9], points],
                                       [ci, ci, pi], jacobians=False)
    return 0.5 * float(np.sum(r * r))


def build_reconstruction(cameras, points, ci, pi, obs) -> tuple[pycolmap.Reconstruction,
                                                                 np.ndarray]:
    """A COLMAP reconstruction holding the BAL problem (one camera + image per BAL camera)
    and the COLMAP id of each BAL point."""
    rec = pycolmap.Reconstruction()
    R = FLIP @ so3.exp(cameras[:, :3])
    t = cameras[:, 3:6] * np.array([1.0, -1.0, -1.0])
    order = np.argsort(ci, kind="stable")
    starts = np.searchsorted(ci[order], np.arange(len(cameras) + 1))
    point2d_idx = np.empty(len(ci), dtype=np.int64)
    for c in range(len(cameras)):
        f, k1, k2 = cameras[c, 6:9]
        cam = pycolmap.Camera.create_from_model_name(c + 1, "RADIAL", float(f), 2000, 2000)
        cam.params = np.array([f, 0.0, 0.0, k1, k2])
        rec.add_camera_with_trivial_rig(cam)
        rows = order[starts[c]:starts[c + 1]]
        point2d_idx[rows] = np.arange(len(rows))
        kp = obs[rows] * np.array([1.0, -1.0])
        img = pycolmap.Image(name=f"{c}", keypoints=np.ascontiguousarray(kp), camera_id=c + 1,
                             image_id=c + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(R[c]), t[c])
        rec.add_image_with_trivial_frame(img, pose)
    ids = np.empty(len(points), dtype=np.int64)
    porder = np.argsort(pi, kind="stable")
    pstarts = np.searchsorted(pi[porder], np.arange(len(points) + 1))
    for q in range(len(points)):
        rows = porder[pstarts[q]:pstarts[q + 1]]
        track = pycolmap.Track()
        track.add_elements([pycolmap.TrackElement(int(ci[r]) + 1, int(point2d_idx[r]))
                            for r in rows])
        ids[q] = rec.add_point3D(points[q], track)
    return rec, ids


def read_back(rec: pycolmap.Reconstruction, n_cameras: int, ids: np.ndarray):
    """BAL cameras ``(C, 9)`` and points ``(P, 3)`` from the reconstruction."""
    cams = np.empty((n_cameras, 9))
    for c in range(n_cameras):
        T = rec.image(c + 1).cam_from_world().matrix()
        cams[c, :3] = so3.log(FLIP @ T[:, :3])
        cams[c, 3:6] = FLIP @ T[:, 3]
        p = rec.camera(c + 1).params
        cams[c, 6:9] = (p[0], p[3], p[4])
    pts = np.array([rec.point3D(int(i)).xyz for i in ids])
    return cams, pts


def solve_with_colmap(cameras, points, ci, pi, obs, max_iterations: int = 50,
                      threads: int = 1) -> dict:
    """Solve with COLMAP's bundle adjuster (Ceres tolerances as calib's defaults)."""
    cameras = np.asarray(cameras, float)
    points = np.asarray(points, float)
    rec, ids = build_reconstruction(cameras, points, ci, pi, obs)
    opts = pycolmap.BundleAdjustmentOptions()
    opts.print_summary = False
    opts.refine_principal_point = False
    so = opts.ceres.solver_options
    so.num_threads = threads
    so.max_num_iterations = max_iterations
    so.function_tolerance = 1e-6
    so.gradient_tolerance = 1e-10
    so.parameter_tolerance = 1e-8
    config = pycolmap.BundleAdjustmentConfig()
    for c in range(len(cameras)):
        config.add_image(c + 1)
    t0, c0 = time.perf_counter(), time.process_time()
    adjuster = pycolmap.create_default_bundle_adjuster(opts, config, rec)
    summary = adjuster.solve()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    cams, pts = read_back(rec, len(cameras), ids)
    depth = BALProjection(obs).camera_points(
        [cameras_to_poses(cameras), cameras[:, 6:9], points], [ci, ci, pi])[:, 2]
    front = depth < 0
    sub = (ci[front], pi[front], obs[front])
    cs = summary.ceres_summary if hasattr(summary, "ceres_summary") else None
    return dict(
        initial_cost=bal_cost(cameras, points, ci, pi, obs),
        final_cost=bal_cost(cams, pts, ci, pi, obs),
        initial_cost_in_front=bal_cost(cameras, points, *sub),
        final_cost_in_front=bal_cost(cams, pts, *sub),
        ceres_initial_cost=getattr(cs, "initial_cost", float("nan")),
        ceres_final_cost=getattr(cs, "final_cost", float("nan")),
        iterations=(cs.num_successful_steps + cs.num_unsuccessful_steps) if cs else -1,
        termination=str(summary.termination_type),
        linear_solver=str(getattr(cs, "linear_solver_type_used", "")),
        time_s=elapsed, cpu_s=cpu, ceres_time_s=getattr(cs, "total_time_in_seconds", float("nan")),
        num_observations_used=int(front.sum()), cameras=cams, points=pts)
