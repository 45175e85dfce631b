"""Camera-LiDAR extrinsics from hand-picked 2D-3D pairs (pixel in the image, point in the
LiDAR frame): RANSAC PnP for the start, then the reprojection error on the engine with a
Huber loss (hand-picked pairs include bad picks), again on the pairs the first pass found in
front of the camera and within 3 sigma; σ from the covariance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..errors import DegenerateError, InputError
from ..io.json_safe import json_safe
from ..lie import se3, so3
from ..solver import Euclidean, HuberLoss, Problem, SE3Manifold, SolverOptions, solve
from .result import _freeze
from .uncertainty import pose_std, solved_covariance

MIN_PAIRS = 6


@dataclass(frozen=True, eq=False)
class PairsResult:
    """``T_camera_lidar`` from 2D-3D pairs; per-pair residuals (px) and which pairs are
    inliers (residual < ``3 * sigma_px``, the robust noise estimate of the inliers)."""

    T_camera_lidar: np.ndarray
    cov: np.ndarray
    std_rot_deg: float
    std_trans_m: float
    residuals_px: np.ndarray
    inliers: np.ndarray
    sigma_px: float
    converged: bool
    message: str

    def __post_init__(self) -> None:
        _freeze(self)

    def to_dict(self) -> dict:
        d = {"T_camera_lidar": self.T_camera_lidar, "std_rot_deg": self.std_rot_deg,
             "std_trans_m": self.std_trans_m, "cov_T_camera_lidar": self.cov,
             "sigma_px": self.sigma_px, "converged": self.converged, "message": self.message,
             "rms_inliers_px": float(np.sqrt(np.mean(self.residuals_px[self.inliers] ** 2))),
             "rms_all_px": float(np.sqrt(np.mean(self.residuals_px ** 2))),
             "pairs": [{"index": i, "residual_px": r, "inlier": bool(k)} for i, (r, k) in
                       enumerate(zip(self.residuals_px.tolist(), self.inliers, strict=True))]}
        return json_safe(d)


def _start(lens, params, pts, uv, threshold_px) -> np.ndarray:
    import cv2

    rays, ok = lens.unproject(uv, params)
    if not ok.all() or np.any(rays[:, 2] <= 1e-6):
        raise InputError(f"pixels of pair(s) {np.flatnonzero(~ok)[:5].tolist()} are outside "
                         "the camera model's image")
    xy = rays[:, :2] / rays[:, 2:]
    good, rv, tv, inl = cv2.solvePnPRansac(pts, xy, np.eye(3), None,
                                           reprojectionError=threshold_px / params[0],
                                           iterationsCount=2000, confidence=0.999)
    if not good or inl is None or len(inl) < 4:
        raise DegenerateError("no pose explains 4 or more of the pairs (RANSAC PnP failed)")
    return se3.from_rt(so3.exp(rv.ravel()), tv.ravel())


def _residuals(lens, params, T: np.ndarray, pts: np.ndarray, uv: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the reprojection error (px) of the LiDAR points through ``T`` and whether
    the point is in front of the camera where the model projects it."""
    pc = se3.act(T, pts)
    proj, valid = lens.project(pc, params)
    return np.linalg.norm(proj - uv, axis=1), valid & (pc[:, 2] > 0)


def calibrate_from_pairs(lidar_points: np.ndarray, pixels: np.ndarray, params: np.ndarray,
                         model: str = "pinhole", threshold_px: float = 8.0) -> PairsResult:
    """``T_camera_lidar`` from ``N >= 6`` pairs: ``lidar_points (N, 3)`` (m, LiDAR frame)
    seen at ``pixels (N, 2)``; ``threshold_px``: RANSAC inlier bound for the start."""
    pts = np.asarray(lidar_points, dtype=float)
    uv = np.asarray(pixels, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3 or uv.shape != (len(pts), 2):
        raise InputError(f"pairs: expected (N, 3) LiDAR points and (N, 2) pixels, got "
                         f"{pts.shape} and {uv.shape}")
    if len(pts) < MIN_PAIRS:
        raise InputError(f"{len(pts)} pairs; need at least {MIN_PAIRS}")
    if not (np.isfinite(pts).all() and np.isfinite(uv).all()):
        raise InputError("pairs: non-finite values")
    lens = get_model(model)
    params = np.asarray(params, dtype=float).ravel()
    T0 = _start(lens, params, pts, uv, threshold_px)
    from ..residuals.chain_projection import ChainReprojection

    sigma, use = 1.0, np.ones(len(pts), bool)
    for _ in range(2):  # the second pass on the first pass's inliers, with their noise
        pb = Problem()
        pb.add_parameter("theta", params[None], Euclidean(len(params)))
        pb.set_constant("theta")
        for g in ("I1", "I2"):
            pb.add_parameter(g, np.eye(4)[None], SE3Manifold())
            pb.set_constant(g)
        pb.add_parameter("T", T0[None], SE3Manifold())
        z = np.zeros(int(use.sum()), int)
        pb.add_residuals(ChainReprojection(lens, pts[use], uv[use], 1, 1.0 / sigma),
                         [("theta", z), ("I1", z), ("I2", z), ("T", z)], loss=HuberLoss(2.0))
        res = solve(pb, SolverOptions(covariance=("T",)))
        T0 = res.values["T"][0]
        r, seen = _residuals(lens, params, T0, pts, uv)
        sigma = max(1.4826 * float(np.median(r[seen])) / np.sqrt(2), 1e-3) if seen.any() \
            else sigma
        # a pair whose point lies behind the camera (a bad pick) or far out is left out:
        # Huber's linear tail still lets a few such pairs pull the pose by decimetres. With
        # few pairs the residuals of good ones are skewed (6 pairs fit 6 unknowns), so a
        # cut that would leave fewer than MIN_PAIRS keeps every pair in front instead.
        inl = seen & (r < 3 * np.sqrt(2) * sigma)
        use = inl if inl.sum() >= MIN_PAIRS else seen
        if use.sum() < MIN_PAIRS:
            raise DegenerateError(f"only {int(use.sum())} of {len(pts)} pairs project in "
                                  f"front of the camera at the fitted pose (need {MIN_PAIRS}): "
                                  "check the picks")
    factor = max(float(np.sum(r[inl] ** 2)) / sigma ** 2 / max(2 * inl.sum() - 6, 1), 1.0)
    cov = solved_covariance(res, "T", "T_camera_lidar") * factor
    sd = pose_std(T0, cov)
    return PairsResult(T0, cov, sd["rot_deg_total"], sd["trans_m_total"], r, inl, sigma,
                       res.summary.termination == "converged", res.summary.message)
