"""Sweep of the intrinsics solve's initial LM damping over random calibration problems.

Problems: five cameras (640x480 to 1920x1080; barrel, pincushion and no distortion), four
board sizes, 3 to 300 views, board tilts of 0.15-0.6 rad, corner noise 0.1-1 px, and the
options fix_k3, zero_tangent and a Huber loss, drawn from a seeded generator. For every
damping value: the solve time summed over the problems, iterations, rejected steps, errors,
and the largest relative difference of the final cost from the first value's (the minimum
must not depend on the damping).

Usage: python bench/study_intrinsics_damping.py [--problems 60] [--damping 1e-4 1e-5 1e-6 1e-8]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":  # before numpy loads, as in the other benchmarks
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from common import ROOT, table  # noqa: E402

sys.path.insert(0, str(ROOT))
from calib.camera.pinhole import project  # noqa: E402
from calib.errors import CalibError  # noqa: E402
from calib.intrinsics import fit_intrinsics  # noqa: E402
from calib.lie import se3  # noqa: E402
from datasets.board_render import random_poses  # noqa: E402

CAMERAS = [  # (params, image size)
    (np.array([520.0, 522.0, 318.5, 243.2, -0.28, 0.11, 0.0009, -0.0006, -0.02]), (640, 480)),
    (np.array([900.0, 905.0, 645.0, 475.0, -0.25, 0.08, 0.0012, -0.0008, -0.01]), (1280, 960)),
    (np.array([400.0, 400.0, 330.0, 250.0, -0.38, 0.15, 0.0, 0.0, -0.03]), (640, 480)),
    (np.array([1500.0, 1500.0, 960.0, 540.0, 0.05, -0.1, 0.0005, 0.0003, 0.2]), (1920, 1080)),
    (np.array([600.0, 600.0, 320.0, 240.0, 0.0, 0.0, 0.0, 0.0, 0.0]), (640, 480)),
]


def problems(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    for k in range(n):
        cam, size = CAMERAS[k % len(CAMERAS)]
        cols, rows = [(9, 6), (14, 10), (7, 5), (11, 8)][k % 4]
        views = [3, 5, 10, 20, 50, 150, 300][k % 7]
        tilt = [0.15, 0.35, 0.6][k % 3]
        sq = 0.03
        try:
            poses = random_poses(views, cols, rows, sq, cam, size, rng, tilt=tilt)
        except RuntimeError:
            continue
        i = np.arange(cols * rows)
        obj = np.stack([(i % cols) * sq, (i // cols) * sq, np.zeros(cols * rows)], axis=1)
        noise = [0.1, 0.3, 1.0][k % 3]
        img = np.stack([project(se3.act(T, obj), cam) for T in poses])
        img += rng.normal(0, noise, img.shape)
        opts = [{}, {"fix_k3": True}, {"zero_tangent": True}, {"loss": "huber"}][k % 4]
        yield obj, img, size, opts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", type=int, default=60)
    ap.add_argument("--damping", type=float, nargs="+", default=[1e-4, 1e-5, 1e-6, 1e-8])
    args = ap.parse_args()
    probs = list(problems(args.problems))
    stats = {m: dict(time=0.0, its=0, rejected=0, errors=0) for m in args.damping}
    worst = {m: 0.0 for m in args.damping}
    for obj, img, size, opts in probs:
        ref = None
        for m in args.damping:
            try:
                fit_intrinsics(obj, img, size, initial_damping=m, **opts)  # warm-up
                t = time.perf_counter()
                res = fit_intrinsics(obj, img, size, initial_damping=m, **opts)
                stats[m]["time"] += time.perf_counter() - t
            except CalibError:
                stats[m]["errors"] += 1
                continue
            s = res.solver_summary
            stats[m]["its"] += len(s.iterations)
            stats[m]["rejected"] += s.num_unsuccessful_steps
            ref = s.final_cost if ref is None else ref
            worst[m] = max(worst[m], abs(s.final_cost - ref) / ref)
    base = stats[args.damping[0]]["time"]
    rows = [[f"{m:g}", st["time"] * 1e3, base / st["time"], st["its"], st["rejected"],
             st["errors"], f"{worst[m]:.1e}"] for m, st in stats.items()]
    print(f"{len(probs)} problems\n")
    print(table(["initial damping", "total solve ms", f"speed-up vs {args.damping[0]:g}",
                 "iterations", "rejected steps", "errors", "max rel. cost difference"], rows))


if __name__ == "__main__":
    main()
