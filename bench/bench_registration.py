"""Registration side by side with Open3D and small_gicp: accuracy, basin, speed.

Usage (from the repository root; CALIB_SHARED or ../shared gives the bunny scans):

    python bench/bench_registration.py accuracy
    python bench/bench_registration.py basin --trials 100
    python bench/bench_registration.py speed --sizes 10000 100000 1000000 --repeats 5
    python bench/bench_registration.py cli --repeats 5
    python bench/bench_registration.py all

accuracy: Stanford bunny pairs against the bun.conf ground truth (bun045->bun000 from the
  identity; bun090->bun045 from a 5 deg / 7 mm perturbation of the truth), voxel 1 mm,
  maximum correspondence distance 10 mm, 30 iterations at most, same clouds and normals for
  every tool. Inlier RMSE and fitness are evaluated by Open3D's evaluator for all tools.
basin: random initial perturbations (rotation up to 20 deg, translation up to 10% of the
  cloud extent, seeded) on a bunny pair; a trial succeeds when the result is within 0.5 deg
  and 1% of the extent of the truth.
speed: median wall time (and process CPU time, all threads, less sensitive to a shared
  machine's load; and the fastest run of each tool, the least disturbed) of the whole call
  from point arrays (target normals and k-d trees included for every tool; Open3D's normals
  with calib's default radius, computed once outside the timing as a user's constant, 30
  neighbours) on two independent samples of a smooth synthetic surface, 2 threads, with
  every tolerance set to zero ("30 fixed": up to 30 iterations; Open3D and small_gicp run
  all 30, calib stops where fitness and RMSE repeat bit for bit, a fixed point its further
  iterations would only repeat: 13 here, 3 of them on the coarse subset), plus each tool's
  own default stopping ("own stop", the issue's measure). Runs alternate between the tools.
cli: whole process (interpreter start, imports, read, normals, FPFH + RANSAC, ICP, write)
  of the README's ``calib register-clouds`` on the bundled bunny pair against an Open3D
  script doing the same steps (O3D_SCRIPT), each its own process, alternating. calib's
  modules are byte-compiled first, as an install does (Open3D's and every other installed
  package's are): with PYTHONDONTWRITEBYTECODE set, each run would otherwise compile
  calib's ~60 modules from source (about 0.1 s of CPU here).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import open3d as o3d  # noqa: E402

try:
    import small_gicp  # noqa: E402
except ImportError:  # optional third column
    small_gicp = None

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bunny import pair, pose_error  # noqa: E402

from calib.lie import se3  # noqa: E402
from calib.registration import ICPOptions, register  # noqa: E402
from calib_datasets.cloud_synth import wavy_surface  # noqa: E402

REG = o3d.pipelines.registration
VOXEL, MAX_D, ITERS, THREADS = 0.001, 0.01, 30, 2


def shared() -> Path:
    env = os.environ.get("CALIB_SHARED")
    return (Path(env) if env else ROOT.parent / "shared") / "datasets" / "stanford_bunny"


def pcd(points, normals=None):
    p = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points)))
    if normals is not None:
        p.normals = o3d.utility.Vector3dVector(np.ascontiguousarray(normals))
    return p


def bunny_case(source: str, target: str, perturb: bool):
    S, T, G = pair(shared(), source, target)
    src = pcd(S).voxel_down_sample(VOXEL)
    tgt = pcd(T).voxel_down_sample(VOXEL)
    tgt.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * VOXEL, max_nn=30))
    src.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * VOXEL, max_nn=30))
    init = np.eye(4)
    if perturb:
        init = se3.exp(np.r_[np.full(3, 0.007 / np.sqrt(3)),
                             np.full(3, np.radians(5) / np.sqrt(3))]) @ G
    return src, tgt, G, init


def o3d_icp(src, tgt, init, plane=True, max_d=MAX_D, iters=ITERS, fixed=False):
    est = REG.TransformationEstimationPointToPlane() if plane else \
        REG.TransformationEstimationPointToPoint()
    crit = REG.ICPConvergenceCriteria(max_iteration=iters) if not fixed else \
        REG.ICPConvergenceCriteria(relative_fitness=0.0, relative_rmse=0.0, max_iteration=iters)
    return np.asarray(REG.registration_icp(src, tgt, max_d, init, est, crit).transformation)


def sg_cloud(points, normals=None):
    c = small_gicp.PointCloud(np.ascontiguousarray(points))
    if normals is not None:
        small_gicp.estimate_normals_covariances(c, num_neighbors=20, num_threads=THREADS)
    return c


def sg_align(src, tgt, init, kind, max_d=MAX_D, iters=ITERS, tree=None, fixed=False):
    eps = {"rotation_epsilon": 0.0, "translation_epsilon": 0.0} if fixed else {}
    tree = tree if tree is not None else small_gicp.KdTree(tgt, num_threads=THREADS)
    r = small_gicp.align(tgt, src, tree, init, registration_type=kind,
                         max_correspondence_distance=max_d, num_threads=THREADS,
                         max_iterations=iters, **eps)
    return np.asarray(r.T_target_source), r.iterations


def ours(src_pts, tgt_pts, tgt_normals, init, max_d=MAX_D, iters=ITERS, fixed=False, **kw):
    stop = {"relative_fitness": 0.0, "relative_rmse": 0.0, "transform_tolerance": 0.0,
            "uncertainty_tolerance": None} \
        if fixed else {}
    return register(src_pts, tgt_pts, init,
                    ICPOptions(max_correspondence_distance=max_d, max_iterations=iters,
                               workers=THREADS, **stop, **kw), target_normals=tgt_normals)


def timed(f, *args, **kwargs):
    t0 = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t0


def accuracy() -> None:
    print("## Accuracy on Stanford bunny pairs (voxel 1 mm, max distance 10 mm, <= 30 iterations)")
    print("| pair | method | rot err (deg) | trans err (mm) | inlier RMSE (mm) | fitness | "
          "time (s) |")
    print("|---|---|---|---|---|---|---|")
    for s, t, perturb in (("bun045.ply", "bun000.ply", False), ("bun090.ply", "bun045.ply", True)):
        src, tgt, G, init = bunny_case(s, t, perturb)
        P, Q, N = (np.asarray(x) for x in (src.points, tgt.points, tgt.normals))
        rows = [
            ("calib point-to-plane (Huber, auto scale)", ours, (P, Q, N, init), {}),
            ("calib point-to-plane (least squares)", ours, (P, Q, N, init), {"loss": None}),
            ("calib point-to-point (default: least squares)", ours, (P, Q, N, init),
             {"method": "point-to-point"}),
            ("Open3D point-to-plane", o3d_icp, (src, tgt, init), {}),
            ("Open3D point-to-point", o3d_icp, (src, tgt, init), {"plane": False}),
        ]
        if small_gicp is not None:
            sg_src, sg_tgt = sg_cloud(P, True), sg_cloud(Q, True)
            rows += [("small_gicp PLANE_ICP", sg_align, (sg_src, sg_tgt, init, "PLANE_ICP"), {}),
                     ("small_gicp GICP", sg_align, (sg_src, sg_tgt, init, "GICP"), {})]
        for name, f, args, kw in rows:
            T, dt = timed(f, *args, **kw)
            T = T.T_target_source if hasattr(T, "T_target_source") else \
                T[0] if isinstance(T, tuple) else T
            r, tr = pose_error(T, G)
            ev = REG.evaluate_registration(src, tgt, MAX_D, T)
            print(f"| {s[:-4]}->{t[:-4]} | {name} | {r:.3f} | {1e3 * tr:.3f} | "
                  f"{1e3 * ev.inlier_rmse:.4f} | {ev.fitness:.4f} | {dt:.3f} |")


def perturbations(G: np.ndarray, extent: float, n: int, seed: int = 42):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        yield se3.exp(np.r_[d * rng.uniform(0, 0.1 * extent),
                            axis * np.radians(rng.uniform(0, 20))]) @ G


def basin(trials: int) -> None:
    print(f"## Basin of convergence: {trials} random starts (<= 20 deg, <= 10% extent); "
          "success = within 0.5 deg and 1% of extent")
    print("| pair | calib point-to-plane | Open3D point-to-plane | small_gicp PLANE_ICP | "
          "small_gicp GICP |")
    print("|---|---|---|---|---|")
    for s, t in (("bun045.ply", "bun000.ply"), ("bun090.ply", "bun045.ply")):
        src, tgt, G, _ = bunny_case(s, t, False)
        P, Q, N = (np.asarray(x) for x in (src.points, tgt.points, tgt.normals))
        sg_src, sg_tgt = sg_cloud(P, True), sg_cloud(Q, True)
        extent = float(np.linalg.norm(np.ptp(Q, axis=0)))
        ok = np.zeros(4, int)
        for init in perturbations(G, extent, trials):
            Ts = []
            try:
                Ts.append(ours(P, Q, N, init).T_target_source)
            except Exception:  # a typed failure counts as a miss (never a silent identity)
                Ts.append(None)
            Ts.append(o3d_icp(src, tgt, init))
            Ts.append(sg_align(sg_src, sg_tgt, init, "PLANE_ICP")[0])
            Ts.append(sg_align(sg_src, sg_tgt, init, "GICP")[0])
            for k, T in enumerate(Ts):
                if T is not None:
                    r, tr = pose_error(T, G)
                    ok[k] += r < 0.5 and tr < 0.01 * extent
        print(f"| {s[:-4]}->{t[:-4]} | " + " | ".join(f"{k}/{trials}" for k in ok) + " |")


def synthetic(n: int):
    """Two independent samples (n points each) of a 20 m smooth surface, 2 mm noise, and
    the ground-truth offset between them."""
    tgt = wavy_surface(n, noise=0.002, seed=1)
    G = se3.exp(np.array([0.15, -0.1, 0.05, 0.01, -0.015, 0.03]))  # T_target_source
    src_t = wavy_surface(n, noise=0.002, seed=2)
    src = (src_t - G[:3, 3]) @ G[:3, :3]  # source frame
    return src, tgt, G


def _o3d_with_normals(src_pts, tgt_pts, init, max_d, fixed, radius):
    """Open3D as a user runs it: clouds from arrays, target normals (hybrid search, 30
    neighbours, ``radius``: the one calib uses by default, computed once outside the timed
    call, as a user's constant; before 2026-12-04 15:00 it was computed inside, adding
    calib's spacing estimate, ~2 ms at 10k, to Open3D's time), point-to-plane ICP."""
    sp, tp = pcd(src_pts), pcd(tgt_pts)
    tp.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=30))
    return o3d_icp(sp, tp, init, max_d=max_d, fixed=fixed)


def _radius(points) -> float:
    from calib.registration.spatial import spacing

    return 3 * spacing(points)


def speed(sizes: list[int], repeats: int) -> None:
    print("## Speed: median wall time (s) of the whole call, target normals and k-d trees "
          f"included for every tool, 2 threads, median of {repeats} alternating runs")
    sg = small_gicp is not None
    print("| points | mode | calib p2plane | Open3D p2plane | calib/Open3D |"
          + (" small_gicp PLANE_ICP | calib/small_gicp |" if sg else "")
          + " iterations (calib) | rot err deg (calib, O3D) | CPU calib/Open3D |"
          + " fastest run calib/Open3D |")
    print("|---|---|---|---|---|" + ("---|---|" if sg else "") + "---|---|---|---|")
    base = {}
    for n in sizes:
        src, tgt, G = synthetic(n)
        max_d = 0.5  # covers the 18 cm initial offset at every size
        radius = _radius(tgt)  # Open3D's normal radius: calib's default, a constant here
        init = np.eye(4)
        for fixed in (True, False):
            times = {"c": [], "o": [], "s": []}
            cpu = {"c": [], "o": []}
            for _ in range(repeats):
                c0 = time.process_time()
                res, dt = timed(ours, src, tgt, None, init, max_d=max_d, fixed=fixed)
                cpu["c"].append(time.process_time() - c0)
                times["c"].append(dt)
                its, err_c = res.iterations, pose_error(res.T_target_source, G)[0]
                c0 = time.process_time()
                T, dt = timed(_o3d_with_normals, src, tgt, init, max_d, fixed, radius)
                cpu["o"].append(time.process_time() - c0)
                times["o"].append(dt)
                err_o = pose_error(T, G)[0]
                if sg:
                    _, dt = timed(_sg_with_normals, src, tgt, init, max_d, fixed)
                    times["s"].append(dt)
            med = {k: statistics.median(v) for k, v in times.items() if v}
            mode = "30 fixed" if fixed else "own stop"
            base.setdefault(mode, []).append((n, med["c"], med["o"]))
            sgc = f" {med['s']:.4f} | {med['c'] / med['s']:.2f} |" if sg else ""
            cpu_ratio = statistics.median(cpu["c"]) / statistics.median(cpu["o"])
            # the fastest of the runs: the least disturbed by other processes on a shared
            # machine (each tool's best case, closer to a quiet machine than the median)
            best = f"{min(times['c']):.4f} / {min(times['o']):.4f} = " \
                f"{min(times['c']) / min(times['o']):.2f}"
            print(f"| {n} | {mode} | {med['c']:.4f} | {med['o']:.4f} | "
                  f"{med['c'] / med['o']:.2f} |{sgc} {its} | {err_c:.4f}, {err_o:.4f} | "
                  f"{cpu_ratio:.2f} | {best} |")
    for mode, rows in base.items():
        if len(rows) > 1:
            (n0, c0, o0), (n1, c1, o1) = rows[0], rows[-1]
            nlogn = n1 * np.log(n1) / (n0 * np.log(n0))
            print(f"growth {n0}->{n1} ({mode}): calib x{c1 / c0:.1f}, Open3D x{o1 / o0:.1f}, "
                  f"N log N x{nlogn:.1f}")


def _sg_with_normals(src_pts, tgt_pts, init, max_d, fixed):
    sg_tgt = sg_cloud(tgt_pts)
    small_gicp.estimate_normals(sg_tgt, num_neighbors=20, num_threads=THREADS)
    return sg_align(sg_cloud(src_pts), sg_tgt, init, "PLANE_ICP", max_d=max_d, fixed=fixed)


#: Open3D's equivalent of ``calib register-clouds SRC TGT --voxel V -o T.txt --report R``:
#: read, voxel-downsample, normals, FPFH + RANSAC at calib's global voxel (target radius /
#: 25, the same RANSAC settings), point-to-plane ICP at 3 voxels, write the matrix and a
#: report. Run as its own process, like the CLI.
O3D_SCRIPT = """
import json, sys
import numpy as np
import open3d as o3d
src_path, tgt_path, voxel, out, report = sys.argv[1:6]
voxel = float(voxel)
reg = o3d.pipelines.registration
src = o3d.io.read_point_cloud(src_path).voxel_down_sample(voxel)
tgt = o3d.io.read_point_cloud(tgt_path).voxel_down_sample(voxel)
for p in (src, tgt):
    p.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
q = np.asarray(tgt.points)
gv = float(np.sqrt(np.max(np.sum((q - q.mean(0)) ** 2, axis=1)))) / 25
feats, down = [], []
for p in (src, tgt):
    d = p.voxel_down_sample(gv)
    d.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * gv, max_nn=30))
    feats.append(reg.compute_fpfh_feature(
        d, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * gv, max_nn=100)))
    down.append(d)
o3d.utility.random.seed(0)
g = reg.registration_ransac_based_on_feature_matching(
    down[0], down[1], feats[0], feats[1], True, 1.5 * gv,
    reg.TransformationEstimationPointToPoint(False), 3,
    [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
     reg.CorrespondenceCheckerBasedOnDistance(1.5 * gv)],
    reg.RANSACConvergenceCriteria(100000, 0.999))
r = reg.registration_icp(src, tgt, 3 * voxel, g.transformation,
                         reg.TransformationEstimationPointToPlane(),
                         reg.ICPConvergenceCriteria(max_iteration=30))
np.savetxt(out, r.transformation)
json.dump({"fitness": r.fitness, "inlier_rmse": r.inlier_rmse}, open(report, "w"))
"""


def cli(repeats: int) -> None:
    """Whole process, side by side: the README's ``calib register-clouds`` on the bundled
    bunny pair (no --init: FPFH + RANSAC first) against :data:`O3D_SCRIPT`."""
    import compileall
    import subprocess
    import tempfile

    for package in ("calib", "cli"):  # as pip does on install (see the module doc)
        compileall.compile_dir(str(ROOT / package), quiet=1)
    folder = ROOT / "datasets" / "bunny"
    _, _, G = pair(folder, "bun045.ply", "bun000.ply")
    args = [str(folder / "bun045.ply"), str(folder / "bun000.ply")]
    calib_exe = str(Path(sys.executable).with_name("calib"))
    print(f"## Whole process, bunny bun045 -> bun000 (voxel 1 mm, global init), median of "
          f"{repeats} alternating runs; load {os.getloadavg()[0]:.1f}")
    print("| tool | wall time (s) | CPU time (s) | rot err (deg) | trans err (mm) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "o3d_register.py"
        script.write_text(O3D_SCRIPT)
        cmds = {
            "calib register-clouds": [calib_exe, "register-clouds", *args, "--voxel", "0.001",
                                      "-o", f"{tmp}/c.txt", "--report", f"{tmp}/c.json",
                                      "--quiet"],
            "Open3D script": [sys.executable, str(script), *args, "0.001", f"{tmp}/o.txt",
                              f"{tmp}/o.json"],
        }
        times = {k: [] for k in cmds}
        cpu = {k: [] for k in cmds}
        for _ in range(repeats):
            for name, cmd in cmds.items():
                t0, c0 = time.perf_counter(), _children_cpu()
                subprocess.run(cmd, check=True, capture_output=True)
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(_children_cpu() - c0)
        med = {k: statistics.median(v) for k, v in times.items()}
        mcpu = {k: statistics.median(v) for k, v in cpu.items()}
        for name, out in (("calib register-clouds", "c.txt"), ("Open3D script", "o.txt")):
            r, t = pose_error(np.loadtxt(f"{tmp}/{out}"), G)
            print(f"| {name} | {med[name]:.3f} | {mcpu[name]:.3f} | {r:.3f} | {1e3 * t:.3f} |")
    c, o = "calib register-clouds", "Open3D script"
    print(f"ratio calib/Open3D: wall {med[c] / med[o]:.2f}, CPU {mcpu[c] / mcpu[o]:.2f}; "
          f"load after {os.getloadavg()[0]:.1f}")


def _children_cpu() -> float:
    """User + system CPU seconds of the finished child processes so far."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("part", choices=["accuracy", "basin", "speed", "cli", "all"])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-small-gicp", action="store_true",
                    help="leave the small_gicp column out (its 1M-point runs take minutes)")
    a = ap.parse_args()
    if a.no_small_gicp:
        global small_gicp
        small_gicp = None
    if a.part in ("accuracy", "all"):
        accuracy()
    if a.part in ("basin", "all"):
        basin(a.trials)
    if a.part in ("speed", "all"):
        speed(a.sizes, a.repeats)
    if a.part in ("cli", "all"):
        cli(a.repeats)


if __name__ == "__main__":
    main()
