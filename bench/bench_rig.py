"""Rig solve time and accuracy: calib.fit_rig vs OpenCV's stereoCalibrate on identical corners.

Speed (``--speed``, default): both start from scratch on the same corners (OpenCV:
``stereoCalibrate`` with flags=0, which initialises each camera itself; calib: ``fit_rig``
with no guess: closed-form per-camera starts, the covisibility start and the joint
refinement), and both with the intrinsics held fixed (CALIB_FIX_INTRINSIC,
same K, dist). Frames: the 13 real pairs of the OpenCV stereo sample, then 20, 100 and 500
synthetic stereo frames (``datasets/rig_synth.py``, every frame seen by both cameras).
Medians of ``--repeat`` interleaved runs (wall time, or CPU time with ``--cpu``);
``uptime`` is printed (the machine is shared). BLAS threads:
one (set before numpy loads, as in bench_intrinsics.py).

Accuracy (``--accuracy``): synthetic 2-, 3- and 4-camera arcs in which neighbours share only
``--pair-frames`` frames and cameras two apart none; RMS over seeds of the extrinsic rotation
(deg) and translation (mm) errors of calib, of calib with the true intrinsics held (the
floor), and of OpenCV (calibrateCamera per camera, then stereoCalibrate per neighbouring
pair, chained, with CALIB_USE_INTRINSIC_GUESS and with CALIB_FIX_INTRINSIC); err/σ is
calib's RMS error over its reported σ.

Rendered (``--rendered``): the stereo arc rendered (datasets/board_render.py,
``--supersample``), each tool detecting the corners itself (calib's detector; OpenCV's
findChessboardCorners + cornerSubPix 11x11 or 5x5), calib also run on OpenCV's corners.

pycalib (``--pycalib``): the 15-GoPro observations of ``pycalib_multicam_ba`` (2-D points
only, SOURCES.md): start from the published cameras (output.json, OpenCV rational model),
points triangulated linearly, then every camera's intrinsics and pose and every point
refined jointly with the rig residual family (each point a one-point "board" whose pose
keeps only its translation); once with one rational camera per GoPro, once with one shared
by all 15 (as pycalib fits them). Reference: published cameras held and points re-triangulated
give 0.98 px RMS (SOURCES.md).

Usage: python bench/bench_rig.py [--speed] [--accuracy] [--rendered] [--pycalib] [--repeat 5]
[--seeds 12] [--max-frames 500] [--cpu]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

if __name__ == "__main__":  # must happen before numpy is imported
    for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_v] = "1"

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from common import SHARED, table  # noqa: E402

from calib.lie import se3, so3  # noqa: E402
from calib.rig import RigOptions, fit_rig  # noqa: E402
from calib_datasets.rig_synth import make_rig  # noqa: E402

CRIT = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 30, 1e-6)  # OpenCV's default


def real_pairs():
    """``(board (54, 3), left (13, 54, 2), right (13, 54, 2), size)`` of the OpenCV sample."""
    d = SHARED / "opencv_stereo_chessboard_"
    L, R = np.load(f"{d}left/corners_9x6.npz"), np.load(f"{d}right/corners_9x6.npz")
    return (L["object_points"].astype(float), L["image_points"].astype(float),
            R["image_points"].astype(float), tuple(int(v) for v in L["image_size"]))


def synth_pairs(n: int, seed: int = 0):
    s = make_rig(2, 0, seed=seed, yaw_deg=5, pair_frames=n)
    f = sorted(s.cameras["cam0"])
    return (s.board, np.stack([s.cameras["cam0"][k] for k in f]),
            np.stack([s.cameras["cam1"][k] for k in f]), s.image_sizes["cam0"])


def _params(K, d):
    return np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], np.ravel(d)[:5]]


#: The clock of ``--speed``: wall time, or with ``--cpu`` this process's CPU time (steadier
#: on a shared machine; counts every thread, so OpenCV's threads are not hidden).
CLOCK = [time.perf_counter]


def _paired(f_cv, f_ours, repeat):
    """Medians ``(t_cv, t_ours)`` and last results of the two, runs interleaved (after one
    warm-up each) so that a change of the machine's load hits both alike."""
    out = [f_cv(), f_ours()]
    times: list[list[float]] = [[], []]
    for _ in range(repeat):
        for k, f in enumerate((f_cv, f_ours)):
            t = CLOCK[0]()
            out[k] = f()
            times[k].append(CLOCK[0]() - t)
    return float(np.median(times[0])), float(np.median(times[1])), out[0], out[1]


def speed_row(label, board, left, right, size, repeat):
    obj = [board.astype(np.float32)] * len(left)
    l32, r32 = list(left.astype(np.float32)), list(right.astype(np.float32))
    cams = {"L": dict(enumerate(left)), "R": dict(enumerate(right))}
    sizes = {"L": size, "R": size}
    t_cv, t_ours, out, res = _paired(lambda: cv2.stereoCalibrate(
        obj, l32, r32, None, None, None, None, size, flags=0, criteria=CRIT),
        lambda: fit_rig(cams, board, sizes), repeat)
    given = {"L": _params(out[1], out[2]), "R": _params(out[3], out[4])}
    t_cvf, t_fix, outf, resf = _paired(lambda: cv2.stereoCalibrate(
        obj, l32, r32, out[1], out[2], out[3], out[4], size, flags=cv2.CALIB_FIX_INTRINSIC,
        criteria=CRIT), lambda: fit_rig(cams, board, sizes, RigOptions(
            intrinsics=given, fix_intrinsics=True)), repeat)
    return [label, len(left), 1e3 * t_cv, 1e3 * t_ours, t_cv / t_ours, out[0], res.rms_px,
            1e3 * t_cvf, 1e3 * t_fix, t_cvf / t_fix, _sigma_diff(resf, outf)]


def _sigma_diff(res, out) -> float:
    """Largest |calib - OpenCV| of the extrinsic (rotation, translation) in calib's σ."""
    T = res.T_cam_ref[1]
    d = np.r_[so3.log(T[:3, :3] @ out[5].T), T[:3, 3] - out[6].ravel()]
    return float(np.max(np.abs(d) / np.sqrt(np.diag(res.extrinsic_covariance[1]))))


def speed(repeat: int, max_frames: int = 500) -> None:
    rows = [speed_row("OpenCV stereo sample", *real_pairs(), repeat)]
    for n in (n for n in (20, 100, 500) if n <= max_frames):
        rows.append(speed_row("synthetic", *synth_pairs(n), repeat if n < 500 else 1))
    print(table(["corners", "frames", "cv scratch ms", "calib scratch ms", "speed-up",
                 "cv RMS", "calib RMS", "cv fixed-K ms", "calib fixed-K ms", "speed-up",
                 "fixed-K diff / σ"], rows))


def _cv_pair(s, a, b, intr, flags=cv2.CALIB_USE_INTRINSIC_GUESS, corners=None):
    """OpenCV's ``T_b_a`` from the frames both see. ``stereoCalibrate`` writes the refined
    intrinsics into its K / dist arguments, so it gets copies: each pair starts from
    calibrateCamera's intrinsics, not from the previous pair's refinement."""
    corners = s.cameras if corners is None else corners
    shared = sorted(set(corners[a]) & set(corners[b]))
    out = cv2.stereoCalibrate([s.board.astype(np.float32)] * len(shared),
                              [corners[a][f].astype(np.float32) for f in shared],
                              [corners[b][f].astype(np.float32) for f in shared],
                              *(v.copy() for v in intr[a]), *(v.copy() for v in intr[b]),
                              s.image_sizes[a], flags=flags, criteria=CRIT)
    return se3.from_rt(out[5], out[6].ravel())


def _cv_intr(s, n, corners=None):
    corners = s.cameras if corners is None else corners
    f = sorted(corners[n])
    _, K, d, *_ = cv2.calibrateCamera([s.board.astype(np.float32)] * len(f),
                                      [corners[n][k].astype(np.float32) for k in f],
                                      s.image_sizes[n], None, None)
    return K, d.ravel()


def _err(T, truth):
    return (np.degrees(np.linalg.norm(so3.log(T[:3, :3] @ truth[:3, :3].T))),
            1e3 * np.linalg.norm(T[:3, 3] - truth[:3, 3]))


def _chain(s, intr, flags, corners=None):
    """OpenCV's ``T_cam_ref`` per camera, chaining neighbouring pairs."""
    names, T, out = list(s.image_sizes), np.eye(4), [np.eye(4)]
    for c in range(1, len(names)):
        T = _cv_pair(s, names[c - 1], names[c], intr, flags, corners) @ T
        out.append(T)
    return out


def _rms(errs) -> np.ndarray:
    return np.sqrt(np.mean(np.square(errs), axis=0))


def _z(T, truth, cov) -> np.ndarray:
    d = np.r_[so3.log(T[:3, :3] @ truth[:3, :3].T), T[:3, 3] - truth[:3, 3]]
    return d / np.sqrt(np.diag(cov))


def accuracy(seeds: int, pair_frames: int, solo: int) -> None:
    """Same corners for all. Rows per camera count: calib (joint, no guess), calib with the
    true intrinsics held (the extrinsic's floor with perfect intrinsics), OpenCV chained
    with CALIB_USE_INTRINSIC_GUESS (the issue's baseline) and with CALIB_FIX_INTRINSIC
    (calibrateCamera's intrinsics held, OpenCV's better choice when pairs share few
    frames); ``err / σ``: RMS error over the RMS of calib's reported σ (1 = at the
    estimator's Cramér-Rao floor)."""
    rows = []
    for nc in (2, 3, 4):
        errs = {k: [] for k in ("calib", "trueK", "guess", "fix")}
        z, inside = [], []
        for seed in range(seeds):
            s = make_rig(nc, solo * nc, seed=100 + seed, yaw_deg=30, pair_frames=pair_frames)
            r = fit_rig(s.cameras, s.board, s.image_sizes)
            rt = fit_rig(s.cameras, s.board, s.image_sizes,
                         RigOptions(intrinsics=s.params, fix_intrinsics=True))
            intr = {n: _cv_intr(s, n) for n in s.cameras}
            guess = _chain(s, intr, cv2.CALIB_USE_INTRINSIC_GUESS)
            fix = _chain(s, intr, cv2.CALIB_FIX_INTRINSIC)
            for c in range(1, nc):
                truth = s.T_cam_rig[c]
                for k, T in (("calib", r.T_cam_ref[c]), ("trueK", rt.T_cam_ref[c]),
                             ("guess", guess[c]), ("fix", fix[c])):
                    errs[k].append(_err(T, truth))
                zc = _z(r.T_cam_ref[c], truth, r.extrinsic_covariance[c])
                z.append(zc)
                inside.append(np.all(np.abs(zc) < 3))
        e = {k: _rms(v) for k, v in errs.items()}
        zr = _rms(z)
        rows.append([nc, seeds, *e["calib"], *e["trueK"], *e["guess"], *e["fix"],
                     *(e["calib"] / e["guess"]), *(e["calib"] / e["fix"]),
                     float(np.max(zr[:3])), float(np.max(zr[3:])), float(np.mean(inside))])
    print(f"synthetic corners (0.2 px noise), {pair_frames} shared frames per neighbouring "
          f"pair, {solo} more per camera; RMS over seeds")
    print(table(["cameras", "seeds", "calib rot deg", "calib trans mm", "true-K rot deg",
                 "true-K trans mm", "cv guess rot deg", "cv guess trans mm", "cv fix rot deg",
                 "cv fix trans mm", "ratio rot (guess)", "ratio trans (guess)",
                 "ratio rot (fix)", "ratio trans (fix)", "rot err/σ", "trans err/σ",
                 "within 3σ"], rows))


def _render_rig(s, rng, supersample: int):
    """Rendered images ``{camera: {frame: uint8 image}}`` of every view of ``s``."""
    from calib_datasets.board_render import render

    out = {}
    for k, n in enumerate(s.image_sizes):
        out[n] = {f: render(s.params[n], s.T_cam_rig[k] @ s.T_rig_board[f], 9, 6, 0.04,
                            s.image_sizes[n], supersample=supersample, noise=1.0, rng=rng)
                  for f in s.cameras[n]}
    return out


def _detect_all(images) -> dict:
    """Corners ``{detector: {camera: {frame: uv (54, 2)}}}``: calib's chessboard detector,
    and OpenCV's own (findChessboardCorners, then cornerSubPix with the 11x11 window of its
    calibration sample, or 5x5, which stays inside small squares)."""
    from calib.targets.chessboard import Chessboard

    board = Chessboard(9, 6, 0.04)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.001)
    out = {k: {n: {} for n in images} for k in ("calib", "cv 11x11", "cv 5x5")}
    for n, views in images.items():
        for f, img in views.items():
            got = board.detect(img)
            if not isinstance(got, str):
                out["calib"][n][f] = got[1][np.argsort(got[0])]
            ok, c = cv2.findChessboardCorners(img, (9, 6), None)
            for w in (11, 5):
                if ok:
                    out[f"cv {w}x{w}"][n][f] = cv2.cornerSubPix(
                        img, c.copy(), (w, w), (-1, -1), crit).reshape(-1, 2)
    return out


def _corner_rms(corners, s) -> float:
    d = [corners[n][f] - s.true_uv[n][f] for n in corners for f in corners[n]]
    return float(np.sqrt(np.mean(np.sum(np.square(np.concatenate(d)), axis=1))))


def rendered_errors(seeds: int, supersample: int, full: bool = True):
    """``({estimate: [(rot deg, trans mm)] per seed}, {detector: [corner RMS px]})`` on the
    rendered stereo arc (see :func:`rendered`); ``full=False``: only calib on its corners
    and OpenCV with the intrinsics guess. Also run by tests/test_rig.py."""
    errs: dict = {}
    crms: dict = {}
    rng = np.random.default_rng(7)
    flags = [(cv2.CALIB_USE_INTRINSIC_GUESS, "guess")]
    flags += [(cv2.CALIB_FIX_INTRINSIC, "fix")] if full else []
    for seed in range(seeds):
        s = make_rig(2, 16, seed=100 + seed, yaw_deg=30, pair_frames=2)
        det = _detect_all(_render_rig(s, rng, supersample))
        truth = s.T_cam_rig[1]
        for k, corners in det.items():
            crms.setdefault(k, []).append(_corner_rms(corners, s))
            if full or k == "calib":
                fit = fit_rig(corners, s.board, s.image_sizes).T_cam_ref[1]
                errs.setdefault(f"calib on {k} corners", []).append(_err(fit, truth))
            if k == "calib":
                continue
            intr = {n: _cv_intr(s, n, corners) for n in corners}
            for flag, name in flags:
                errs.setdefault(f"OpenCV {k} {name}", []).append(
                    _err(_chain(s, intr, flag, corners)[1], truth))
    return errs, crms


def rendered(seeds: int, supersample: int) -> None:
    """The stereo accuracy with rendered images (datasets/board_render.py; the stereo arc of
    ``--accuracy``): each tool detects the corners itself; calib's joint fit also runs on
    OpenCV's corners, to separate the detector from the solve. Ratios are to OpenCV's best
    row per column (its best window and flag for that column)."""
    errs, crms = rendered_errors(seeds, supersample)
    e = {k: _rms(v) for k, v in errs.items()}
    best = np.min([v for k, v in e.items() if k.startswith("OpenCV")], axis=0)
    print(f"rendered stereo ({seeds} seeds, supersample {supersample}, noise 1 grey level); "
          "corner RMS vs truth px: " + ", ".join(f"{k} {np.mean(v):.3f}"
                                                  for k, v in crms.items()))
    print(table(["estimate", "rot deg", "trans mm", "rot / OpenCV best",
                 "trans / OpenCV best"], [[k, *v, *(v / best)] for k, v in e.items()]))


def _pycalib_data(root=SHARED):
    import bz2
    import json

    d = root / "pycalib_multicam_ba"
    lines = bz2.open(d / "kp.txt.bz2", "rt").read().split("\n")
    nc, npt, nobs = (int(v) for v in lines[0].split())
    a = np.array([[float(v) for v in ln.split()] for ln in lines[1:1 + nobs]])
    out = json.loads((d / "output.json").read_text())
    params = np.stack([np.r_[K[0][0], K[1][1], K[0][2], K[1][2], dist]
                       for K, dist in zip(out["K"], out["d"], strict=True)])
    T_cw = np.tile(np.eye(4), (nc, 1, 1))
    T_cw[:, :3, :3] = np.array(out["R"])
    T_cw[:, :3, 3] = np.array(out["t"])[:, :, 0]
    return a[:, 0].astype(int), a[:, 1].astype(int), a[:, 2:4], params, \
        T_cw @ np.linalg.inv(T_cw[0]), npt


def _triangulate(model, cam, pt, uv, params, T, npt):
    """Least-squares intersection of each point's rays (rig frame = camera 0)."""
    rays = np.empty((len(uv), 3))
    for c in range(len(params)):
        rays[cam == c] = model.unproject(uv[cam == c], params[c])[0]
    R, t = T[cam, :3, :3], T[cam, :3, 3]
    d = np.einsum("nji,nj->ni", R, rays)
    C = -np.einsum("nji,nj->ni", R, t)
    P = np.eye(3)[None] - d[:, :, None] * d[:, None, :]
    A, b = np.zeros((npt, 3, 3)), np.zeros((npt, 3))
    np.add.at(A, pt, P)
    np.add.at(b, pt, np.einsum("nij,nj->ni", P, C))
    return np.linalg.solve(A, b[..., None])[..., 0]


def pycalib_fit(shared: bool, root=SHARED) -> tuple[int, float, float, int, float]:
    """The joint refinement of ``pycalib_multicam_ba`` (module docstring; ``shared``: one
    camera for all 15): ``(observations, start RMS px, joint RMS px, iterations,
    solve s)``. Also run by tests/test_rig_real.py."""
    from calib.camera import get_model
    from calib.residuals.rig_reprojection import RigReprojection
    from calib.solver import Euclidean, Problem, SE3Manifold, SolverOptions, solve

    model = get_model("rational")
    cam, pt, uv, params, T, npt = _pycalib_data(root)
    board = np.tile(np.eye(4), (npt, 1, 1))
    board[:, :3, 3] = _triangulate(model, cam, pt, uv, params, T, npt)
    fam = RigReprojection(model, np.zeros((len(uv), 3)), uv)
    p = Problem()
    p.add_parameter("intrinsics/rational", params[:1] if shared else params, Euclidean(12))
    p.add_parameter("T_cam_rig", T, SE3Manifold())
    p.add_parameter("T_rig_board", board, SE3Manifold(), eliminate=True)
    k = np.zeros_like(cam) if shared else cam
    p.add_residuals(fam, [("intrinsics/rational", k), ("T_cam_rig", cam), ("T_rig_board", pt)])
    p.set_constant("T_rig_board", coords=[3, 4, 5])  # a point has no orientation
    p.set_constant("T_cam_rig", blocks=[0])
    r0, _ = fam.evaluate([p.groups["intrinsics/rational"].value, T, board], [k, cam, pt],
                         jacobians=False)
    t0 = time.perf_counter()
    res = solve(p, SolverOptions(max_iterations=100, function_tolerance=1e-8))
    dt = time.perf_counter() - t0
    r, _ = fam.evaluate([res.values[g] for g in ("intrinsics/rational", "T_cam_rig",
                                                  "T_rig_board")], [k, cam, pt], jacobians=False)
    return (len(uv), float(np.sqrt(np.mean(np.sum(r0 * r0, 1)))),
            float(np.sqrt(np.mean(np.sum(r * r, 1)))), len(res.summary.iterations), dt)


def pycalib() -> None:
    rows = [[label, *pycalib_fit(shared)] for label, shared in
            (("one rational camera per GoPro", False), ("one shared camera", True))]
    print(table(["pycalib 15 GoPros", "observations", "start RMS px", "joint RMS px",
                 "iterations", "solve s"], rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--pycalib", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--pair-frames", type=int, default=2)
    ap.add_argument("--solo", type=int, default=8)
    ap.add_argument("--rendered", action="store_true")
    ap.add_argument("--max-frames", type=int, default=500)
    ap.add_argument("--cpu", action="store_true", help="time by process CPU time")
    ap.add_argument("--supersample", type=int, default=2)
    a = ap.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.cpu:
        CLOCK[0] = time.process_time
    if a.speed or not (a.accuracy or a.pycalib or a.rendered):
        speed(a.repeat, a.max_frames)
    if a.pycalib:
        pycalib()
    if a.accuracy:
        accuracy(a.seeds, a.pair_frames, a.solo)
    if a.rendered:
        rendered(a.seeds, a.supersample)


if __name__ == "__main__":
    sys.exit(main())
