"""Calibration targets: speed and accuracy against OpenCV's own detectors, real data.

Sections (``--only speed|render|real``, default all):

- speed: per-image detection time, calib's ``Target.detect`` against the OpenCV call it
  builds on, on the real images of each target type, interleaved in one process with
  one OpenCV thread (as in the detection workers); median of per-image ratios;
- render: corner error against rendered truth (calib_datasets.board_render: partial views,
  blur, noise): ChArUco vs CharucoDetector; AprilGrid vs OpenCV's ArUco detector with the
  AprilTag 36h11 dictionary and markerBorderBits = 2 under each of its corner
  refinements; circle grids: centre bias of the detected blobs against the projected
  circle centres, by board tilt;
- real: ../shared/datasets pycalib_charuco, yac_aprilgrid (D435i set, EuRoC frames with
  the official calibration), industrial_handeye_circles: corners per image against
  OpenCV's detector and calibration against the stored references.

Usage: python bench/bench_targets.py [--only speed] [--repeat 5]

Measured 2026-12-04 (OpenCV 5.1.0, 2 cores, 1-min load 8-9 from other jobs):

speed (median ratio calib / OpenCV per image): checkerboard 1.03-1.20 (the grid checks,
0.5-3 ms), ChArUco 1.03-1.05, AprilGrid 1.18 (X-corner refinement, with OpenCV's detector
set to 3 px per bit, which is also faster; 1.32 with OpenCV's default 4), circle grid
0.95-1.10.

rendered (18 views, partial, blur 0-1.5 px, noise 2-3): ChArUco = CharucoDetector (median
0.060 px, 759 corners); AprilGrid median 0.05 px / p95 0.11 / max 2.2 (1585 corners)
against OpenCV 1.88 / 3.5 / 5.7 (NONE), 1.75 (SUBPIX), 1.29 (CONTOUR), 0.66 px (APRILTAG,
556 corners only). Circle centres: median 0.03-0.08 px, p95 <= 0.13 px at tilts 0.2-0.8
rad (radius 0.3 spacing): the perspective bias of ellipse centres is below the noise and
is not corrected.

real: pycalib_charuco 1220 corners (= CharucoDetector), f 587.3/586.9, c (640.2, 355.4)
with the 5-coefficient model, reference (8-coefficient rational) 586.8-589.0, (641.0-641.4,
355.7-356.2); yac D435i: 29/30 images, 591 tags (OpenCV default: 548), calibration RMS 0.25
px (OpenCV's corners: 1.26 px); EuRoC with the official calibration, PnP RMS 0.16-0.18 px
against 2.7-2.8 px with OpenCV's corners (no refinement or SUBPIX); circles 15/15,
fx..cy equal to cv2.calibrateCamera's (542.40, 543.54, 320.45, 226.11; RMS 0.186 px).
pupil-apriltags is not in the package index reachable here, so it was not compared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np
import yaml
from common import ROOT, SHARED, table

from calib.intrinsics import fit_intrinsics
from calib.targets import Chessboard
from calib.targets.aprilgrid import CV2_TO_KALIBR, AprilGrid
from calib.targets.charuco import Charuco
from calib.targets.circlegrid import CircleGrid

GOPRO = Charuco(18, 9, 0.02, 0.015, "DICT_4X4_250")
D435 = AprilGrid(6, 6, 0.088, 0.3)
CIRCLES = CircleGrid(10, 10, 0.0254)
CHESS = Chessboard(9, 6, 0.025)


def _gray(paths):
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]


def _cv_april(refine: int = 0):
    p = cv2.aruco.DetectorParameters()
    p.markerBorderBits = 2
    p.cornerRefinementMethod = refine
    return cv2.aruco.ArucoDetector(
        cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_APRILTAG_36h11), p)


def _cv_april_points(grid: AprilGrid, det, img):
    corners, ids, _ = det.detectMarkers(img)
    if ids is None:
        return np.zeros(0, int), np.zeros((0, 2))
    uv = np.asarray(corners, float).reshape(-1, 4, 2)
    out = np.empty_like(uv)
    out[:, CV2_TO_KALIBR] = uv
    return grid.point_ids(ids.ravel()).ravel(), out.reshape(-1, 2)


def _cv_chess(img):
    ok, c = cv2.findChessboardCorners(img, (9, 6), flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                      | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK)
    if ok:
        cv2.cornerSubPix(img, c, (11, 11), (-1, -1), (3, 30, 1e-3))
    return c


def _cases():
    charuco = cv2.aruco.CharucoDetector(GOPRO.board())
    april = _cv_april()
    ds = SHARED
    return [
        ("checkerboard", CHESS, sorted((ROOT / "datasets" / "chessboard_left").glob("*.jpg")),
         _cv_chess, "findChessboardCorners + cornerSubPix 11x11"),
        ("charuco", GOPRO, sorted((ds / "pycalib_charuco").glob("*.jpg")),
         charuco.detectBoard, "CharucoDetector.detectBoard"),
        ("aprilgrid", D435, sorted((ds / "yac_aprilgrid" / "cam0" / "data").glob("*.jpg")),
         april.detectMarkers, "ArucoDetector.detectMarkers (36h11, border 2)"),
        ("circlegrid", CIRCLES, sorted((ds / "industrial_handeye_circles" / "images"
                                        ).glob("*.png")),
         lambda g: cv2.findCirclesGrid(g, (10, 10), flags=cv2.CALIB_CB_SYMMETRIC_GRID),
         "findCirclesGrid (symmetric)"),
    ]


def speed(repeat: int) -> None:
    cv2.setNumThreads(1)
    rows = []
    for name, target, paths, ref, ref_name in _cases():
        imgs = _gray(paths)
        ours_t, ref_t, ratios = [], [], []
        for img in imgs:
            target.detect(img)
            ref(img)  # warm-up
            a, b = [], []
            for _ in range(repeat):  # interleaved: the machine's load hits both alike
                t0 = time.perf_counter()
                target.detect(img)
                t1 = time.perf_counter()
                ref(img)
                t2 = time.perf_counter()
                a.append(t1 - t0)
                b.append(t2 - t1)
            ours_t.append(statistics.median(a))
            ref_t.append(statistics.median(b))
            ratios.append(ours_t[-1] / ref_t[-1])
        rows.append([name, len(imgs), 1e3 * statistics.median(ours_t),
                     1e3 * statistics.median(ref_t), statistics.median(ratios), ref_name])
    print(table(["target", "images", "calib ms", "OpenCV ms", "median ratio", "OpenCV call"],
                rows))
    print(f"load: {os.getloadavg()[0]:.1f} (1-min average, {os.cpu_count()} cores)")


def _render_errors(detect, rs):
    errs = []
    for k, img in enumerate(rs.images):
        found = detect(img)
        if isinstance(found, str) or found is None:
            continue
        ids, uv = found
        keep = np.isin(ids, rs.ids[k])
        errs += np.linalg.norm(uv[keep] - rs.uv_all[k][ids[keep]], axis=1).tolist()
    return np.array(errs)


def render() -> None:
    from calib_datasets.board_render import render_target_set

    ch = Charuco(10, 8, 0.025, 0.018, "DICT_5X5_100")
    ag = AprilGrid(6, 6, 0.03, 0.3)
    conds = [(1, 1.0, 0.0, 2.0), (2, 0.6, 0.8, 3.0), (3, 0.8, 1.5, 2.0)]
    rows = []
    for target, methods in [
        (ch, {"calib Charuco.detect": ch.detect,
              "OpenCV CharucoDetector": lambda g: _cv_charuco(ch, g)}),
        (ag, {"calib AprilGrid.detect (edge lines + X-corner)": ag.detect,
              **{f"OpenCV refine={n}": (lambda g, m=m: _cv_april_points(ag, _cv_april(m), g))
                 for n, m in [("NONE", 0), ("SUBPIX", 1), ("CONTOUR", 2), ("APRILTAG", 3)]}}),
    ]:
        sets = [render_target_set(target, n_views=6, seed=s, min_inside=mi, blur=b,
                                  noise=n, tilt=0.5) for s, mi, b, n in conds]
        for name, fn in methods.items():
            e = np.concatenate([_render_errors(fn, rs) for rs in sets])
            rows.append([target.name, name, len(e), float(np.median(e)),
                         float(np.percentile(e, 95)), float(e.max())])
    print(table(["target", "detector", "corners", "median px", "p95 px", "max px"], rows))
    circle_bias()


def _cv_charuco(target, img):
    c, i, _, _ = cv2.aruco.CharucoDetector(target.board()).detectBoard(img)
    return None if i is None else (i.ravel(), c.reshape(-1, 2))


def circle_bias() -> None:
    """Detected blob centre minus projected circle centre, by tilt (radius 0.3 spacing)."""
    from calib_datasets.board_render import render_target_set

    rows = []
    for grid in (CircleGrid(7, 6, 0.03), CircleGrid(4, 11, 0.02, asymmetric=True)):
        for tilt in (0.2, 0.5, 0.8):
            rs = render_target_set(grid, n_views=6, seed=11, tilt=tilt, noise=1.0)
            e = _render_errors(grid.detect, rs)
            rows.append([grid.describe(), tilt, len(e), float(np.median(e)),
                         float(np.percentile(e, 95))])
    print(table(["grid", "tilt std rad", "centres", "median bias px", "p95 px"], rows))


def real() -> None:
    real_charuco()
    real_aprilgrid()
    real_circles()


def _fit(target, found, size):
    pts = target.points()
    keep = [(i, u) for i, u in found if len(i) >= 6]
    return fit_intrinsics([pts[i] for i, _ in keep], [u for _, u in keep], size)


def real_charuco() -> None:
    paths = sorted((SHARED / "pycalib_charuco").glob("*.jpg"))
    imgs = _gray(paths)
    ours = [GOPRO.detect(g) for g in imgs]
    det = cv2.aruco.CharucoDetector(GOPRO.board())
    ref = [det.detectBoard(g)[1] for g in imgs]
    n_ours = [len(o[0]) for o in ours]
    n_ref = [0 if r is None else len(r) for r in ref]
    r = _fit(GOPRO, ours, (1280, 720))
    fx, fy, cx, cy = r.camera.params[:4]
    print(f"pycalib_charuco: corners/image calib {n_ours} (sum {sum(n_ours)}), OpenCV "
          f"{n_ref} (sum {sum(n_ref)})")
    print(table(["", "fx", "fy", "cx", "cy", "RMS px"], [
        ["calib (pinhole + k1..k3, p1, p2)", fx, fy, cx, cy, r.rms_px],
        ["reference (rational 8, free aspect)", 589.013, 588.491, 641.414, 355.657, 0.2962],
        ["reference (rational 8, fixed aspect)", 586.829, 586.829, 641.018, 356.170, 0.3011]]))


def _euroc_pnp(grid, img, K, D, det=None):
    ids, uv = grid.detect(img) if det is None else _cv_april_points(grid, det, img)
    pts = grid.points()[ids]
    ok, rvec, tvec = cv2.solvePnP(pts, uv, K, D, flags=cv2.SOLVEPNP_ITERATIVE)
    res = cv2.projectPoints(pts, rvec, tvec, K, D)[0].reshape(-1, 2) - uv
    return len(ids), float(np.sqrt(np.mean(np.sum(res**2, axis=1))))


def real_aprilgrid() -> None:
    root = SHARED / "yac_aprilgrid"
    imgs = _gray(sorted((root / "cam0" / "data").glob("*.jpg")))
    det = _cv_april()
    ours = [D435.detect(g) for g in imgs]
    ours = [o for o in ours if not isinstance(o, str)]
    ref = [_cv_april_points(D435, det, g) for g in imgs]
    print(f"yac_aprilgrid D435i: images with tags calib {len(ours)}/30, OpenCV "
          f"{sum(len(i) > 0 for i, _ in ref)}/30; corners calib "
          f"{sum(len(i) for i, _ in ours)}, OpenCV {sum(len(i) for i, _ in ref)}; median "
          f"tags/image {np.median([len(i) // 4 for i, _ in ours]):.0f}")
    rows = []
    for name, found in [("calib", ours), ("OpenCV (no refinement)", ref)]:
        r = _fit(D435, found, (640, 480))
        rows.append([name, *r.camera.params[:4], r.rms_px])
    print(table(["D435i corners", "fx", "fy", "cx", "cy", "RMS px"], rows))
    cfg = yaml.safe_load((root / "euroc" / "imu_april" / "config.yaml").read_text())
    rows = []
    for cam, file in [("cam0", "stereo/cam0_1403709395937837056.png"),
                      ("cam1", "stereo/cam1_1403709395937837056.png"),
                      ("cam0", "aprilgrid/aprilgrid.png")]:
        c = cfg[cam]
        fx, fy, cx, cy = c["proj_params"]
        K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
        D = np.array(c["dist_params"], float)
        img = cv2.imread(str(root / "euroc" / file), cv2.IMREAD_GRAYSCALE)
        rows.append([file, *_euroc_pnp(D435, img, K, D),
                     *_euroc_pnp(D435, img, K, D, _cv_april()),
                     *_euroc_pnp(D435, img, K, D, _cv_april(1))])
    print(table(["EuRoC image (official K, D; PnP)", "calib corners", "calib RMS px",
                 "OpenCV corners", "OpenCV RMS px", "OpenCV SUBPIX corners",
                 "OpenCV SUBPIX RMS px"], rows))


def real_circles() -> None:
    imgs = _gray(sorted((SHARED / "industrial_handeye_circles" / "images").glob("*.png")))
    ours = [CIRCLES.detect(g) for g in imgs]
    ref = [cv2.findCirclesGrid(g, (10, 10), flags=cv2.CALIB_CB_SYMMETRIC_GRID) for g in imgs]
    r = _fit(CIRCLES, [o for o in ours if not isinstance(o, str)], (640, 480))
    print(f"industrial_handeye_circles: grids found calib "
          f"{sum(not isinstance(o, str) for o in ours)}/15, OpenCV "
          f"{sum(bool(ok) for ok, _ in ref)}/15 (100 centres each)")
    print(table(["", "fx", "fy", "cx", "cy", "RMS px"], [
        ["calib", *r.camera.params[:4], r.rms_px],
        ["cv2.calibrateCamera (SOURCES.md)", 542.40, 543.54, 320.45, 226.11, 0.186]]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["speed", "render", "real"])
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    if a.only in (None, "speed"):
        speed(a.repeat)
    if a.only in (None, "render"):
        render()
    if a.only in (None, "real"):
        real()


if __name__ == "__main__":
    main()
