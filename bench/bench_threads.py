"""BLAS threads: calib in the default environment vs one BLAS thread set by hand.

Each workload runs in one fresh process started in the default environment (no BLAS
variable set, as a user of the README's commands runs calib) and is timed in three modes,
interleaved round after round so that every mode sees the same machine load:

* ``1 thread``: the whole workload under ``threadpoolctl.threadpool_limits(1)`` (what
  ``OPENBLAS_NUM_THREADS=1`` gives; the other benches set that);
* ``default``: nothing set: calib's thread policy (calib/solver/threads.py, one BLAS thread
  inside the solver, the library's own count elsewhere);
* ``default, no policy``: ``CALIB_BLAS_THREADS=default``: the library's own thread count
  inside the solver too (what calib did before the policy).

Workloads: intrinsics on the shared 100-view synthetic set and 500 synthetic views;
bundle adjustment on every BAL problem in ../shared/datasets/bal; point-to-plane ICP on
two samples of a smooth surface (10k and 100k points, Open3D normals, own stopping).
After a warm-up, ``--rounds`` rounds time each mode ``--repeat`` times (bundle
adjustment: once); medians. The default's answer must be bitwise the one-thread answer;
the last column gives how far the no-policy answer is from it (threaded BLAS sums in
another order).

Usage: python bench/bench_threads.py [--rounds 5] [--repeat 1]
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

import numpy as np
from common import SHARED, table

HERE = Path(__file__).resolve().parent
BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CALIB_BLAS_THREADS")
ENV = {k: v for k, v in os.environ.items() if k not in BLAS_VARS}
MODES = ("1 thread", "default", "default, no policy")

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
import contextlib, os
from threadpoolctl import threadpool_limits
def mode(name):
    os.environ.pop("CALIB_BLAS_THREADS", None)
    if name == "1 thread":
        return threadpool_limits(1)
    if name == "default, no policy":
        os.environ["CALIB_BLAS_THREADS"] = "default"
    return contextlib.nullcontext()
times, digests = {m: [] for m in spec["modes"]}, {}
for m in spec["modes"]:
    with mode(m):
        digests[m] = digest(work())
for _ in range(spec["rounds"]):
    for m in spec["modes"]:
        with mode(m):
            for _ in range(repeat):
                t0 = time.perf_counter(); work(); times[m].append(time.perf_counter() - t0)
print(json.dumps({"times": times, "digests": digests}))
"""


def measure(kind: str, arg, rounds: int, repeat: int) -> dict:
    spec = json.dumps({"kind": kind, "arg": arg, "repeat": repeat, "rounds": rounds,
                       "modes": MODES, "shared": str(SHARED)})
    out = subprocess.run([sys.executable, "-c", WORKER, str(HERE), spec], env=ENV,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per mode and round "
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
        res = measure(kind, arg, a.rounds, 1 if kind == "bundle" else a.repeat)
        t = {k: statistics.median(v) for k, v in res["times"].items()}
        d = {k: np.asarray(v, dtype=float) for k, v in res["digests"].items()}
        other = np.max(np.abs(d["default, no policy"] - d["1 thread"]) /
                       np.maximum(np.abs(d["1 thread"]), 1e-300))
        rows.append([f"{kind} {arg}", t["1 thread"], t["default"], t["default, no policy"],
                     t["default"] / min(t.values()), t["default, no policy"] / t["1 thread"],
                     "yes" if np.array_equal(d["default"], d["1 thread"]) else "NO",
                     f"{other:.1e}", f"{load:.1f}-{os.getloadavg()[0]:.1f}"])
        print(rows[-1], flush=True)
    print(table(["work", "1 thread s", "default s", "default, no policy s",
                 "default / best", "no policy / 1 thread", "default = 1 thread (bitwise)",
                 "no policy: max rel. diff", "load"], rows))


if __name__ == "__main__":
    main()
