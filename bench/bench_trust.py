"""What the trust figures cost: fit_intrinsics with and without the projection uncertainty
and the cross-validation (``FitOptions.trust``), on the bundled 13 real views and on seeded
synthetic sets of 100 and 500 views, interleaved, medians.

    python bench/bench_trust.py [--repeat 9]

Also prints the figures themselves on the real views (projection σ and cross-validation).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
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
