"""Intrinsics solve time: calib vs OpenCV's calibrateCamera on identical corners.

Both start from scratch on the same corners (OpenCV's time includes its own
initialisation, ours includes Zhang's). Views: the 13 real views, 15, 100 (the shared
synthetic set with ground truth) and 500 synthetic views of the same 14x10 board.

BLAS threads: one by default (``--blas-threads N`` to change), set before numpy loads, as in
bench_bundle.py. The engine's per-view products are tiny GEMMs; on this 2-core machine shared
with other jobs, OpenBLAS's default two threads make our solve 2-2.5x slower (measured: 100
views 194 -> 85 ms, 500 views 1094 -> 429 ms), while OpenCV's calibrateCamera does not use
BLAS and keeps its own default threads (``cv2.getNumThreads()``).

Wall and process CPU time (all threads: OpenCV runs two) are both reported, each the median
of the alternating runs; on a shared machine OpenCV's wall time suffers more from load than
its CPU time. The last column compares the two answers: the largest difference between calib's and
OpenCV's nine parameters, in units of calib's standard deviation of that parameter.

Usage: python bench/bench_intrinsics.py [--repeat 5] [--blas-threads 1] [--more-views 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

if __name__ == "__main__":  # must happen before numpy is imported
    _n = sys.argv[sys.argv.index("--blas-threads") + 1] if "--blas-threads" in sys.argv else "1"
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = _n

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from common import SHARED, table  # noqa: E402

from calib.camera.pinhole import PARAM_NAMES, project  # noqa: E402
from calib.intrinsics import fit_intrinsics  # noqa: E402
from calib.lie import se3  # noqa: E402


def synthetic_views(n: int, base: dict, seed: int) -> np.ndarray:
    """``n`` views of the shared synthetic board with its true camera and 0.3 px noise."""
    rng = np.random.default_rng(seed)
    K, d = base["K_gt"], base["dist_gt_k1k2p1p2k3"]
    theta = np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], d]
    obj = base["object_points"]
    out = []
    w, h = base["image_size"]
    while len(out) < n:
        rv = rng.normal(0, 0.35, 3)
        T = se3.from_rt(se3.exp(np.r_[0, 0, 0, rv])[:3, :3], [rng.uniform(-0.25, 0.0),
                                                              rng.uniform(-0.2, 0.0),
                                                              rng.uniform(0.6, 1.2)])
        pc = se3.act(T, obj)
        if np.any(pc[:, 2] < 0.1):
            continue
        uv = project(pc, theta)
        if np.all((uv > 0) & (uv < [w - 1, h - 1])):
            out.append(uv + rng.normal(0, 0.3, uv.shape))
    return np.stack(out)


def interleaved(fa, fb, repeat: int):
    """Median wall and process CPU times (all threads) of ``fa`` and ``fb`` run alternately
    (one warm-up each), so both see the same machine load; and their last results:
    ``((wall_a, cpu_a), (wall_b, cpu_b), ra, rb)``."""
    ra, rb = fa(), fb()
    ta, tb = [], []
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        ra = fa()
        ta.append((time.perf_counter() - w, time.process_time() - c))
        w, c = time.perf_counter(), time.process_time()
        rb = fb()
        tb.append((time.perf_counter() - w, time.process_time() - c))
    med = lambda t: tuple(statistics.median(v) for v in zip(*t, strict=True))  # noqa: E731
    return med(ta), med(tb), ra, rb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--blas-threads", default="1", help="BLAS threads for numpy (default 1)")
    ap.add_argument("--more-views", type=int, nargs="*", default=[],
                    help="also synthetic sets of these many views (growth with the view count)")
    args = ap.parse_args()
    print(f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS')}, OpenCV threads "
          f"{cv2.getNumThreads()}, median of {args.repeat} alternating runs after a warm-up\n")
    real = np.load(SHARED / "opencv_stereo_chessboard_left" / "corners_9x6.npz")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    sets = [("13 real views", real["object_points"].astype(float),
             real["image_points"].astype(float), tuple(int(v) for v in real["image_size"]))]
    size = tuple(int(v) for v in syn["image_size"])
    sets.append(("15 synthetic", syn["object_points"], syn["image_points"][:15], size))
    sets.append(("100 synthetic (shared)", syn["object_points"], syn["image_points"], size))
    sets.append(("500 synthetic", syn["object_points"], synthetic_views(500, syn, 1), size))
    for n in args.more_views:
        sets.append((f"{n} synthetic", syn["object_points"], synthetic_views(n, syn, 2), size))
    rows = []
    for name, obj, img, sz in sets:
        o32 = [obj.astype(np.float32)] * len(img)
        i32 = [v.astype(np.float32) for v in img]
        run_cv = lambda o32=o32, i32=i32, sz=sz: cv2.calibrateCamera(  # noqa: E731
            o32, i32, sz, None, None)
        run_us = lambda obj=obj, img=img, sz=sz: fit_intrinsics(obj, img, sz)  # noqa: E731
        (t_cv, c_cv), (t_us, c_us), cv, us = interleaved(run_cv, run_us, args.repeat)
        cv_theta = np.r_[cv[1][0, 0], cv[1][1, 1], cv[1][0, 2], cv[1][1, 2], cv[2].ravel()[:5]]
        std = np.array([us.std[k] for k in PARAM_NAMES])
        rows.append([name, len(img), t_cv * 1e3, t_us * 1e3, t_cv / t_us, c_cv * 1e3,
                     c_us * 1e3, c_cv / c_us, t_us * 1e3 / len(img), cv[0], us.rms_px,
                     us.solver_summary.termination,
                     float(np.max(np.abs(us.camera.params - cv_theta) / std))])
    print(table(["set", "views", "OpenCV ms", "calib ms", "speed-up (OpenCV/calib)",
                 "OpenCV CPU ms", "calib CPU ms", "CPU speed-up", "calib ms/view",
                 "OpenCV RMS px", "calib RMS px", "calib termination", "max param diff / std"],
                rows))


if __name__ == "__main__":
    main()
