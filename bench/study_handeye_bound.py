"""Is calib's hand-eye estimator efficient? Cramer-Rao bound vs Monte Carlo vs OpenCV.

For each noise regime and setup, over SEEDS seeded synthetic station sets
(``calib_datasets.handeye_synth``, the bench's data), this computes:

- the Cramer-Rao bound of ``X`` (``tests/test_hand_eye_bound.crb``) from an independent
  forward model (``cv2.projectPoints`` of the board through ``X^-1 B_i^s Y``, central
  differences, no calib residual code):
  unknowns ``X, Y`` and every true robot pose ``B_i``; measurements the corners (Gaussian,
  the true σ px) and the robot poses with the generator's noise model (base-frame position
  noise, left-multiplied rotation noise, the true σ). The error coordinates are the
  rotation error vector ``Log(R_est R_true^T)`` and the translation difference ``t_est -
  t_true``, the ones the bench's RMS errors measure, so ``sqrt(mean trace)`` is the
  smallest RMS error any unbiased estimator can reach on these stations;
- calib's RMS error (stated noise = true noise), and calib's σ;
- the best of OpenCV's seven methods (RMS, chosen per column after the fact).

Usage: .venv/bin/python bench/study_handeye_bound.py [SEEDS] [STATIONS [FIRST_SEED]]
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

from test_hand_eye import opencv_errors  # noqa: E402
from test_hand_eye_bound import crb  # noqa: E402

from calib.extrinsics import HandEyeOptions, calibrate_hand_eye  # noqa: E402
from calib.extrinsics.uncertainty import pose_error  # noqa: E402
from calib_datasets import handeye_synth  # noqa: E402

#: Noise regimes: the bench's three diagonal ones and the two other corners of the issue's
#: box (corners 0.2-0.5 px, robot 0.1-0.3 mm / 0.01-0.03 deg).
REGIMES = ((0.5, 0.1, 0.01), (0.3, 0.2, 0.02), (0.2, 0.3, 0.03), (0.5, 0.3, 0.03),
           (0.2, 0.1, 0.01))


def run(seeds: int, n: int, regimes=REGIMES, first: int = 1000) -> None:
    print(f"load {os.getloadavg()[0]:.1f}; {seeds} seeds from {first}, {n} stations; RMS rot "
          "deg / trans mm")
    print("| setup | px | robot mm / deg | CRB | calib | calib / CRB | calib σ (RMS) | "
          "best OpenCV | best OpenCV / CRB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for px, mm, deg in regimes:
        for setup in ("eye-in-hand", "eye-to-hand"):
            bound, mine, sig, theirs = [], [], [], {}
            for s in range(seeds):
                d = handeye_synth.stations(n, setup, px, mm, deg, seed=first + s)
                c = crb(d, px, mm, deg)
                bound.append((np.trace(c[:3, :3]), np.trace(c[3:, 3:])))
                r = calibrate_hand_eye(d.robot_measured, setup, board_points=d.object_points,
                                       image_points=d.corners, params=d.params,
                                       options=HandEyeOptions(mm, deg))
                mine.append(pose_error(r.X, d.X))
                sig.append((r.std_rot_deg, r.std_trans_m))
                for k, v in opencv_errors(d).items():
                    theirs.setdefault(k, []).append(v)
            b = np.sqrt(np.mean(bound, axis=0)) * [np.degrees(1), 1e3]
            m = np.sqrt(np.mean(np.square(mine), axis=0)) * [1, 1e3]
            sg = np.sqrt(np.mean(np.square(sig), axis=0)) * [1, 1e3]
            o = np.min([np.sqrt(np.mean(np.square(v), axis=0)) for v in theirs.values()],
                       axis=0) * [1, 1e3]
            print(f"| {setup} | {px} | {mm} / {deg} | {b[0]:.4f} / {b[1]:.3f} | "
                  f"{m[0]:.4f} / {m[1]:.3f} | {m[0] / b[0]:.2f} / {m[1] / b[1]:.2f} | "
                  f"{sg[0]:.4f} / {sg[1]:.3f} | {o[0]:.4f} / {o[1]:.3f} | "
                  f"{o[0] / b[0]:.2f} / {o[1] / b[1]:.2f} |", flush=True)


if __name__ == "__main__":
    seeds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    if len(sys.argv) > 2:  # the robot-noise-dominated regime at another station count
        run(seeds, int(sys.argv[2]), REGIMES[2:3], int(sys.argv[3]) if len(sys.argv) > 3
            else 1000)
    else:
        run(seeds, 20)
