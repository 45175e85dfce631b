"""Fit time per lens model: calib's pinhole, rational, fisheye and double-sphere fits on the
same corners, side by side with OpenCV (calibrateCamera, CALIB_RATIONAL_MODEL,
cv2.fisheye.calibrate).

Sets: the shared synthetic 100 views (a pinhole lens, 1280x960) and 100 synthetic views of
the renderer's 190 deg fisheye lens (datasets/board_render.py FISHEYE_CAMERA, 640x480,
boards up to 40 deg off the axis so that cv2.fisheye.calibrate converges; 0.3 px noise).
Each tool starts from scratch (its own initialisation); calib's time includes the
diagnostics and the covariance; ``advise=False`` (no comparison fits), as the model
comparison only runs when a fit leaves structure (timed separately in the last column).
OpenCV runs with its default criteria and threads. One BLAS thread for numpy (as
bench_intrinsics.py). Median of ``--repeat`` interleaved runs after a warm-up.

The "diff / std" column: the largest difference between calib's and OpenCV's parameters
in units of calib's standard deviation.

Usage: python bench/bench_lens_models.py [--repeat 5] [--views 100]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # must happen before numpy is imported
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from bench_intrinsics import interleaved  # noqa: E402
from common import ROOT, SHARED, median_time, table  # noqa: E402

sys.path.insert(0, str(ROOT))
from calib.camera import get_model  # noqa: E402
from calib.intrinsics import Chessboard, fit_intrinsics  # noqa: E402
from calib.lie import se3  # noqa: E402
from datasets.board_render import FISHEYE_CAMERA, random_poses  # noqa: E402


def fisheye_views(n: int, seed: int = 1):
    """``(object points, (n, N, 2) pixels, size)`` of a 9x6 board through FISHEYE_CAMERA."""
    board = Chessboard(9, 6, 0.04)
    obj = board.object_points()
    rng = np.random.default_rng(seed)
    size = (640, 480)
    poses = random_poses(n, 9, 6, 0.04, FISHEYE_CAMERA, size, rng, model="fisheye",
                         max_angle_deg=40.0, depth=(0.5, 1.0), tilt=0.5)
    lens = get_model("fisheye")
    uv = np.stack([lens.project(se3.act(T, obj), FISHEYE_CAMERA)[0] for T in poses])
    return obj, uv + rng.normal(0, 0.3, uv.shape), size


def opencv(model: str, obj, img, size):
    """``(seconds-callable, params from its result)`` for the OpenCV routine of ``model``."""
    o32 = [obj.astype(np.float32)] * len(img)
    i32 = [v.astype(np.float32) for v in img]
    if model == "pinhole":
        return (lambda: cv2.calibrateCamera(o32, i32, size, None, None),
                lambda r: np.r_[r[1][0, 0], r[1][1, 1], r[1][0, 2], r[1][1, 2], r[2].ravel()[:5]])
    if model == "rational":
        return (lambda: cv2.calibrateCamera(o32, i32, size, None, None,
                                            flags=cv2.CALIB_RATIONAL_MODEL),
                lambda r: np.r_[r[1][0, 0], r[1][1, 1], r[1][0, 2], r[1][1, 2], r[2].ravel()[:8]])
    o64 = [obj[None].astype(np.float64)] * len(img)
    i64 = [v[None].astype(np.float64) for v in img]
    flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
    return (lambda: cv2.fisheye.calibrate(o64, i64, size, np.eye(3), np.zeros(4), flags=flags),
            lambda r: np.r_[r[1][0, 0], r[1][1, 1], r[1][0, 2], r[1][1, 2], r[2].ravel()])


def rows_for(label, obj, img, size, models, repeat):
    rows = []
    for model in models:
        def ours(model=model):
            return fit_intrinsics(obj, img, size, model=model, advise=False)
        run_cv, params_of = opencv(model, obj, img, size) if model != "double-sphere" \
            else (None, None)
        if run_cv is None:
            t_us, us = median_time(ours, repeat)
            t_cv, diff = float("nan"), float("nan")
        else:
            t_cv, t_us, cv, us = interleaved(run_cv, ours, repeat)
            std = np.array([us.std[k] for k in us.param_names])
            diff = float(np.max(np.abs(us.params - params_of(cv)) / std))
        t_adv, _ = median_time(lambda model=model: fit_intrinsics(obj, img, size, model=model),
                               max(1, repeat // 2))
        # calib's model against calib's pinhole fit, interleaved (the OpenCV runs between
        # rows take minutes, over which the machine's load changes)
        t_pin, t_mod, _, _ = interleaved(
            lambda: fit_intrinsics(obj, img, size, model="pinhole", advise=False), ours,
            3 * repeat)
        rows.append([label, model, len(img), t_us * 1e3, t_mod / t_pin, t_cv * 1e3, t_cv / t_us,
                     us.rms_px, diff, len(us.solver_summary.iterations), t_adv * 1e3])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--views", type=int, default=100)
    args = ap.parse_args()
    print(f"load (1/5/15 min): {' '.join(f'{v:.2f}' for v in os.getloadavg())}; OpenCV threads "
          f"{cv2.getNumThreads()}; median of {args.repeat} interleaved runs\n")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    size = tuple(int(v) for v in syn["image_size"])
    rows = rows_for("pinhole lens (shared synthetic)", syn["object_points"],
                    syn["image_points"][:args.views], size,
                    ("pinhole", "rational", "fisheye"), args.repeat)
    obj, img, fsize = fisheye_views(args.views)
    rows += rows_for("190 deg fisheye lens", obj, img, fsize,
                     ("pinhole", "fisheye", "double-sphere"), args.repeat)
    print(table(["set", "model", "views", "calib ms", "calib / calib pinhole (interleaved)",
                 "OpenCV ms",
                 "OpenCV / calib", "calib RMS px", "diff / std", "LM iterations",
                 "calib ms with advice"], rows))
    print(f"\nload after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
