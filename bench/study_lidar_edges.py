"""How much the board's edges add to camera-LiDAR, by number of frames and ray step.

32-beam LiDAR, 2 cm range noise; per seed, calib with the plane only (board size = grid +
one square) and with ``edges=True`` (the exact outer size); RMS errors over the seeds and
σ coverage of the edges run (|error| < 3σ, rotation and translation).

``coverage``: issue 14's statistic with edges, as tests/test_coverage_statistics.py makes
it for the plane (50 seeds 900-949, 6 frames, 1.5 cm, 1 deg step): mean Mahalanobis
distance squared over 6 of the error against the reported covariance.

Usage: .venv/bin/python bench/study_lidar_edges.py FRAMES AZ_STEP_DEG SEEDS FIRST_SEED
       .venv/bin/python bench/study_lidar_edges.py coverage
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from test_camera_lidar import board_size  # noqa: E402

from calib.extrinsics import CameraLidarOptions, calibrate_camera_lidar  # noqa: E402
from calib.extrinsics.uncertainty import pose_error  # noqa: E402
from calib_datasets import lidar_synth  # noqa: E402


def main(frames: int, az: float, seeds: int, first: int) -> None:
    err, cov = {False: [], True: []}, 0
    for seed in range(first, first + seeds):
        d = lidar_synth.frames(frames, 32, range_noise=0.02, seed=seed, az_step_deg=az)
        x0, x1, y0, y1 = d.board_extent
        for edges in (False, True):
            size = (x1 - x0, y1 - y0) if edges else board_size(d)
            r = calibrate_camera_lidar(d.clouds, d.object_points, d.corners, d.params, size,
                                       options=CameraLidarOptions(edges=edges))
            e = pose_error(r.T_camera_lidar, d.T_camera_lidar)
            err[edges].append(e)
            if edges:
                cov += (e[0] < 3 * r.std_rot_deg) + (e[1] < 3 * r.std_trans_m)
    p, w = (np.sqrt(np.mean(np.square(err[k]), axis=0)) * [1, 1e3] for k in (False, True))
    print(f"load {os.getloadavg()[0]:.1f}; {frames} frames, {az} deg step, seeds {first}-"
          f"{first + seeds - 1}: plane {p[0]:.4f} deg / {p[1]:.2f} mm, edges {w[0]:.4f} / "
          f"{w[1]:.2f}, ratio {w[0] / p[0]:.2f} / {w[1] / p[1]:.2f}, σ covers {cov}/"
          f"{2 * seeds}")


def coverage() -> None:
    from calib.lie import se3

    d2 = []
    for seed in range(900, 950):
        d = lidar_synth.frames(6, 32, range_noise=0.015, seed=seed, az_step_deg=1.0)
        x0, x1, y0, y1 = d.board_extent
        r = calibrate_camera_lidar(d.clouds, d.object_points, d.corners, d.params,
                                   (x1 - x0, y1 - y0), options=CameraLidarOptions(edges=True))
        e = se3.log(r.T_camera_lidar @ se3.inverse(d.T_camera_lidar))
        d2.append(e @ np.linalg.solve(r.cov, e) / 6)
    print(f"load {os.getloadavg()[0]:.1f}; edges, 50 seeds: mean d2/6 {np.mean(d2):.3f}, "
          f"within chi2(6) 95 %: {np.mean(np.array(d2) * 6 < 12.59):.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "coverage":
        coverage()
    else:
        main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
