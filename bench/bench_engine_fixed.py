"""The engine's fixed costs on small problems, this checkout against another (A/B).

Each round runs one fresh process per checkout (alternated, so a shared machine's slow
phases hit both) with ``PYTHONPATH`` on that checkout, and reports the minimum over rounds
of this thread's CPU time (``time.thread_time``: time spent waiting for a core is not
counted) and of the wall time:

* ``icp solve``: the six LM pose solves of a 10k-point point-to-plane registration (the
  bench's synthetic surface, ``bench_registration.synthetic``), captured from ``register``
  and re-run through the engine: microseconds per solve;
* ``icp 10k register``: the whole ``register`` call (normals and tree included);
* ``dubrovnik``: ``bundle_adjust_problem`` on dubrovnik-3-7 in a warm process (ms per solve,
  and per iteration);
* ``intrinsics 13 / 100``: ``fit_intrinsics`` on the 13 real views and the 100 shared
  synthetic ones (ms per fit);
* ``bunny CLI``: the CPU of a whole ``calib register-clouds`` process on the bundled bunny
  pair and the scipy modules it imports (``-X importtime``).

The results (solve poses, registration pose, BA and intrinsics costs) are compared between
the checkouts: the largest relative differences are printed.

``--paired``: both checkouts in one process instead (the reference's ``calib`` copied and
imported as ``calib_ref``), alternating batch by batch, so the machine's load hits both
alike; thread CPU per call of ICP 10k, dubrovnik-3-7 and intrinsics 13 / 100 views (with
``--large`` also 500 views, ICP 100k and problem-49).

``--large``: instead, the large paths the same code serves (ICP at 100k points, 500-view
intrinsics, problem-49-7776 bundle adjustment), to check they are not slowed.

``--icp-open3d RUNS``: ICP at 10k points (bench_registration's ``speed`` case, own
stopping): this checkout, the reference and Open3D alternating in one process.

Usage: python bench/bench_engine_fixed.py --ref /work/main [--rounds 3] [--large] [--paired]
       python bench/bench_engine_fixed.py --ref /work/main --icp-open3d 30
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _best(fn, batches: int = 7, n: int = 20) -> tuple[float, float]:
    """Min over batches of the mean thread CPU and wall time of ``n`` calls (seconds)."""
    fn()
    cpu = wall = float("inf")
    for _ in range(batches):
        c0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(n):
            fn()
        cpu = min(cpu, (time.thread_time() - c0) / n)
        wall = min(wall, (time.perf_counter() - t0) / n)
    return cpu, wall


def _pose(solved):
    """The pose of a ``_solve_pose`` result (``(pose, step sigma)`` since the fifth session;
    a bare pose before, for references that old)."""
    return solved[0] if isinstance(solved, tuple) else solved


def _icp(out: dict, res: dict) -> None:
    import numpy as np

    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent / "tests"))
    from bench_registration import synthetic

    import calib.registration.icp as icp
    from calib.registration import ICPOptions, register

    cases = []
    orig = icp._solve_pose

    def capture(fam, T, loss, iterations):
        cases.append((fam, T.copy(), loss, iterations))
        return orig(fam, T, loss, iterations)

    src, tgt, _ = synthetic(10_000)
    opts = ICPOptions(max_correspondence_distance=0.5, workers=2)
    icp._solve_pose = capture
    r = register(src, tgt, np.eye(4), opts)
    icp._solve_pose = orig
    cpu, wall = _best(lambda: [orig(*c) for c in cases])
    out["icp solve us"] = (cpu / len(cases) * 1e6, wall / len(cases) * 1e6)
    res["icp solve poses"] = [_pose(orig(*c)).tolist() for c in cases]
    res["icp 10k pose"] = r.T_target_source.tolist()
    cpu, wall = _best(lambda: register(src, tgt, np.eye(4), opts), 5, 3)
    out["icp 10k register ms"] = (cpu * 1e3, wall * 1e3)


def _dubrovnik(out: dict, res: dict) -> None:
    from common import SHARED

    from calib.bundle import bundle_adjust_problem, read_bal

    p = read_bal(SHARED / "bal" / "dubrovnik-3-7-pre.txt")
    r = bundle_adjust_problem(p)
    cpu, wall = _best(lambda: bundle_adjust_problem(p), 5, 5)
    out["dubrovnik ms"] = (cpu * 1e3, wall * 1e3)
    out["dubrovnik us / iteration"] = (cpu * 1e6 / r.iterations, wall * 1e6 / r.iterations)
    res["dubrovnik cost"] = [r.final_cost]


def _intrinsics(out: dict, res: dict) -> None:
    import numpy as np
    from common import SHARED

    from calib.intrinsics import fit_intrinsics

    real = np.load(SHARED / "opencv_stereo_chessboard_left" / "corners_9x6.npz")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    sets = {"13": (real["object_points"].astype(float), real["image_points"].astype(float),
                   tuple(int(v) for v in real["image_size"])),
            "100": (syn["object_points"], syn["image_points"],
                    tuple(int(v) for v in syn["image_size"]))}
    for name, (obj, img, size) in sets.items():
        fit = fit_intrinsics(obj, img, size)
        cpu, wall = _best(lambda obj=obj, img=img, size=size: fit_intrinsics(obj, img, size),
                          5, 3)
        out[f"intrinsics {name} views ms"] = (cpu * 1e3, wall * 1e3)
        res[f"intrinsics {name} params"] = list(map(float, fit.camera.params))


def _cli(out: dict, res: dict, root: str) -> None:
    """``calib register-clouds`` on the bundled bunny pair (bench_registration's ``cli``
    arguments) with this root first on the path: process CPU (min of 3) and, from one run
    under ``-X importtime``, the scipy modules it imported and their import time."""
    import compileall
    import resource
    import tempfile

    for package in ("calib", "cli"):  # as an install does (bench_registration cli)
        compileall.compile_dir(str(Path(root) / package), quiet=1)
    folder = HERE.parent / "datasets" / "bunny"
    exe = str(Path(sys.executable).with_name("calib"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, str(HERE)]))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, exe, "register-clouds", str(folder / "bun045.ply"),
               str(folder / "bun000.ply"), "--voxel", "0.001", "-o", f"{tmp}/c.txt",
               "--report", f"{tmp}/c.json", "--quiet"]
        cpu = []
        for _ in range(3):
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)
        trace = subprocess.run([sys.executable, "-X", "importtime"] + cmd[1:], env=env,
                               check=True, capture_output=True, text=True).stderr
        res["bunny CLI pose"] = [float(v) for v in open(f"{tmp}/c.txt").read().split()]
    rows = [line.split("|") for line in trace.splitlines() if line.startswith("import time:")]
    scipy = [(r[2].strip(), int(r[0].split(":")[1])) for r in rows
             if r[2].strip().startswith("scipy")]
    out["bunny CLI process CPU ms"] = (min(cpu) * 1e3, float("nan"))
    out["of which scipy imports ms (importtime, self)"] = (
        sum(us for _, us in scipy) / 1e3, float("nan"))
    res["scipy modules imported by the CLI"] = [len(scipy)] + sorted(
        m for m, _ in scipy if m.count(".") == 1 and not m.startswith("scipy._"))


def _large(out: dict, res: dict) -> None:
    """The large paths the same code serves: ICP at 100k points, 500-view intrinsics,
    problem-49-7776 bundle adjustment (min of 3, 3 and 2 runs)."""
    import numpy as np
    from bench_intrinsics import synthetic_views
    from bench_registration import synthetic
    from common import SHARED

    from calib.bundle import bundle_adjust_problem, read_bal
    from calib.intrinsics import fit_intrinsics
    from calib.registration import ICPOptions, register

    src, tgt, _ = synthetic(100_000)
    opts = ICPOptions(max_correspondence_distance=0.5, workers=2)
    cpu, wall = _best(lambda: register(src, tgt, np.eye(4), opts), 3, 1)
    out["icp 100k register ms"] = (cpu * 1e3, wall * 1e3)
    res["icp 100k pose"] = register(src, tgt, np.eye(4), opts).T_target_source.tolist()
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    img, size = synthetic_views(500, syn, 1), tuple(int(v) for v in syn["image_size"])
    cpu, wall = _best(lambda: fit_intrinsics(syn["object_points"], img, size), 3, 1)
    out["intrinsics 500 views ms"] = (cpu * 1e3, wall * 1e3)
    res["intrinsics 500 params"] = list(map(float, fit_intrinsics(
        syn["object_points"], img, size).camera.params))
    p = read_bal(SHARED / "bal" / "problem-49-7776-pre.txt")
    cpu, wall = _best(lambda: res.__setitem__("problem-49 cost", [
        bundle_adjust_problem(p).final_cost]), 2, 1)
    out["problem-49 BA ms"] = (cpu * 1e3, wall * 1e3)


def worker(root: str, large: bool) -> dict:
    logging.disable(logging.WARNING)
    out, res = {}, {}
    if large:
        sys.path.insert(0, str(HERE))
        _large(out, res)
        return {"times": out, "results": res}
    _cli(out, res, root)
    _icp(out, res)
    _dubrovnik(out, res)
    _intrinsics(out, res)
    return {"times": out, "results": res}


def _ref_package(ref_root: str, tmp: str) -> str:
    """A copy of the reference checkout's ``calib`` importable as ``calib_ref`` (calib's own
    imports are relative; only the lazy-attribute table names the package)."""
    import shutil

    dst = Path(tmp) / "calib_ref"
    shutil.copytree(Path(ref_root) / "calib", dst,
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = dst / "__init__.py"
    init.write_text(init.read_text().replace('"calib.', '"calib_ref.'))
    return tmp


def _workloads(pkg: str, large: bool) -> dict:
    """name -> (function of no argument, calls per batch) on package ``pkg``."""
    import importlib

    import numpy as np
    from bench_intrinsics import synthetic_views
    from bench_registration import synthetic
    from common import SHARED

    bundle = importlib.import_module(f"{pkg}.bundle")
    intr = importlib.import_module(f"{pkg}.intrinsics")
    reg = importlib.import_module(f"{pkg}.registration")
    dub = bundle.read_bal(SHARED / "bal" / "dubrovnik-3-7-pre.txt")
    real = np.load(SHARED / "opencv_stereo_chessboard_left" / "corners_9x6.npz")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    size = tuple(int(v) for v in syn["image_size"])
    r_obj, r_img = real["object_points"].astype(float), real["image_points"].astype(float)
    r_size = tuple(int(v) for v in real["image_size"])
    src, tgt, _ = synthetic(10_000)
    icp = reg.ICPOptions(max_correspondence_distance=0.5, workers=2)
    out = {
        "ICP 10k register": (lambda: reg.register(src, tgt, np.eye(4), icp), 3),
        "dubrovnik-3-7 BA": (lambda: bundle.bundle_adjust_problem(dub), 5),
        "intrinsics 13 views": (lambda: intr.fit_intrinsics(r_obj, r_img, r_size), 3),
        "intrinsics 100 views": (lambda: intr.fit_intrinsics(syn["object_points"],
                                                             syn["image_points"], size), 2),
    }
    if large:
        img500 = synthetic_views(500, syn, 1)
        big_src, big_tgt, _ = synthetic(100_000)
        p49 = bundle.read_bal(SHARED / "bal" / "problem-49-7776-pre.txt")
        out["intrinsics 500 views"] = (lambda: intr.fit_intrinsics(syn["object_points"],
                                                                   img500, size), 1)
        out["ICP 100k register"] = (lambda: reg.register(big_src, big_tgt, np.eye(4), icp), 1)
        out["problem-49-7776 BA"] = (lambda: bundle.bundle_adjust_problem(p49), 1)
    return out


def paired(ref_root: str, rounds: int, large: bool) -> None:
    """Both checkouts in one process, alternating batch by batch, so the machine's load
    hits both alike: thread CPU per call (min and median over rounds) and the ratio."""
    import statistics
    import tempfile

    logging.disable(logging.WARNING)
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, _ref_package(ref_root, tmp))
        work = {"ref": _workloads("calib_ref", large), "this": _workloads("calib", large)}
        print(f"load before: {os.getloadavg()}")
        print("| workload | ref CPU ms min / median | this checkout CPU ms min / median | "
              "ratio of minima (medians) |")
        print("| --- | --- | --- | --- |")
        for name in work["ref"]:
            cpu = {"ref": [], "this": []}
            for key in cpu:
                work[key][name][0]()  # warm-up
            for i in range(rounds):  # the order flips each round (no first-runner bias)
                for key in (("ref", "this") if i % 2 == 0 else ("this", "ref")):
                    fn, n = work[key][name]
                    c0 = time.thread_time()
                    for _ in range(n):
                        fn()
                    cpu[key].append((time.thread_time() - c0) / n * 1e3)
            lo = {k: min(v) for k, v in cpu.items()}
            med = {k: statistics.median(v) for k, v in cpu.items()}
            print(f"| {name} | {lo['ref']:.2f} / {med['ref']:.2f} | {lo['this']:.2f} / "
                  f"{med['this']:.2f} | {lo['this'] / lo['ref']:.3f} "
                  f"({med['this'] / med['ref']:.3f}) |")
        print(f"load after: {os.getloadavg()}")


def icp_vs_open3d(ref_root: str, runs: int) -> None:
    """ICP at 10k points, each tool's own stopping, normals and trees inside the call (as
    bench_registration's ``speed``): this checkout, the reference (as ``calib_ref``) and
    Open3D alternating in one process; median and fastest wall time, median CPU."""
    import statistics
    import tempfile

    import numpy as np

    sys.path.insert(0, str(HERE))
    from bench_registration import _o3d_with_normals, _radius, synthetic

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, _ref_package(ref_root, tmp))
        import calib_ref.registration as ref

        import calib.registration as this

        src, tgt, _ = synthetic(10_000)
        radius = _radius(tgt)
        tools = {
            "this checkout": lambda: this.register(src, tgt, np.eye(4), this.ICPOptions(
                max_correspondence_distance=0.5, workers=2)),
            "ref": lambda: ref.register(src, tgt, np.eye(4), ref.ICPOptions(
                max_correspondence_distance=0.5, workers=2)),
            "Open3D": lambda: _o3d_with_normals(src, tgt, np.eye(4), 0.5, False, radius),
        }
        wall = {k: [] for k in tools}
        cpu = {k: [] for k in tools}
        print(f"load before: {os.getloadavg()}")
        for _ in range(runs):
            for name, fn in tools.items():
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
        o_w, o_c = statistics.median(wall["Open3D"]), statistics.median(cpu["Open3D"])
        o_f = min(wall["Open3D"])
        print("| tool | wall ms median (fastest) | CPU ms median | wall ratio to Open3D "
              "(fastest) | CPU ratio |")
        print("| --- | --- | --- | --- | --- |")
        for name in tools:
            w, c, f = statistics.median(wall[name]), statistics.median(cpu[name]), min(wall[name])
            print(f"| {name} | {w * 1e3:.1f} ({f * 1e3:.1f}) | {c * 1e3:.1f} | {w / o_w:.2f} "
                  f"({f / o_f:.2f}) | {c / o_c:.2f} |")
        print(f"load after: {os.getloadavg()}")


def _diff(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", help="another checkout (e.g. /work/main)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--large", action="store_true",
                    help="the large paths instead: ICP 100k, 500-view intrinsics, problem-49")
    ap.add_argument("--paired", action="store_true",
                    help="both checkouts in one process (the ref's calib as calib_ref), "
                         "alternating: CPU per call")
    ap.add_argument("--icp-open3d", type=int, metavar="RUNS",
                    help="ICP 10k: this checkout, the reference and Open3D in one process")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.icp_open3d:
        icp_vs_open3d(args.ref, args.icp_open3d)
        return
    if args.paired:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        paired(args.ref, args.rounds, args.large)
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.large)))
        return
    roots = {"this checkout": str(HERE.parent)}
    if args.ref:
        roots = {"ref": args.ref, **roots}
    got: dict = {k: [] for k in roots}
    print(f"load before: {os.getloadavg()}")
    for _ in range(args.rounds):
        for name, root in roots.items():
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, str(HERE)]),
                       OPENBLAS_NUM_THREADS="1")
            cmd = [sys.executable, __file__, "--worker", root] + (["--large"] * args.large)
            p = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
            got[name].append(json.loads(p.stdout.strip().splitlines()[-1]))
    print(f"load after: {os.getloadavg()}")
    first = got[next(iter(roots))][0]["times"]
    print("| measure (CPU / wall, min over rounds) | " + " | ".join(roots) + " |")
    print("| --- |" + " --- |" * len(roots))
    for key in first:
        cells = []
        for name in roots:
            cpu = min(g["times"][key][0] for g in got[name])
            wall = min(g["times"][key][1] for g in got[name])
            cells.append(f"{cpu:.1f} / {wall:.1f}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    for name in roots:
        if not args.large:
            print(name, "scipy:", got[name][0]["results"]["scipy modules imported by the CLI"])
    if args.ref:
        ra, rb = got["this checkout"][0]["results"], got["ref"][0]["results"]
        for key in ra:
            if key != "scipy modules imported by the CLI":
                print(f"{key}: max relative difference {_diff(ra[key], rb[key]):.2e}")


if __name__ == "__main__":
    main()
