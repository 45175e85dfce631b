"""Hand-eye on the real ROS-Industrial set (../shared/datasets/industrial_handeye_circles).

Wrist camera, 10x10 circle grid (0.0254 m) with one big dot marking the origin, 15
stations. First the whole set end to end: ``calib hand-eye images/ --robot-poses poses/
--target t.yaml`` (``originMark: true``: the big dot is point 0 in every view; the
per-station pose files pair with the images by number). Then, from the same detections,
writes poses.csv and corners.npz to OUT and runs ``calib hand-eye --corners`` with the
upstream nominal intrinsics (fx = fy = 550,
cx = 320, cy = 240, no distortion), with and without --refine-intrinsics, and with the
intrinsics ``calib fit-intrinsics --corners`` fits to the same circle centres; prints the
upstream checks: per-coordinate RMS, and the mean difference between the calibrated
camera->target pose and a per-image PnP.

Usage: .venv/bin/python bench/handeye_industrial.py [OUT_DIR]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

from calib.camera import CameraModel
from calib.extrinsics import poses_to_xyzq
from calib.extrinsics.poses import poses_from_xyzq
from calib.io.camera_files import write_camera
from calib.lie import se3, so3
from calib.targets.circlegrid import CircleGrid

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "industrial_handeye_circles"
NOMINAL = np.array([550.0, 550.0, 320.0, 240.0, 0, 0, 0, 0, 0])


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    target = CircleGrid(10, 10, 0.0254, origin_mark=True)
    B, views = [], []
    for k in range(15):
        p = yaml.safe_load((DATA / "poses" / f"{k}.yaml").read_text())
        B.append(poses_from_xyzq(np.array([[p[c] for c in ("x", "y", "z", "qx", "qy", "qz",
                                                           "qw")]]))[0])
        gray = cv2.imread(str(DATA / "images" / f"{k}.png"), cv2.IMREAD_GRAYSCALE)
        ids, uv = target.detect(gray)  # labelled from the big dot (origin mark)
        views.append(uv)
    np.savetxt(out / "poses.csv", poses_to_xyzq(np.stack(B)), header="x y z qx qy qz qw")
    np.savez(out / "corners.npz", image_points=np.stack(views), object_points=target.points(),
             image_size=np.array([640, 480]), names=np.array([f"{k}.png" for k in range(15)]))
    write_camera(out / "nominal.yaml", CameraModel(NOMINAL, (640, 480)))
    calib = str(Path(sys.executable).parent / "calib")
    (out / "t.yaml").write_text("target_type: circlegrid\ncols: 10\nrows: 10\n"
                                "spacingMeters: 0.0254\noriginMark: true\n")
    e2e = [calib, "hand-eye", str(DATA / "images"), "--robot-poses", str(DATA / "poses"),
           "--camera", str(out / "nominal.yaml"), "--target", str(out / "t.yaml"), "--setup",
           "eye-in-hand", "-o", str(out / "X.txt"), "--report", str(out / "he.json"), "-q"]
    print("$", " ".join(e2e))
    subprocess.run(e2e, check=True)
    check(out, np.stack(B), np.stack(views), target.points())
    fit = [calib, "fit-intrinsics", "--corners", str(out / "corners.npz"), "-o",
           str(out / "fitted.yaml"), "-q"]
    print("$", " ".join(fit))
    subprocess.run(fit, check=True)
    for cam, extra in (("nominal.yaml", []), ("nominal.yaml", ["--refine-intrinsics"]),
                       ("fitted.yaml", []), ("fitted.yaml", ["--estimate-robot-noise"]),
                       ("nominal.yaml", ["--refine-intrinsics", "--estimate-robot-noise"])):
        cmd = [calib, "hand-eye", "--robot-poses", str(out / "poses.csv"), "--corners",
               str(out / "corners.npz"), "--camera", str(out / cam), "--setup",
               "eye-in-hand", "-o", str(out / "X.txt"), "--report", str(out / "he.json"),
               *extra]
        print("$", " ".join(cmd))
        subprocess.run(cmd, check=True)
        check(out, np.stack(B), np.stack(views), target.points())


def check(out: Path, B: np.ndarray, views: np.ndarray, obj: np.ndarray) -> None:
    r = json.loads((out / "he.json").read_text())
    X, Y = np.array(r["T_gripper_camera"]), np.array(r["T_base_target"])
    th = np.array(r["camera_params"])
    rms = np.sqrt(np.mean(np.square(r["stations"][0]["rms"])))
    K = np.array([[th[0], 0, th[2]], [0, th[1], th[3]], [0, 0, 1.0]])
    dpos, dang = [], []
    for b, uv in zip(B, views, strict=True):
        _, rv, tv = cv2.solvePnP(obj, uv, K, th[4:])
        C = se3.compose(se3.compose(se3.inverse(X), se3.inverse(b)), Y)
        dpos.append(np.linalg.norm(C[:3, 3] - tv.ravel()))
        dang.append(np.degrees(np.linalg.norm(so3.log(C[:3, :3] @ cv2.Rodrigues(rv)[0].T))))
    per_coord = np.sqrt(np.mean([s["rms"] ** 2 for s in r["stations"]]) / 2)
    print(f"  per-coordinate RMS {per_coord:.3f} px (upstream bound: sqrt(cost/obs) < 1.5 px,"
          f" i.e. RMS < {1.5 * np.sqrt(2):.2f} px); station 0 RMS {rms:.3f} px")
    print(f"  camera->target vs per-image PnP: mean {np.mean(dpos) * 1e3:.2f} mm, "
          f"{np.mean(dang):.3f} deg (upstream bounds 20 mm, 3 deg)")
    print(f"  T_gripper_camera t = {np.round(X[:3, 3], 4)} m, sigma {r['std_trans_m'] * 1e3:.2f}"
          f" mm / {r['std_rot_deg']:.3f} deg; outliers {r['outlier_stations']}; "
          f"robot moves (mm) max {max(s['robot_correction_mm'] for s in r['stations']):.2f}; "
          f"robot noise {r['noise_model']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/handeye_industrial"))
