"""fit_intrinsics of this checkout against a reference checkout (e.g. main) and OpenCV's
calibrateCamera, interleaved in one process, with the CPU time of each piece of the fit.

On a machine shared with other jobs, runs of two versions in separate processes minutes
apart see different loads; here the three run in turn (rotating order) within one process
on bench_intrinsics.py's 100 (shared synthetic) and 500 views, so every version sees the
same load. The reference is imported from ``--ref DIR`` (a checkout holding ``calib/``, e.g.
``git archive main | tar -x -C /tmp/ref``) as the package ``calib_ref``. Default
environment (calib's own policy gives its solver one BLAS thread; OpenCV keeps its two).

Pieces (process CPU of the functions of ``calib.intrinsics.fit`` a fit calls): the start,
the solve (LM with its set-up and sigma), the board checks (distortion check, coverage),
the model advice (radial pattern), the trust figures and the verdict.

``--partial``: also each set with partial boards (every view keeps a seeded random 60-100% of
its corners, as detections of ChArUco or AprilGrid boards often do): views of different
lengths, the other paths of the start and the solve.

Usage: python bench/bench_intrinsics_ab.py --ref /tmp/ref [--rounds 15] [--views 100 500]
       [--partial]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from bench_intrinsics import synthetic_views
from common import SHARED

PIECES = {"_start": "start", "_best_refine": "solve", "board_checks": "board checks",
          "_advice": "advice", "_trust": "trust", "verdict": "verdict"}


def load_ref(root: Path):
    """The package ``calib`` under ``root`` imported as ``calib_ref``."""
    init = root / "calib" / "__init__.py"
    spec = importlib.util.spec_from_file_location("calib_ref", init,
                                                  submodule_search_locations=[str(init.parent)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calib_ref"] = mod
    spec.loader.exec_module(mod)
    return importlib.import_module("calib_ref.intrinsics.fit")


def timed_pieces(fit_module, acc: dict) -> None:
    """Wrap the fit module's pieces so each call adds its process CPU time to ``acc``."""
    for name in PIECES:
        f = getattr(fit_module, name, None)
        if f is None:
            continue

        def wrapped(*a, _f=f, _n=name, **k):
            t = time.process_time()
            try:
                return _f(*a, **k)
            finally:
                acc[_n] += time.process_time() - t

        setattr(fit_module, name, wrapped)


def partial(obj: np.ndarray, img: np.ndarray, seed: int = 0) -> tuple[list, list]:
    """Each view's corners kept with a random 60-100% chance (seeded): ``(obj, img)`` lists."""
    rng = np.random.default_rng(seed)
    keep = [rng.random(len(obj)) > rng.uniform(0.0, 0.4) for _ in img]
    return [obj[k] for k in keep], [v[k] for v, k in zip(img, keep, strict=True)]


def run(nv: int, img, obj, size, fits: dict, rounds: int, label: str = "") -> None:
    if isinstance(obj, np.ndarray):
        o32, i32 = [obj.astype(np.float32)] * nv, [v.astype(np.float32) for v in img]
    else:
        o32 = [o.astype(np.float32) for o in obj]
        i32 = [v.astype(np.float32) for v in img]
    fns = {"OpenCV": lambda: cv2.calibrateCamera(o32, i32, size, None, None)}
    accs = {name: acc for name, (_, acc) in fits.items()}
    for name, (mod, _) in fits.items():
        fns[name] = lambda mod=mod: mod.fit_intrinsics(obj, img, size)
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    pieces = {k: collections.defaultdict(list) for k in accs}
    order = list(fns)
    for r in range(rounds):
        for k in order[r % len(order):] + order[:r % len(order)]:
            if k in accs:
                accs[k].clear()
            w, c = time.perf_counter(), time.process_time()
            fns[k]()
            times[k].append((time.perf_counter() - w, time.process_time() - c))
            for p, v in accs.get(k, {}).items():
                pieces[k][p].append(v)
    med = {k: np.median(np.array(v), axis=0) * 1e3 for k, v in times.items()}
    low = {k: np.min(np.array(v), axis=0) * 1e3 for k, v in times.items()}
    print(f"\n{nv} views{label}, {rounds} rounds, load {os.getloadavg()[0]:.2f} (1 min)\n")
    print("| tool | wall ms median (min) | CPU ms median (min) | OpenCV / tool wall | "
          "OpenCV / tool CPU |\n| --- | --- | --- | --- | --- |")
    for k in fns:
        print(f"| {k} | {med[k][0]:.1f} ({low[k][0]:.1f}) | {med[k][1]:.1f} ({low[k][1]:.1f}) "
              f"| {med['OpenCV'][0] / med[k][0]:.2f}x | {med['OpenCV'][1] / med[k][1]:.2f}x |")
    names = list(accs)
    print("\n| piece, CPU ms median (min) | " + " | ".join(names) + " |\n|" + " --- |" *
          (len(names) + 1))
    for p, label in PIECES.items():
        cells = [f"{np.median(pieces[n][p]) * 1e3:.2f} ({np.min(pieces[n][p]) * 1e3:.2f})"
                 if pieces[n][p] else "" for n in names]
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ref", required=True, type=Path, help="checkout holding calib/")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--views", type=int, nargs="*", default=[100, 500])
    ap.add_argument("--partial", action="store_true", help="also partial boards")
    args = ap.parse_args()
    import calib.intrinsics.fit as this

    fits = {"reference": (load_ref(args.ref.resolve()), collections.defaultdict(float)),
            "this checkout": (this, collections.defaultdict(float))}
    for mod, acc in fits.values():
        timed_pieces(mod, acc)
    print(f"reference: {fits['reference'][0].__file__}\nthis checkout: {this.__file__}")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    size = tuple(int(v) for v in syn["image_size"])
    for nv in args.views:
        img = syn["image_points"] if nv == 100 else synthetic_views(nv, syn, 1)
        run(nv, img, syn["object_points"], size, fits, args.rounds)
        if args.partial:
            obj_p, img_p = partial(syn["object_points"], img)
            run(nv, img_p, obj_p, size, fits, args.rounds, " (partial boards)")


if __name__ == "__main__":
    main()
