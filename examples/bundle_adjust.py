"""Bundle-adjust a BAL problem and a synthetic one with known truth, with a robust loss, and
see what calib says about observations behind their camera.

Run from anywhere: ``python examples/bundle_adjust.py`` (the tiny bundled Dubrovnik problem
and a seeded synthetic problem; pass a BAL file, e.g. ../shared/datasets/bal/
problem-49-7776-pre.txt, to solve that instead).
"""

from __future__ import annotations

import logging
import sys

import numpy as np

import calib
from calib.bundle import bundle_adjust_problem
from calib_datasets import ROOT
from calib_datasets.bal_synth import synthetic_bal

logging.basicConfig(level=logging.WARNING, format="calib: warning: %(message)s")

# 1. A BAL file: cameras (angle-axis, t, f, k1, k2), points, observations (pixels, centred).
path = sys.argv[1] if len(sys.argv) > 1 else ROOT / "bal" / "dubrovnik-3-7-pre.txt"
bal = calib.read_bal(path)
print(f"{path}: {len(bal.cameras)} cameras, {len(bal.points)} points, "
      f"{len(bal.observations)} observations")


def progress(rec) -> None:  # called after every LM iteration; print every 10th
    if rec.iteration % 10 == 0:
            print(f"  iter {rec.iteration:3d}  cost {rec.cost:.6e}  |g| {rec.gradient_max_norm:.1e}"
              f"  damping {rec.damping:.1e}  {'accepted' if rec.accepted else 'rejected'}")


result = calib.bundle_adjust(bal.cameras, bal.points, bal.camera_index, bal.point_index,
                             bal.observations, max_iterations=50, callback=progress)
print(f"{result.termination}: cost {result.initial_cost:.6e} -> {result.final_cost:.6e} in "
      f"{result.iterations} iterations, {result.time_s:.2f} s ({result.summary.linear_solver});"
      f" {result.num_behind_camera} observations behind their camera (kept)")
n = len(bal.observations)
print(f"RMS reprojection error {np.sqrt(2 * result.final_cost / n):.3f} px per observation")
# calib warned above (and keeps it in result.warnings): this tiny sample has fewer residuals
# than unknowns, so the cost keeps creeping down and the solver cannot converge
print(f"{len(result.warnings)} warning(s):", *result.warnings)

# 2. Synthetic problem with ground truth: 120 cameras on a circle, 3,000 points, 0.5 px noise.
#    Well determined (12,000 residuals for 10,073 unknowns): it converges.
start, truth = synthetic_bal(n_cameras=120, n_points=3000, noise_px=0.5, seed=1)
res = bundle_adjust_problem(start)
print(f"\nsynthetic: {res.termination} ({res.message}) after {res.iterations} iterations; "
      f"cost {res.initial_cost:.4e} -> {res.final_cost:.4e} "
      f"(expected about 0.5 * 0.5^2 * (2N - dof) = "
      f"{0.5 * 0.25 * (2 * len(start.observations) - 9 * 120 - 3 * 3000):.4e})")

# 3. A few gross outliers: plain least squares is dragged, Huber (1 px) is not.
obs = start.observations.copy()
rng = np.random.default_rng(2)
bad = rng.choice(len(obs), 200, replace=False)
obs[bad] += rng.normal(0, 50, (200, 2))
for loss in (None, "huber"):
    r = calib.bundle_adjust(start.cameras, start.points, start.camera_index, start.point_index,
                            obs, loss=loss, loss_scale=1.0)
    err = np.linalg.norm(r.points - truth.points, axis=1)
    print(f"loss {loss or 'none':6s}: median point error {np.median(err) * 1000:.1f} mm "
          f"(points are ~25 m away; the gauge is free, so this includes a small drift)")
