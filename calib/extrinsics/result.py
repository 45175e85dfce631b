"""Result records of the extrinsic calibrations (frozen, read-only arrays, JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..io.json_safe import json_safe


def _freeze(obj) -> None:
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v = np.array(v)
            v.setflags(write=False)
            object.__setattr__(obj, f.name, v)


#: Median robot-pose correction, in units of the stated robot noise, above which the stated
#: noise is called too small (synthetic stations: 0.5-1.4 when it is right, 1.6-3.3 when the
#: robot is 2.5x noisier, 3.2-6.7 when 5x).
ROBOT_CORRECTION_RATIO = 2.5


@dataclass(frozen=True, eq=False)
class HandEyeResult:
    """Hand-eye calibration.

    ``X``: ``T_gripper_camera`` (eye-in-hand) or ``T_base_camera`` (eye-to-hand); ``Y``:
    ``T_base_target`` or ``T_gripper_target``; ``cov_X``, ``cov_Y`` their ``(6, 6)``
    tangent covariances (left perturbation, (rho, phi); m, rad), scaled by the residual
    variance. ``station_rms`` per station in ``residual_unit`` (``px``, or ``m`` when fitted
    to given target poses); ``robot_correction_mm`` / ``_deg``: how far the fit moved each
    robot pose from its measurement.
    """

    setup: str
    X: np.ndarray
    Y: np.ndarray
    cov_X: np.ndarray
    cov_Y: np.ndarray
    std_rot_deg: float
    std_trans_m: float
    std_rot_deg_xyz: np.ndarray
    std_trans_m_xyz: np.ndarray
    X_closed_form: np.ndarray
    params: np.ndarray | None
    residual_unit: str
    sigma_observation: float
    station_names: tuple[str, ...]
    station_rms: np.ndarray
    outlier_stations: tuple[str, ...]
    robot_correction_mm: np.ndarray
    robot_correction_deg: np.ndarray
    robot_sigma_mm: float
    robot_sigma_deg: float
    converged: bool
    iterations: int
    message: str
    robot_noise_estimated: bool = False

    def __post_init__(self) -> None:
        _freeze(self)

    @property
    def x_name(self) -> str:
        return "T_gripper_camera" if self.setup == "eye-in-hand" else "T_base_camera"

    @property
    def y_name(self) -> str:
        return "T_base_target" if self.setup == "eye-in-hand" else "T_gripper_target"

    @property
    def robot_noise_warning(self) -> str | None:
        """A warning when the fit moved the robot poses by much more than their stated
        noise (median correction over ``ROBOT_CORRECTION_RATIO`` times the stated σ, in
        millimetres or degrees): the stated noise is then too small and σ understated.
        ``None`` when the corrections fit the noise or it was estimated."""
        if self.robot_noise_estimated or not len(self.robot_correction_mm):
            return None
        mm = float(np.median(self.robot_correction_mm)) / self.robot_sigma_mm
        deg = float(np.median(self.robot_correction_deg)) / self.robot_sigma_deg
        if max(mm, deg) <= ROBOT_CORRECTION_RATIO:
            return None
        return (f"the fit moved the robot poses by a median {mm:.1f}x their stated position "
                f"noise and {deg:.1f}x their rotation noise: the robot is noisier than "
                "stated, so σ is understated; give its noise (--robot-sigma-mm, "
                "--robot-sigma-deg) or estimate it (--estimate-robot-noise)")

    def to_dict(self) -> dict:
        d = {"setup": self.setup, self.x_name: self.X, self.y_name: self.Y,
             "std_rot_deg": self.std_rot_deg, "std_trans_m": self.std_trans_m,
             "std_rot_deg_xyz": self.std_rot_deg_xyz, "std_trans_m_xyz": self.std_trans_m_xyz,
             f"cov_{self.x_name}": self.cov_X, f"cov_{self.y_name}": self.cov_Y,
             "converged": self.converged, "iterations": self.iterations,
             "message": self.message, f"{self.x_name}_closed_form": self.X_closed_form,
             "residual_unit": self.residual_unit, "sigma_observation": self.sigma_observation,
             "noise_model": {"robot_sigma_mm": self.robot_sigma_mm,
                             "robot_sigma_deg": self.robot_sigma_deg,
                             "estimated": self.robot_noise_estimated},
             "stations": [{"name": n, "rms": r, "robot_correction_mm": cm,
                           "robot_correction_deg": cd, "outlier": n in self.outlier_stations}
                          for n, r, cm, cd in zip(self.station_names, self.station_rms.tolist(),
                                                  self.robot_correction_mm.tolist(),
                                                  self.robot_correction_deg.tolist(),
                                                  strict=True)],
             "outlier_stations": list(self.outlier_stations),
             "warnings": [w for w in (self.robot_noise_warning,) if w]}
        if self.params is not None:
            d["camera_params"] = self.params
        return json_safe(d)


@dataclass(frozen=True, eq=False)
class CameraLidarResult:
    """Camera-LiDAR extrinsics: ``T_camera_lidar`` (maps LiDAR points into the camera
    frame), its ``(6, 6)`` tangent covariance, σ, and per-frame residuals (metres: the RMS
    distance of the frame's LiDAR board points to the camera's board plane; pixels: the
    frame's corner RMS)."""

    T_camera_lidar: np.ndarray
    cov: np.ndarray
    std_rot_deg: float
    std_trans_m: float
    std_rot_deg_xyz: np.ndarray
    std_trans_m_xyz: np.ndarray
    T_closed_form: np.ndarray
    board_poses: np.ndarray
    frame_names: tuple[str, ...]
    frame_plane_rms_m: np.ndarray
    frame_corner_rms_px: np.ndarray
    frame_points: np.ndarray
    sigma_range_m: float
    sigma_px: float
    normal_spread_deg: float
    converged: bool
    iterations: int
    message: str
    outlier_frames: tuple[str, ...] = ()
    frame_edge_rays: tuple[int, ...] = ()  # per frame, when the board's edges were used
    edge_rms_sigma: float | None = None  # the edge crossings' RMS in their σ (about 1)

    def __post_init__(self) -> None:
        _freeze(self)

    def to_dict(self) -> dict:
        edges = self.frame_edge_rays or (None,) * len(self.frame_names)
        d = {"T_camera_lidar": self.T_camera_lidar, "std_rot_deg": self.std_rot_deg,
             "std_trans_m": self.std_trans_m, "std_rot_deg_xyz": self.std_rot_deg_xyz,
             "std_trans_m_xyz": self.std_trans_m_xyz, "cov_T_camera_lidar": self.cov,
             "T_camera_lidar_closed_form": self.T_closed_form, "converged": self.converged,
             "iterations": self.iterations, "message": self.message,
             "sigma_range_m": self.sigma_range_m, "sigma_px": self.sigma_px,
             "normal_spread_deg": self.normal_spread_deg,
             "outlier_frames": list(self.outlier_frames),
             "edges_used": bool(self.frame_edge_rays), "edge_rms_sigma": self.edge_rms_sigma,
             "frames": [{"name": n, "plane_rms_m": r, "corner_rms_px": c, "board_points": k,
                         "edge_rays": e, "outlier": n in self.outlier_frames}
                        for n, r, c, k, e in zip(self.frame_names,
                                                 self.frame_plane_rms_m.tolist(),
                                                 self.frame_corner_rms_px.tolist(),
                                                 self.frame_points.tolist(), edges,
                                                 strict=True)]}
        return json_safe(d)
