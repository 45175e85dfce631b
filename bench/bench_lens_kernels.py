"""Lens-model kernels: projection with Jacobians per model, against calib's pinhole kernel
and OpenCV's projectPoints on the same points (side by side, one process, medians).

calib: ``model.project(p_cam, params, jacobians=True)`` (d uv / d point and d uv / d params,
chunked). OpenCV: ``cv2.projectPoints`` / ``cv2.fisheye.projectPoints`` with their Jacobian
output (w.r.t. rvec, tvec, intrinsics and distortion) at rvec = tvec = 0, one call on all
points. Double-sphere has no OpenCV model. BLAS plays no part.

Usage: python -m bench.bench_lens_kernels [--points 14000 70000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from bench.common import table
from calib.camera import get_model
from calib.solver.heap import keep_freed_memory

PARAMS = {
    "pinhole": np.r_[900.0, 905.0, 645.0, 475.0, -0.25, 0.08, 0.0012, -0.0008, -0.01],
    "rational": np.r_[700.0, 702.0, 641.0, 482.0, 0.3, 0.02, 0.0007, -0.0004, 0.0, 0.7,
                      0.08, 0.0],
    "fisheye": np.r_[400.0, 400.0, 640.0, 480.0, 0.02, -0.004, 0.0006, -5e-05],
    "double-sphere": np.r_[300.0, 300.0, 640.0, 480.0, -0.2, 0.6],
}


def _opencv(model: str, p: np.ndarray):
    K, dist = get_model(model).to_opencv(PARAMS[model])
    z = np.zeros(3)
    if model == "fisheye":
        return lambda: cv2.fisheye.projectPoints(p[:, None], z, z, K, dist)
    return lambda: cv2.projectPoints(p, z, z, K, dist)


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, nargs="+", default=[14000, 70000])
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    keep_freed_memory()  # as every fit does: without it each call page-faults its arrays
    print(f"load average {os.getloadavg()[0]:.1f}, OpenCV threads {cv2.getNumThreads()}")
    rows = []
    pin = get_model("pinhole")
    for n in args.points:
        p = np.random.default_rng(0).uniform([-1, -0.8, 1], [1, 0.8, 3], (n, 3))
        for model, th in PARAMS.items():
            lens = get_model(model)
            ours = lambda p=p, lens=lens, th=th: lens.project(p, th, True)  # noqa: E731
            ref = lambda p=p: pin.project(p, PARAMS["pinhole"], True)  # noqa: E731
            cv = _opencv(model, p) if model != "double-sphere" else None
            ours(), ref(), cv and cv()  # warm-up
            # interleaved: each repetition times pinhole, the model and OpenCV back to back,
            # so the ratios hold under a fluctuating load
            t = np.array([[_once(ref), _once(ours), _once(cv) if cv else np.nan]
                          for _ in range(args.repeat)])
            med, best = np.median(t, axis=0), t.min(axis=0)
            rows.append([n, model, 1e3 * med[1], 1e3 * best[1], best[1] / best[0],
                         1e3 * best[2], best[2] / best[1]])
    print(table(["points", "model", "calib ms (median)", "calib ms (best)", "x pinhole (best)",
                 "OpenCV ms (best)", "OpenCV / calib (best)"], rows))
    print("best = fastest repetition: on a shared machine the uncontended cost; medians "
          "carry the load")


if __name__ == "__main__":
    main()
