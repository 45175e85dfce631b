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

``--rational-seeds N [--first S]``: the rational accuracy study instead. For each seed, 25
views of the tests' rational camera (tests/test_intrinsics_models.py RATIONAL_CAMERA, 640x480,
0.3 px noise, the same generator), calib's fit against calibrateCameraExtended(RATIONAL) run
to 300 and to 3000 iterations on the same corners. OpenCV "converged": its 300- and
3000-iteration answers agree within 1e-7 px RMS and 0.001 of its own std; "valid": its
distortion is monotonic from the centre out past the corners (``r2_max`` beyond the largest
undistorted r^2 of any corner under its own poses). Class (a) converged and valid: the
largest ``|calib - OpenCV| / calib std`` over the determined parameters (target 0.01);
class (b) the rest: calib's and OpenCV's fx, fy, cx, cy errors against the truth.

Usage: python bench/bench_lens_models.py [--repeat 5] [--views 100]
       python bench/bench_lens_models.py --rational-seeds 60 --first 200
"""

from __future__ import annotations

import argparse
import os
import sys
import time

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


#: The tests' rational camera (tests/test_intrinsics_models.py): 640x480, strong barrel.
RATIONAL_CAMERA = np.array([420.0, 421.0, 322.0, 238.0, 0.4, -0.05, 0.0008, -0.0005, 0.002,
                            0.75, 0.02, 0.004])


def rational_views(seed: int, n: int = 25, noise: float = 0.3):
    """``(object points, (n, 54, 2) pixels)``: the tests' ``corners("rational", n, seed)``."""
    board = Chessboard(9, 6, 0.04)
    obj = board.object_points()
    rng = np.random.default_rng(seed)
    poses = random_poses(n, 9, 6, 0.04, RATIONAL_CAMERA, (640, 480), rng, model="rational")
    uv = np.stack([get_model("rational").project(se3.act(T, obj), RATIONAL_CAMERA)[0]
                   for T in poses])
    return obj, uv + rng.normal(0, noise, uv.shape)


def opencv_rational(obj, img, iterations: int):
    """``(rms, params (12,), std (12,), largest undistorted r^2 of a corner)`` of
    calibrateCameraExtended(CALIB_RATIONAL_MODEL) run to ``iterations``."""
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-14)
    rms, K, d, rv, tv, sd, _, _ = cv2.calibrateCameraExtended(
        [obj.astype(np.float32)] * len(img), [v.astype(np.float32) for v in img], (640, 480),
        None, None, flags=cv2.CALIB_RATIONAL_MODEL, criteria=crit)
    p = np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], d.ravel()[:8]]
    r2 = 0.0
    for r, t in zip(rv, tv, strict=True):
        q = obj @ cv2.Rodrigues(r)[0].T + t.ravel()
        r2 = max(r2, float(np.max((q[:, 0] ** 2 + q[:, 1] ** 2) / q[:, 2] ** 2)))
    return rms, p, sd.ravel()[:12], r2


def rational_row(seed: int) -> dict:
    """One seed of the rational study (module docstring)."""
    from calib.camera.rational import r2_max
    obj, img = rational_views(seed)
    t = time.process_time()
    res = fit_intrinsics(obj, img, (640, 480), model="rational", advise=False, trust=False)
    t = time.process_time() - t
    rms3, p3, sd3, r2 = opencv_rational(obj, img, 300)
    rms, p, sd, _ = opencv_rational(obj, img, 3000)
    std = np.array([res.std[k] for k in res.param_names])
    det = np.isfinite(std) & (std > 0)
    conv = abs(rms3 - rms) < 1e-7 and bool(np.all(np.abs(p3 - p) <= 1e-3 * sd))
    err = np.abs(res.params[:4] - RATIONAL_CAMERA[:4])
    return dict(seed=seed, converged=conv, valid=bool(r2_max(p) > r2),
                sigma=float(np.max(np.abs(res.params - p)[det] / std[det])) if det.any()
                else float("nan"),
                undetermined=int((~det).sum()), d_rms=res.rms_px - rms,
                calib_ok=res.distortion_check.usable,
                iterations=len(res.solver_summary.iterations),
                capped=res.solver_summary.termination != "converged", cpu_s=t,
                err_calib=float(np.max(err)),
                err_cv=float(np.max(np.abs(p[:4] - RATIONAL_CAMERA[:4]))))


def rational_study(seeds: range) -> None:
    rows = [rational_row(s) for s in seeds]
    for r in rows:
        print(" ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in r.items()), flush=True)
    a = [r for r in rows if r["converged"] and r["valid"]]
    b = [r for r in rows if not (r["converged"] and r["valid"])]
    print(f"\n{len(rows)} seeds {seeds.start}-{seeds.stop - 1}")
    bad = [(r["seed"], round(r["sigma"], 3), f"{r['d_rms']:+.1e} px") for r in a
           if not r["sigma"] < 0.01]
    print(f"(a) OpenCV converged and valid: {len(a)}; calib within 0.01 std: "
          f"{len(a) - len(bad)}; exceptions (seed, std, calib - OpenCV RMS): {bad}")
    for name, sub in (("(a)", a), ("(b)", b), ("all", rows)):
        if sub:
            print(f"{name} {len(sub)} sets: max fx/fy/cx/cy error vs truth, median: calib "
                  f"{np.median([r['err_calib'] for r in sub]):.3f} px, OpenCV "
                  f"{np.median([r['err_cv'] for r in sub]):.3f} px; calib better in "
                  f"{sum(r['err_calib'] < r['err_cv'] for r in sub)}; calib RMS lower in "
                  f"{sum(r['d_rms'] < 0 for r in sub)}; calib check passes in "
                  f"{sum(r['calib_ok'] for r in sub)}; capped {sum(r['capped'] for r in sub)}")
    print(f"calib iterations median {np.median([r['iterations'] for r in rows]):.0f}, total "
          f"{sum(r['iterations'] for r in rows)}, CPU {sum(r['cpu_s'] for r in rows):.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--views", type=int, default=100)
    ap.add_argument("--rational-seeds", type=int, default=0)
    ap.add_argument("--first", type=int, default=200)
    args = ap.parse_args()
    if args.rational_seeds:
        print(f"load (1/5/15 min): {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        rational_study(range(args.first, args.first + args.rational_seeds))
        return
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
