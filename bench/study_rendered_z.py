"""Does the reported σ of fx, fy, cx, cy cover the truth when detection adds its own error?
Seeded sets of rendered chessboard images (datasets/board_render.py, known camera),
calib's detector, fit without the trust figures; prints the RMS over seeds of
z = (estimate - truth) / σ per parameter (1 when σ is honest).

    python bench/study_rendered_z.py [--seeds 20] [--views 10]

Measured 2026-12-04 (20 seeds x 10 views, 640x480, noise 2 grey levels): z RMS fx 0.76,
fy 0.77, cx 1.31, cy 0.88 (all within [0.7, 1.5]); a test would take minutes of rendering,
so this is a study, not a unit test.
"""

from __future__ import annotations

import argparse

import numpy as np

from calib.intrinsics import Chessboard, detect_chessboard, fit_intrinsics
from calib_datasets.board_render import render_set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--views", type=int, default=10)
    args = ap.parse_args()
    board = Chessboard(9, 6, 0.025)
    zs = []
    for seed in range(args.seeds):
        rs = render_set(n_views=args.views, seed=seed, noise=2.0, supersample=3)
        found = [detect_chessboard(im, board) for im in rs.images]
        img = [c for c in found if c is not None]
        r = fit_intrinsics(rs.object_points, img, rs.image_size, trust=False)
        zs.append([(r.camera.params[i] - rs.params[i]) / r.std[k]
                   for i, k in enumerate(("fx", "fy", "cx", "cy"))])
    rms = np.sqrt(np.mean(np.square(zs), axis=0))
    print("z RMS over", args.seeds, "seeds:", dict(zip(("fx", "fy", "cx", "cy"), rms.round(2),
                                                       strict=True)))


if __name__ == "__main__":
    main()
