"""CPU time of fit_intrinsics and fit_rig here against another git revision, in one process.

The library at ``--ref`` (default ``main``) is extracted with ``git archive`` into a temporary
folder as the package ``calib_ref`` (calib's own imports are relative, so both load side by
side); each case then runs the two alternately, call after call, so both see the same machine
load. Reports medians of ``time.process_time`` per call and their ratio. Cases: fit_intrinsics
on the 13 real views, the shared 100 synthetic views and 500 synthetic views (default options,
and with trust and advice off: the solve alone), fit_rig on the OpenCV stereo sample (from
scratch, intrinsics held) and on synthetic stereo pairs of 20 and 100 frames.

Usage: python bench/bench_ref_ab.py [--ref main] [--pairs 30]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # must happen before numpy is imported
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = "1"

import importlib  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from bench_intrinsics import synthetic_views  # noqa: E402
from common import ROOT, SHARED, table  # noqa: E402

from calib.intrinsics import fit_intrinsics  # noqa: E402
from calib.rig import RigOptions, fit_rig  # noqa: E402
from calib_datasets.rig_synth import make_rig  # noqa: E402


def load_ref(ref: str, folder: Path):
    """``calib`` at git revision ``ref`` imported as ``calib_ref``."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "calib"], check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    (folder / "calib").rename(folder / "calib_ref")
    sys.path.insert(0, str(folder))
    return (importlib.import_module("calib_ref.intrinsics").fit_intrinsics,
            importlib.import_module("calib_ref.rig"))


def ab(a, b, pairs: int) -> tuple[float, float]:
    """Median CPU seconds of ``a()`` and ``b()`` run alternately (one warm-up each)."""
    a(), b()
    ta, tb = [], []
    for _ in range(pairs):
        t = time.process_time()
        a()
        ta.append(time.process_time() - t)
        t = time.process_time()
        b()
        tb.append(time.process_time() - t)
    return statistics.median(ta), statistics.median(tb)


def cases(ref_fit, ref_rig):
    """``(name, ref call, this call, pair-count scale)``."""
    L = np.load(SHARED / "opencv_stereo_chessboard_left" / "corners_9x6.npz")
    R = np.load(SHARED / "opencv_stereo_chessboard_right" / "corners_9x6.npz")
    syn = dict(np.load(SHARED / "synthetic" / "calib_100x140.npz"))
    obj, size = L["object_points"].astype(float), tuple(int(v) for v in L["image_size"])
    ssize = tuple(int(v) for v in syn["image_size"])
    for n, o, i, s, k in ((13, obj, L["image_points"].astype(float), size, 1.0),
                          (100, syn["object_points"], syn["image_points"], ssize, 0.5),
                          (500, syn["object_points"], synthetic_views(500, syn, 1), ssize, 0.2)):
        for kw, what in (({}, ""), ({"trust": False, "advise": False}, ", trust/advise off")):
            yield (f"fit_intrinsics {n} views{what}", lambda o=o, i=i, s=s, kw=kw:
                   ref_fit(o, i, s, **kw), lambda o=o, i=i, s=s, kw=kw:
                   fit_intrinsics(o, i, s, **kw), k)
    cams = {"left": dict(enumerate(L["image_points"].astype(float))),
            "right": dict(enumerate(R["image_points"].astype(float)))}
    sizes = {n: size for n in cams}
    K = {n: fit_rig(cams, obj, sizes).camera(n).params for n in cams}
    yield ("fit_rig stereo sample 13 frames", lambda: ref_rig.fit_rig(cams, obj, sizes),
           lambda: fit_rig(cams, obj, sizes), 0.7)
    yield ("fit_rig stereo sample, intrinsics held",
           lambda: ref_rig.fit_rig(cams, obj, sizes, ref_rig.RigOptions(
               intrinsics=K, fix_intrinsics=True)),
           lambda: fit_rig(cams, obj, sizes, RigOptions(intrinsics=K, fix_intrinsics=True)), 0.7)
    for n in (20, 100):
        s = make_rig(2, 0, seed=3, yaw_deg=5, pair_frames=n)
        yield (f"fit_rig synthetic stereo {n} frames",
               lambda s=s: ref_rig.fit_rig(s.cameras, s.board, s.image_sizes),
               lambda s=s: fit_rig(s.cameras, s.board, s.image_sizes), 0.35)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", default="main", help="git revision to compare with")
    ap.add_argument("--pairs", type=int, default=30, help="alternating pairs (13 views)")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}; BLAS threads 1; "
          f"this tree against {args.ref}")
    with tempfile.TemporaryDirectory() as tmp:
        ref_fit, ref_rig = load_ref(args.ref, Path(tmp))
        rows = []
        for name, a, b, scale in cases(ref_fit, ref_rig):
            n = max(int(args.pairs * scale), 3)
            ta, tb = ab(a, b, n)
            rows.append([name, n, ta * 1e3, tb * 1e3, tb / ta])
    print(table(["case", "pairs", f"{args.ref} CPU ms", "this CPU ms", "this / ref"], rows))
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
