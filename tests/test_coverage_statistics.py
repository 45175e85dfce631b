"""Issue 14's statistic for the 6-DoF results of this round (hand-eye, rig, camera-LiDAR):
over 50 seeded synthetic problems with known truth, the mean Mahalanobis distance squared
over 6 of the error (left twist against the reported covariance) is in [0.5, 2] (a
statistic, not one lucky case)."""

from __future__ import annotations

import numpy as np

from calib.extrinsics import HandEyeOptions, calibrate_hand_eye
from calib.lie import se3, so3
from calib.rig import fit_rig
from calib_datasets import handeye_synth
from calib_datasets.rig_synth import make_rig


def test_hand_eye_covariance_is_calibrated():
    """Eye-in-hand and eye-to-hand alternately, 15-25 stations, 0.2-0.5 px corners, robot
    noise 0.1-0.3 mm / 0.01-0.03 deg, stated to the solver as it is."""
    d2 = []
    for seed in range(50):
        rng = np.random.default_rng(seed)
        setup = ("eye-in-hand", "eye-to-hand")[seed % 2]
        px, mm, deg = rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.3), rng.uniform(0.01, 0.03)
        d = handeye_synth.stations(int(rng.integers(15, 26)), setup, px, mm, deg,
                                   seed=500 + seed)
        r = calibrate_hand_eye(d.robot_measured, d.setup, board_points=d.object_points,
                               image_points=d.corners, params=d.params,
                               options=HandEyeOptions(mm, deg))
        e = se3.log(r.X @ se3.inverse(d.X))
        d2.append(e @ np.linalg.solve(r.cov_X, e) / 6)
    assert 0.5 <= np.mean(d2) <= 2.0, np.mean(d2)


def test_stereo_extrinsic_covariance_is_calibrated():
    """A stereo pair with 6 shared frames of 12 per camera (rotation in rad, translation
    in m, as the result's ``extrinsic_covariance``)."""
    d2 = []
    for seed in range(50):
        s = make_rig(2, 12, seed=300 + seed, yaw_deg=30, pair_frames=6)
        res = fit_rig(s.cameras, s.board, s.image_sizes)
        T, truth = res.T_cam_ref[1], s.T_cam_rig[1]
        d = np.r_[so3.log(T[:3, :3] @ truth[:3, :3].T), T[:3, 3] - truth[:3, 3]]
        d2.append(d @ np.linalg.solve(res.extrinsic_covariance[1], d) / 6)
    assert 0.5 <= np.mean(d2) <= 2.0, np.mean(d2)


def test_camera_lidar_covariance_is_calibrated():
    """6 frames of a 32-beam LiDAR (1.5 cm range noise, floor, walls, the board's stand)
    and their board corners (0.3 px) per seed."""
    from calib.extrinsics import calibrate_camera_lidar
    from calib_datasets import lidar_synth

    d2 = []
    for seed in range(50):
        d = lidar_synth.frames(6, 32, range_noise=0.015, seed=900 + seed, az_step_deg=1.0)
        size = ((d.cols + 1) * d.square, (d.rows + 1) * d.square)  # grid plus one square
        r = calibrate_camera_lidar(d.clouds, d.object_points, d.corners, d.params, size)
        e = se3.log(r.T_camera_lidar @ se3.inverse(d.T_camera_lidar))
        d2.append(e @ np.linalg.solve(r.cov, e) / 6)
    assert 0.5 <= np.mean(d2) <= 2.0, np.mean(d2)
