"""What the trust figures cost: fit_intrinsics with and without the projection uncertainty
and the cross-validation (``FitOptions.trust``), on the bundled 13 real views and on seeded
synthetic sets of 100 and 500 views, interleaved, medians.

    python bench/bench_trust.py [--repeat 9]
    python bench/bench_trust.py --vs-opencv [--repeat 7]

Also prints the figures themselves on the real views (projection σ and cross-validation).
``--vs-opencv``: the default fit (trust on), the fit with ``trust=False`` and OpenCV's
calibrateCamera on bench_intrinsics.py's 100 (shared synthetic) and 500 views, run in
turn in one process, in the default environment (no thread variables set; calib's own
policy gives its solver one BLAS thread, OpenCV keeps its threads): medians of wall and
of process CPU time (all threads), and the ratios.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from calib.intrinsics import Chessboard, fit_intrinsics
from calib.lie import se3
from calib_datasets.board_render import random_poses

ROOT = Path(__file__).resolve().parents[1]
THETA = np.array([800.0, 802.0, 320.0, 240.0, -0.2, 0.05, 0.001, -0.001, 0.0])


def _real():
    d = np.load(ROOT / "datasets" / "chessboard_left" / "corners_9x6.npz")
    return Chessboard(9, 6, 0.025).object_points(), list(d["image_points"]), (640, 480)


def _synthetic(n: int, seed: int = 0):
    from calib.camera.pinhole import project

    board = Chessboard(9, 6, 0.03).object_points()
    rng = np.random.default_rng(seed)
    poses = random_poses(n, 9, 6, 0.03, THETA, (640, 480), rng)
    views = [project(se3.act(T, board), THETA) + rng.normal(0, 0.3, (len(board), 2))
             for T in poses]
    return board, views, (640, 480)


def _time(obj, img, size, trust: bool) -> float:
    t0 = time.perf_counter()
    fit_intrinsics(obj, img, size, trust=trust)
    return time.perf_counter() - t0


def _clocked(fn) -> tuple[float, float]:
    """``(wall s, process CPU s)`` of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def vs_opencv(repeat: int) -> None:
    """calib (trust on / off) against OpenCV on the intrinsics benchmark's 100 and 500
    views, interleaved, medians of wall and CPU time."""
    import sys

    import cv2

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_intrinsics import synthetic_views
    from common import SHARED

    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    size = tuple(int(v) for v in syn["image_size"])
    obj = syn["object_points"]
    print("| views | OpenCV ms wall (CPU) | calib trust on ms wall (CPU) | trust off ms wall "
          "(CPU) | OpenCV / calib wall (CPU) | trust cost ms CPU |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for img in (syn["image_points"], synthetic_views(500, syn, 1)):
        o32 = [obj.astype(np.float32)] * len(img)
        i32 = [v.astype(np.float32) for v in img]
        runs = {"cv": lambda o32=o32, i32=i32: cv2.calibrateCamera(o32, i32, size, None, None),
                "on": lambda img=img: fit_intrinsics(obj, img, size),
                "off": lambda img=img: fit_intrinsics(obj, img, size, trust=False)}
        t = {k: [] for k in runs}
        for fn in runs.values():  # warm-up
            fn()
        for _ in range(repeat):
            for k, fn in runs.items():
                t[k].append(_clocked(fn))
        m = {k: np.median(np.array(v), axis=0) * 1e3 for k, v in t.items()}
        print(f"| {len(img)} | {m['cv'][0]:.1f} ({m['cv'][1]:.1f}) | {m['on'][0]:.1f} "
              f"({m['on'][1]:.1f}) | {m['off'][0]:.1f} ({m['off'][1]:.1f}) | "
              f"{m['cv'][0] / m['on'][0]:.2f}x ({m['cv'][1] / m['on'][1]:.2f}x) | "
              f"{m['on'][1] - m['off'][1]:.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--vs-opencv", action="store_true",
                    help="default fit (trust on) and trust off against OpenCV, 100/500 views")
    args = ap.parse_args()
    if args.vs_opencv:
        vs_opencv(args.repeat)
        return
    sets = {"13 real views": _real(), "100 synthetic": _synthetic(100),
            "500 synthetic": _synthetic(500)}
    print("| set | fit ms | fit + trust ms | trust / fit |\n| --- | --- | --- | --- |")
    for name, (obj, img, size) in sets.items():
        t = {False: [], True: []}
        for _ in range(args.repeat):
            for trust in (False, True):
                t[trust].append(_time(obj, img, size, trust))
        f, w = np.median(t[False]), np.median(t[True])
        print(f"| {name} | {1e3 * f:.1f} | {1e3 * w:.1f} | {(w - f) / f:.2f} |")
    res = fit_intrinsics(*_real())
    d = res.to_dict()
    print(json.dumps({k: d[k] for k in ("projection_uncertainty_px", "cross_validation_px",
                                        "corner_bias_chi2", "systematic_error")}, indent=1))


if __name__ == "__main__":
    main()
