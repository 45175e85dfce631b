"""Point-to-plane ICP (synthetic surface, target normals and k-d tree included, calib's own
stopping) in this checkout against another checkout of calib, e.g. an earlier commit from
``git archive REV | tar -x -C /tmp/ref``: alternating subprocesses, in-process repeats, the
median of the subprocesses' medians and the overall minimum, with the pose error and the
iterations of each (they should agree).

Usage: python bench/bench_registration_ab.py --ref /tmp/ref [--size 10000] [--repeats 21]
       [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

WORKER = r'''
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(1, sys.argv[2])
import numpy as np
import bench_registration as B
import calib
n, reps = int(sys.argv[3]), int(sys.argv[4])
src, tgt, G = B.synthetic(n)
for _ in range(3):
    B.ours(src, tgt, None, np.eye(4), max_d=0.5)
ts = []
for _ in range(reps):
    t = time.perf_counter()
    r = B.ours(src, tgt, None, np.eye(4), max_d=0.5)
    ts.append(time.perf_counter() - t)
print(json.dumps([calib.__file__, statistics.median(ts), min(ts),
                  B.pose_error(r.T_target_source, G)[0], r.iterations]))
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, type=Path, help="root of the other checkout")
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    roots = {"reference": args.ref.resolve(), "this checkout": HERE.parent}
    res: dict = {k: [] for k in roots}
    for _ in range(args.rounds):
        for k, root in roots.items():
            out = subprocess.run([sys.executable, "-c", WORKER, str(root), str(HERE),
                                  str(args.size), str(args.repeats)],
                                 capture_output=True, text=True, check=True)
            res[k].append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| {args.size} points | calib from | median of medians ms | min ms | rot err deg | "
          "iterations |\n| --- | --- | --- | --- | --- | --- |")
    for k, v in res.items():
        print(f"| {k} | {v[0][0]} | {statistics.median(x[1] for x in v) * 1e3:.2f} | "
              f"{min(x[2] for x in v) * 1e3:.2f} | {v[0][3]:.4f} | {v[0][4]} |")


if __name__ == "__main__":
    main()
