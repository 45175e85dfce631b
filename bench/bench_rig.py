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

Rendered rigs (``--rendered --cameras 3 4`` and ``--rendered --model fisheye --cameras 3``):
the 3- and 4-camera pinhole arcs and a 3-camera fisheye arc (:data:`FISHEYE_165`) in which
cameras two apart never see the board together; each tool its own detector; OpenCV
calibrates each camera and chains (cv2.fisheye.)stereoCalibrate over neighbouring pairs;
its failures are counted and the rows compared on the seeds where both succeeded
(:func:`rendered_multi`); calib σ coverage (:func:`coverage`).

Usage: python bench/bench_rig.py [--speed] [--accuracy] [--rendered] [--pycalib] [--repeat 5]
[--seeds 12] [--max-frames 500] [--cpu] [--cameras 3 4] [--model fisheye] [--fisheye-yaw 70]
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
    """Rendered images ``{camera: {frame: uint8 image}}`` of every view of ``s`` (each
    camera through its own lens model)."""
    from calib_datasets.board_render import render

    out = {}
    for k, n in enumerate(s.image_sizes):
        out[n] = {f: render(s.params[n], s.T_cam_rig[k] @ s.T_rig_board[f], 9, 6, 0.04,
                            s.image_sizes[n], supersample=supersample, noise=1.0, rng=rng,
                            model=s.models[n])
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


#: The rendered fisheye lens: FISHEYE_CAMERA's distortion with a longer focal length, 165
#: deg across the 640 px width (115 deg across the height), so that a board wholly inside
#: the image stays within cv2.fisheye's reach (its InitExtrinsics undistorts the corners
#: onto the plane z = 1, which the 190 deg lens's outer views leave).
FISHEYE_165 = np.array([250.0, 250.4, 321.3, 238.4, -0.03, -0.02, 0.002, 0.001])


#: Yaw between neighbouring fisheye cameras (deg); ``--fisheye-yaw``.
FISHEYE_YAW = [70.0]


def rendered_rig(n_cameras: int, model: str, seed: int):
    """The rendered setups' rigs (``datasets/rig_synth.py``): cameras on an arc, each
    neighbouring pair sharing 2 frames, 8 more frames per camera; pinhole cameras 30 deg
    apart (63 deg lenses: cameras two apart never see the board together), fisheye
    (:data:`FISHEYE_165`) 70 deg apart (:data:`FISHEYE_YAW`)."""
    if model == "pinhole":
        return make_rig(n_cameras, 8 * n_cameras, seed=100 + seed, yaw_deg=30, pair_frames=2)
    return make_rig(n_cameras, 8 * n_cameras, seed=100 + seed, yaw_deg=FISHEYE_YAW[0],
                    pair_frames=2,
                    model=model, params=FISHEYE_165)


def _cv_fisheye_intr(s, n, corners):
    """``(K, D)`` of cv2.fisheye.calibrate (skew held at 0, extrinsics recomputed each
    iteration, as OpenCV's fisheye sample); raises cv2.error where it fails."""
    f = sorted(corners[n])
    flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
    _, K, D, *_ = cv2.fisheye.calibrate([s.board.reshape(-1, 1, 3)] * len(f),
                                        [corners[n][k].reshape(-1, 1, 2) for k in f],
                                        s.image_sizes[n], None, None, flags=flags,
                                        criteria=CRIT)
    return K, D.ravel()


def _cv_fisheye_pair(s, a, b, intr, fix: bool, corners):
    """cv2.fisheye.stereoCalibrate's ``T_b_a`` from the frames both cameras see (copies of
    the intrinsics, as :func:`_cv_pair`)."""
    shared = sorted(set(corners[a]) & set(corners[b]))
    flags = cv2.fisheye.CALIB_FIX_SKEW | (cv2.fisheye.CALIB_FIX_INTRINSIC if fix else
                                          cv2.fisheye.CALIB_USE_INTRINSIC_GUESS)
    out = cv2.fisheye.stereoCalibrate([s.board.reshape(-1, 1, 3)] * len(shared),
                                      [corners[a][f].reshape(-1, 1, 2) for f in shared],
                                      [corners[b][f].reshape(-1, 1, 2) for f in shared],
                                      *(v.copy() for v in intr[a]),
                                      *(v.copy() for v in intr[b]), s.image_sizes[a],
                                      flags=flags, criteria=CRIT)
    return se3.from_rt(out[5], np.ravel(out[6]))


#: Why OpenCV failed in :func:`_cv_rig`: ``{(stage, message): count}`` over a run.
CV_FAILURES: dict = {}


def _cv_failed(stage: str, err: Exception | None = None) -> None:
    why = " ".join(str(err).split()).split("error: ")[-1][:110] if err else "no shared frame"
    CV_FAILURES[(stage, why)] = CV_FAILURES.get((stage, why), 0) + 1


def _cv_rig(s, corners, model: str, fix: bool):
    """OpenCV's ``T_cam_ref`` per camera (None from the first failure on: a pair with no
    shared frame, or cv2.error): per-camera calibration, then the neighbouring pairs
    chained, the intrinsics guessed (``fix`` False) or held."""
    names = list(s.image_sizes)
    try:
        if model == "pinhole":
            intr = {n: _cv_intr(s, n, corners) for n in names}
        else:
            intr = {n: _cv_fisheye_intr(s, n, corners) for n in names}
    except cv2.error as e:
        _cv_failed("calibrate", e)
        return [np.eye(4)] + [None] * (len(names) - 1)
    out, T = [np.eye(4)], np.eye(4)
    for c in range(1, len(names)):
        a, b = names[c - 1], names[c]
        if T is not None and not set(corners[a]) & set(corners[b]):
            _cv_failed("stereoCalibrate")
            T = None
        if T is not None:
            try:
                if model == "pinhole":
                    flag = cv2.CALIB_FIX_INTRINSIC if fix else cv2.CALIB_USE_INTRINSIC_GUESS
                    T = _cv_pair(s, a, b, intr, flag, corners) @ T
                else:
                    T = _cv_fisheye_pair(s, a, b, intr, fix, corners) @ T
            except cv2.error as e:
                _cv_failed("stereoCalibrate", e)
                T = None
        out.append(T)
    return out


def _calib_rig(s, corners, true_intrinsics: bool = False):
    """calib's fit on ``corners`` (every camera with the rig's lens model; with
    ``true_intrinsics`` those held at the truth), or None."""
    from calib.errors import CalibError

    held = {"intrinsics": s.params, "fix_intrinsics": True} if true_intrinsics else {}
    try:
        return fit_rig(corners, s.board, s.image_sizes, RigOptions(models=s.models, **held))
    except CalibError as e:
        _cv_failed("calib fit_rig", e)
        return None


def rendered_seed(n_cameras: int, model: str, seed: int, rng, supersample: int,
                  full: bool = True) -> dict:
    """One rendered rig: ``{"T": {estimate: [T_cam_ref or None per camera 1..C-1]},
    "z": (C-1, 6) calib's errors over its σ (NaN where it failed), "truth": (C-1, 4, 4),
    "corner_rms": {detector: px}, "covisible_far": frames cameras two apart share,
    "covisible_near": mean frames neighbours share (calib's detections)}``. Estimates:
    calib on its own corners, calib on OpenCV's (``full``), OpenCV with each window,
    intrinsics guessed, and (``full``) held; (``full``) calib on its corners with the true
    intrinsics held (the extrinsic's floor with perfect intrinsics)."""
    s = rendered_rig(n_cameras, model, seed)
    det = _detect_all(_render_rig(s, rng, supersample))
    truth = s.T_cam_rig[1:]
    est: dict = {}
    z = np.full((n_cameras - 1, 6), np.nan)
    for k, corners in det.items():
        if full or k == "calib":
            r = _calib_rig(s, corners)
            est[f"calib on {k} corners"] = [None if r is None else r.T_cam_ref[c]
                                            for c in range(1, n_cameras)]
            if k == "calib" and r is not None:
                z = np.stack([_z(r.T_cam_ref[c], truth[c - 1], r.extrinsic_covariance[c])
                              for c in range(1, n_cameras)])
        if k == "calib":
            if full:  # the floor: calib's corners, the true intrinsics held
                r = _calib_rig(s, corners, true_intrinsics=True)
                est["calib, true intrinsics held"] = [None if r is None else r.T_cam_ref[c]
                                                      for c in range(1, n_cameras)]
            continue
        for fix, name in ((False, "guess"), (True, "fix"))[:2 if full else 1]:
            est[f"OpenCV {k} {name}"] = _cv_rig(s, corners, model, fix)[1:]
    cal = list(det["calib"].values())
    far = sum(len(set(cal[a]) & set(cal[b])) for a in range(n_cameras)
              for b in range(a + 2, n_cameras))
    near = np.mean([len(set(cal[a]) & set(cal[a + 1])) for a in range(n_cameras - 1)])
    return {"T": est, "z": z, "truth": truth, "covisible_far": far, "covisible_near": near,
            "corner_rms": {k: _corner_rms(c, s) for k, c in det.items()}}


def rendered_study(seeds, n_cameras: int = 2, model: str = "pinhole", supersample: int = 2,
                   full: bool = True) -> dict:
    """:func:`rendered_seed` over ``seeds`` (a list of seed numbers; one image-noise
    generator for the whole run, seeded 7): ``{"err": {estimate: (S, C-1, 2) rotation
    deg, translation mm, NaN where it failed}, "z": (S, C-1, 6), "corner_rms":
    {detector: (S,)}, "covisible_far": (S,), "covisible_near": (S,)}``."""
    rng = np.random.default_rng(7)
    runs = [rendered_seed(n_cameras, model, int(sd), rng, supersample, full) for sd in seeds]
    nan = (np.nan, np.nan)
    err = {k: np.array([[nan if T is None else _err(T, t)
                         for T, t in zip(r["T"][k], r["truth"], strict=True)] for r in runs])
           for k in runs[0]["T"]}
    return {"err": err, "z": np.stack([r["z"] for r in runs]),
            "corner_rms": {k: np.array([r["corner_rms"][k] for r in runs])
                           for k in runs[0]["corner_rms"]},
            "covisible_far": np.array([r["covisible_far"] for r in runs]),
            "covisible_near": np.array([r["covisible_near"] for r in runs])}


def rendered_errors(seeds: int, supersample: int, full: bool = True):
    """``({estimate: [(rot deg, trans mm)] per seed}, {detector: [corner RMS px]})`` on the
    rendered stereo arc (see :func:`rendered`); ``full=False``: only calib on its corners
    and OpenCV with the intrinsics guess. Also run by tests/test_rig.py."""
    st = rendered_study(range(seeds), 2, "pinhole", supersample, full)
    return ({k: list(v[:, 0]) for k, v in st["err"].items()},
            {k: list(v) for k, v in st["corner_rms"].items()})


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


def _study_rows(st) -> list:
    """Table rows of :func:`rendered_multi`: per estimate, its failed seeds, then its RMS
    errors and calib's over the seeds where both succeeded, and the ratios calib / it."""
    ours = st["err"]["calib on calib corners"]
    rows = []
    for k, v in st["err"].items():
        ok = ~np.isnan(v).any(axis=(1, 2)) & ~np.isnan(ours).any(axis=(1, 2))
        e, o = _rms(v[ok].reshape(-1, 2)), _rms(ours[ok].reshape(-1, 2))
        rows.append([k, int(np.isnan(v).any(axis=(1, 2)).sum()), int(ok.sum()), *e, *o,
                     *(o / e)])
    return rows


def coverage(z: np.ndarray) -> tuple[float, float, float, float]:
    """``(fraction of extrinsics with every coordinate within 3σ, fraction of coordinates
    within 3σ, RMS z rotation, RMS z translation)`` over the finite rows of ``z (S, C-1,
    6)``."""
    z = z.reshape(-1, 6)
    z = z[np.isfinite(z).all(axis=1)]
    return (float(np.mean(np.all(np.abs(z) < 3, axis=1))), float(np.mean(np.abs(z) < 3)),
            float(np.sqrt(np.mean(z[:, :3] ** 2))), float(np.sqrt(np.mean(z[:, 3:] ** 2))))


def rendered_multi(seeds: int, supersample: int, cameras: list[int], model: str) -> None:
    """Rendered 3-4 camera arcs (pinhole) or the fisheye arc: each tool its own detector,
    OpenCV chained over neighbouring pairs (cameras two apart share no frame); errors
    pooled over cameras 1..C-1; each row over the seeds where both it and calib (on its
    own corners) succeeded, the ratio columns calib's RMS error over that row's there."""
    for nc in cameras:
        st = rendered_study(range(seeds), nc, model, supersample)
        cov = coverage(st["z"])
        apart = 30 if model == "pinhole" else FISHEYE_YAW[0]
        print(f"\nrendered {model} {nc}-camera arc, {apart:g} deg apart ({seeds} seeds, "
              f"supersample {supersample}); frames shared by neighbours (mean) "
              f"{np.mean(st['covisible_near']):.1f}, by cameras two apart (total) "
              f"{int(st['covisible_far'].sum())}; corner RMS "
              "vs truth px: " + ", ".join(f"{k} {np.mean(v):.3f}"
                                          for k, v in st["corner_rms"].items()))
        print(table(["estimate", "failed seeds", "seeds compared", "rot deg", "trans mm",
                     "calib rot deg", "calib trans mm", "calib / this rot",
                     "calib / this trans"], _study_rows(st)))
        print(f"calib within 3σ: {cov[0]:.3f} of extrinsics (all 6 coordinates), "
              f"{cov[1]:.3f} of coordinates; RMS err/σ rot {cov[2]:.2f}, trans {cov[3]:.2f}")
        print("failures (stage, message: count over every estimate and seed): "
              + ("; ".join(f"{a}, {m}: {n}" for (a, m), n in CV_FAILURES.items()) or "none"))
        CV_FAILURES.clear()


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
    ap.add_argument("--cameras", type=int, nargs="+", default=[2],
                    help="with --rendered: camera counts (3 4: the multi-camera arcs)")
    ap.add_argument("--model", default="pinhole", choices=("pinhole", "fisheye"),
                    help="with --rendered: lens of every camera")
    ap.add_argument("--fisheye-yaw", type=float, default=FISHEYE_YAW[0],
                    help="with --rendered --model fisheye: degrees between neighbours")
    a = ap.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    if a.cpu:
        CLOCK[0] = time.process_time
    FISHEYE_YAW[0] = a.fisheye_yaw
    if a.speed or not (a.accuracy or a.pycalib or a.rendered):
        speed(a.repeat, a.max_frames)
    if a.pycalib:
        pycalib()
    if a.accuracy:
        accuracy(a.seeds, a.pair_frames, a.solo)
    if a.rendered and a.cameras == [2] and a.model == "pinhole":
        rendered(a.seeds, a.supersample)
    elif a.rendered:
        rendered_multi(a.seeds, a.supersample, a.cameras, a.model)


if __name__ == "__main__":
    sys.exit(main())
