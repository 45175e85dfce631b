"""Accuracy of calib's hand-eye and camera-LiDAR against the reference tools, on seeded
synthetic data with ground truth (the comparisons the tests make, over more seeds).

Hand-eye: RMS over seeds of the rotation (deg) and translation (mm) error of X, calib vs
each of OpenCV's five calibrateHandEye and two calibrateRobotWorldHandEye methods (same
corners, PnP by cv2.solvePnP); σ coverage (|error| < 3σ). Camera-LiDAR: calib with the board
plane only and with its edges too (exact board size) vs the standard baseline (PnP plane,
RANSAC plane, closed form, least squares on point-to-plane).

Usage: .venv/bin/python bench/bench_extrinsics.py [SEEDS] [hand-eye|camera-lidar|all]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from test_camera_lidar import _true_board_roi, baseline, board_size  # noqa: E402
from test_hand_eye import opencv_errors  # noqa: E402

from calib.extrinsics import (  # noqa: E402
    CameraLidarOptions,
    HandEyeOptions,
    calibrate_camera_lidar,
    calibrate_hand_eye,
)
from calib.extrinsics.uncertainty import pose_error  # noqa: E402
from calib_datasets import handeye_synth, lidar_synth  # noqa: E402


def rms(v):
    return np.sqrt(np.mean(np.square(v), axis=0))


def hand_eye(seeds: int) -> None:
    print("| setup | corners px | robot mm / deg | calib rot deg / trans mm | best OpenCV "
          "(method) | calib / best | σ covers |")
    print("|---|---|---|---|---|---|---|")
    for px, mm, deg in ((0.5, 0.1, 0.01), (0.3, 0.2, 0.02), (0.2, 0.3, 0.03)):
        for setup in ("eye-in-hand", "eye-to-hand"):
            mine, theirs, cov = [], {}, 0
            for s in range(seeds):
                d = handeye_synth.stations(20, setup, px, mm, deg, seed=1000 + s)
                r = calibrate_hand_eye(d.robot_measured, setup, board_points=d.object_points,
                                       image_points=d.corners, params=d.params,
                                       options=HandEyeOptions(mm, deg))
                e = pose_error(r.X, d.X)
                mine.append(e)
                cov += (e[0] < 3 * r.std_rot_deg) + (e[1] < 3 * r.std_trans_m)
                for k, v in opencv_errors(d).items():
                    theirs.setdefault(k, []).append(v)
            m = rms(mine)
            best_r = min(theirs, key=lambda k: rms(theirs[k])[0])
            best_t = min(theirs, key=lambda k: rms(theirs[k])[1])
            br, bt = rms(theirs[best_r])[0], rms(theirs[best_t])[1]
            print(f"| {setup} | {px} | {mm} / {deg} | {m[0]:.4f} / {m[1] * 1e3:.3f} | "
                  f"{br:.4f} ({best_r}) / {bt * 1e3:.3f} ({best_t}) | {m[0] / br:.2f} / "
                  f"{m[1] / bt:.2f} | {cov}/{2 * seeds} |")


def camera_lidar(seeds: int) -> None:
    print("\n| beams | range noise | frames | calib plane rot deg / trans mm | calib + edges | "
          "baseline | σ covers (plane, edges) | calib time s (median: plane, edges) |")
    print("|---|---|---|---|---|---|---|---|")
    for beams, noise, n in ((32, 0.01, 10), (32, 0.02, 8), (64, 0.015, 12)):
        err, base, cov, times = {False: [], True: []}, [], {False: 0, True: 0}, \
            {False: [], True: []}
        for s in range(seeds):
            d = lidar_synth.frames(n, beams, range_noise=noise, seed=2000 + s,
                                   az_step_deg=0.2 if beams == 32 else 0.18)
            x0, x1, y0, y1 = d.board_extent
            for edges in (False, True):  # edges need the exact outer size of the board
                size = (x1 - x0, y1 - y0) if edges else board_size(d)
                t0 = time.perf_counter()
                r = calibrate_camera_lidar(d.clouds, d.object_points, d.corners, d.params,
                                           size, options=CameraLidarOptions(edges=edges))
                times[edges].append(time.perf_counter() - t0)
                e = pose_error(r.T_camera_lidar, d.T_camera_lidar)
                err[edges].append(e)
                cov[edges] += (e[0] < 3 * r.std_rot_deg) + (e[1] < 3 * r.std_trans_m)
            pts = [_true_board_roi(d, c, T) for c, T in zip(d.clouds, d.T_camera_board,
                                                           strict=True)]
            base.append(pose_error(baseline(d, pts), d.T_camera_lidar))
        m, me, b = rms(err[False]), rms(err[True]), rms(base)
        print(f"| {beams} | {noise} | {n} | {m[0]:.4f} / {m[1] * 1e3:.2f} | {me[0]:.4f} / "
              f"{me[1] * 1e3:.2f} | {b[0]:.4f} / {b[1] * 1e3:.2f} | {cov[False]}/{2 * seeds}, "
              f"{cov[True]}/{2 * seeds} | {np.median(times[False]):.2f}, "
              f"{np.median(times[True]):.2f} |", flush=True)


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    which = sys.argv[2] if len(sys.argv) > 2 else "all"  # hand-eye | camera-lidar | all
    print(f"load: {os.getloadavg()[0]:.1f}")
    if which in ("hand-eye", "all"):
        hand_eye(seeds)
    if which in ("camera-lidar", "all"):
        camera_lidar(seeds)
