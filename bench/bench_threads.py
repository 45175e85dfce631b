"""BLAS threads: calib in the default environment vs one BLAS thread set by hand.

Three environments, each workload in its own subprocess, run round-robin so they see the
same load:

* ``1 thread``: ``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=MKL_NUM_THREADS=1`` (how the other
  benches run);
* ``default``: no variable set (what a user of the README's commands gets), with calib's
  thread policy (calib/solver/threads.py: one BLAS thread inside the solver);
* ``default, no policy``: no variable set and ``CALIB_BLAS_THREADS=default`` (the library's
  own threads inside the solver too: what calib did before the policy).

Workloads: intrinsics on the shared 100-view synthetic set and 500 synthetic views;
bundle adjustment on every BAL problem in ../shared/datasets/bal; point-to-plane ICP on
two samples of a smooth surface (10k and 100k points, Open3D normals, own stopping).
Each subprocess times its workload ``--repeat`` times after a warm-up and prints a digest of
the answer, which must be identical across environments; ``--rounds`` rounds visit the
three environments in turn (medians over all timed runs).

Usage: python bench/bench_threads.py [--rounds 3] [--repeat 3]
                                     [--only intrinsics|bundle|registration]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from common import SHARED, table

HERE = Path(__file__).resolve().parent
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CALIB_BLAS_THREADS")
BASE = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
ENVS = {"1 thread": {**BASE, **{k: "1" for k in BLAS_VARS[:3]}},
        "default": dict(BASE),
        "default, no policy": {**BASE, "CALIB_BLAS_THREADS": "default"}}

WORKER = r"""
import json, statistics, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
spec = json.loads(sys.argv[2])
kind, arg, repeat = spec["kind"], spec["arg"], spec["repeat"]
if kind == "intrinsics":
    from bench_intrinsics import synthetic_views
    from calib.intrinsics import fit_intrinsics
    syn = dict(np.load(spec["shared"] + "/synthetic/calib_100x140.npz"))
    img = syn["image_points"] if arg == 100 else synthetic_views(arg, syn, 1)
    size = tuple(int(v) for v in syn["image_size"])
    work = lambda: fit_intrinsics(syn["object_points"], img, size)
    digest = lambda r: [float(v) for v in r.camera.params]
elif kind == "bundle":
    from calib.bundle import bundle_adjust_problem, read_bal
    p = read_bal(spec["shared"] + "/bal/" + arg)
    work = lambda: bundle_adjust_problem(p)
    digest = lambda r: [r.final_cost, r.iterations]
else:
    import open3d as o3d
    from calib.lie import se3
    from calib.registration import ICPOptions, register
    from calib_datasets.cloud_synth import wavy_surface
    tgt = wavy_surface(arg, noise=0.002, seed=1)
    G = se3.exp(np.array([0.15, -0.1, 0.05, 0.01, -0.015, 0.03]))
    src = (wavy_surface(arg, noise=0.002, seed=2) - G[:3, 3]) @ G[:3, :3]
    def work():
        tp = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(tgt))
        tp.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(20))
        return register(src, tgt, np.eye(4), ICPOptions(max_correspondence_distance=0.5),
                        target_normals=np.asarray(tp.normals))
    digest = lambda r: [float(v) for v in r.T_target_source.ravel()]
r = work()
times = []
for _ in range(repeat):
    t0 = time.perf_counter(); r = work(); times.append(time.perf_counter() - t0)
print(json.dumps({"times": times, "digest": digest(r)}))
"""


def measure(kind: str, arg, env: dict, repeat: int) -> dict:
    spec = json.dumps({"kind": kind, "arg": arg, "repeat": repeat, "shared": str(SHARED)})
    out = subprocess.run([sys.executable, "-c", WORKER, str(HERE), spec], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per subprocess "
                    "(bundle adjustment: 1)")
    ap.add_argument("--only", choices=["intrinsics", "bundle", "registration"])
    a = ap.parse_args()
    work = [("intrinsics", 100), ("intrinsics", 500)]
    work += [("bundle", p.name) for p in sorted((SHARED / "bal").glob("*.txt"))]
    work += [("registration", 10_000), ("registration", 100_000)]
    rows = []
    for kind, arg in work:
        if a.only and kind != a.only:
            continue
        load = os.getloadavg()[0]
        times: dict[str, list] = {name: [] for name in ENVS}
        digests = set()
        for _ in range(a.rounds):
            for name, env in ENVS.items():
                res = measure(kind, arg, env, 1 if kind == "bundle" else a.repeat)
                times[name] += res["times"]
                digests.add(json.dumps(res["digest"]))
        t = {k: statistics.median(v) for k, v in times.items()}
        rows.append([f"{kind} {arg}", t["1 thread"], t["default"], t["default, no policy"],
                     t["default"] / min(t.values()), t["default, no policy"] / t["1 thread"],
                     "yes" if len(digests) == 1 else "NO", f"{load:.1f}"])
        print(rows[-1], flush=True)
    print(table(["work", "1 thread s", "default s", "default, no policy s",
                 "default / best", "no policy / 1 thread", "same answer", "load"], rows))


if __name__ == "__main__":
    main()
