"""Seeded synthetic camera-LiDAR frames with ground truth: a spinning multi-beam LiDAR's
scan rings of a room (floor, four walls) with a calibration board on a post, and the
matching camera images of the board (rendered by :mod:`board_render`).

LiDAR frame: x forward, y left, z up, sensor 1.2 m above the floor. Each frame places the
board 2-4 m ahead, turned and tilted, fully inside the camera image. Rays are cast from
``beams`` elevations (32: -25..+15 deg; 64: -24.9..+2 deg) and an azimuth step over 360 deg;
each return is the nearest hit with Gaussian range noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.camera.pinhole import project
from calib.lie import se3, so3

from .board_render import render

#: A camera for 1280x960 with mild distortion.
CAMERA = np.array([1120.0, 1122.0, 644.0, 477.0, -0.12, 0.05, 0.0004, -0.0003, 0.0])
#: True T_camera_lidar: camera z = LiDAR x, camera x = -LiDAR y, camera y = -LiDAR z,
#: turned slightly, 10-25 cm away.
T_CAMERA_LIDAR = se3.compose(
    se3.from_rt(so3.exp(np.array([0.012, -0.021, 0.017])), np.array([0.11, -0.23, -0.06])),
    se3.from_rt(np.array([[0, -1, 0], [0, 0, -1], [1, 0, 0.0]]), np.zeros(3)))
FLOOR_Z = -1.2
ROOM = (-6.0, 9.0, -5.0, 6.0)  # x min, x max, y min, y max of the walls


@dataclass(frozen=True)
class LidarFrames:
    clouds: list[np.ndarray]  # (N_f, 3) LiDAR frame
    corners: np.ndarray  # (F, P, 2) noisy pixels
    T_camera_board: np.ndarray  # (F, 4, 4) true
    T_camera_lidar: np.ndarray  # (4, 4) true
    object_points: np.ndarray  # (P, 3)
    board_extent: tuple[float, float, float, float]  # x0, x1, y0, y1 of the board (m)
    params: np.ndarray
    image_size: tuple[int, int]
    cols: int
    rows: int
    square: float
    margin: float  # board border beyond the outer squares, in squares


def _rect_hits(o, d, centre, u, v, half_u, half_v):
    """Ray parameter of each ray ``d (N, 3)`` from ``o`` hitting the rectangle (inf if not)."""
    n = np.cross(u, v)
    den = d @ n
    lam = ((centre - o) @ n) / np.where(np.abs(den) > 1e-12, den, np.nan)
    p = o + d * lam[:, None] - centre
    inside = (np.abs(p @ u) <= half_u) & (np.abs(p @ v) <= half_v) & (lam > 0)
    return np.where(inside, lam, np.inf)


def _scan(board_T: np.ndarray, extent, beams: int, az_step_deg: float, noise: float,
          rng: np.random.Generator) -> np.ndarray:
    """One revolution's returns ``(N, 3)`` (LiDAR frame)."""
    el = _elevations(beams)
    az = np.radians(np.arange(0, 360, az_step_deg)) + rng.uniform(0, np.radians(az_step_deg))
    E, A = np.meshgrid(el, az)
    d = np.stack([np.cos(E) * np.cos(A), np.cos(E) * np.sin(A), np.sin(E)], -1).reshape(-1, 3)
    o = np.zeros(3)
    hits = [np.where(d[:, 2] < -1e-9, FLOOR_Z / np.minimum(d[:, 2], -1e-9), np.inf)]
    x0, x1, y0, y1 = ROOM
    for axis, pos in ((0, x0), (0, x1), (1, y0), (1, y1)):
        lam = pos / np.where(np.abs(d[:, axis]) > 1e-12, d[:, axis], np.nan)
        hits.append(np.where(lam > 0, lam, np.inf))
    R, t = board_T[:3, :3], board_T[:3, 3]
    bx0, bx1, by0, by1 = extent
    centre = t + R @ np.array([(bx0 + bx1) / 2, (by0 + by1) / 2, 0.0])
    hits.append(_rect_hits(o, d, centre, R[:, 0], R[:, 1], (bx1 - bx0) / 2, (by1 - by0) / 2))
    # the stand: a 6 cm post from the board's lower edge to the floor, 8 cm behind the board
    bottom = t + R @ np.array([(bx0 + bx1) / 2, by1, 0.0]) + 0.08 * R[:, 2]
    post_c = np.array([bottom[0], bottom[1], (bottom[2] + FLOOR_Z) / 2])
    side = np.cross([0, 0, 1.0], post_c / np.linalg.norm(post_c))
    side /= np.linalg.norm(side)
    hits.append(_rect_hits(o, d, post_c, side, np.array([0, 0, 1.0]), 0.03,
                           max((bottom[2] - FLOOR_Z) / 2, 0.01)))
    lam = np.min(np.stack(hits), axis=0)
    ok = np.isfinite(lam) & (lam < 60)
    r = lam[ok] + rng.normal(0, noise, ok.sum())
    return d[ok] * r[:, None]


def _elevations(beams: int) -> np.ndarray:
    return np.radians(np.linspace(-25, 15, 32) if beams == 32 else np.linspace(-24.9, 2, 64))


def _board_pose(rng, T_cl, params, image_size, extent_pts, beams) -> np.ndarray:
    """A board pose in the LiDAR frame whose corners (and border) are inside the image
    and inside the LiDAR's vertical field of view."""
    el = _elevations(beams)
    base = np.array([[0, 0, 1.0], [-1, 0, 0], [0, -1, 0]])  # board x=-y_l, y=-z_l, z=x_l
    w, h = image_size
    for _ in range(5000):
        rot = so3.exp(np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.6, 0.6),
                                rng.uniform(-0.8, 0.8)])) @ base  # roll, pitch, yaw (LiDAR)
        dist = rng.uniform(2.0, 4.0)
        centre = np.array([dist, rng.uniform(-0.3, 0.3) * dist, rng.uniform(-0.25, 0.2) * dist])
        t = centre - rot @ extent_pts.mean(axis=0)
        T = se3.from_rt(rot, t)
        pc = se3.act(se3.compose(T_cl, T), extent_pts)
        pl = se3.act(T, extent_pts)
        elev = np.arctan2(pl[:, 2], np.hypot(pl[:, 0], pl[:, 1]))
        if np.any(pc[:, 2] < 0.5) or pl[:, 2].min() - 0.3 < FLOOR_Z or \
                elev.min() < el[0] + 0.02 or elev.max() > el[-1] - 0.02:
            continue
        uv = project(pc, params)
        if np.all((uv[:, 0] > 5) & (uv[:, 0] < w - 6) & (uv[:, 1] > 5) & (uv[:, 1] < h - 6)):
            return T
    raise RuntimeError("could not place the board in the camera image")


def frames(n: int = 10, beams: int = 32, range_noise: float = 0.015, corner_noise_px: float = 0.3,
           seed: int = 0, cols: int = 7, rows: int = 5, square: float = 0.12,
           margin: float = 0.5, az_step_deg: float = 0.2, params: np.ndarray = CAMERA,
           image_size: tuple[int, int] = (1280, 960)) -> LidarFrames:
    """``n`` seeded frames (see module docstring)."""
    rng = np.random.default_rng(seed)
    i = np.arange(cols * rows)
    obj = np.stack([(i % cols) * square, (i // cols) * square, np.zeros(cols * rows)], axis=1)
    e = (1 + margin) * square
    extent = (-e, (cols - 1) * square + e, -e, (rows - 1) * square + e)
    ext_pts = np.array([[x, y, 0.0] for x in extent[:2] for y in extent[2:]])
    clouds, uvs, poses = [], [], []
    for _ in range(n):
        T_lb = _board_pose(rng, T_CAMERA_LIDAR, params, image_size, ext_pts, beams)
        T_cb = se3.compose(T_CAMERA_LIDAR, T_lb)
        clouds.append(_scan(T_lb, extent, beams, az_step_deg, range_noise, rng))
        uvs.append(project(se3.act(T_cb, obj), params) + rng.normal(0, corner_noise_px,
                                                                    (len(obj), 2)))
        poses.append(T_cb)
    return LidarFrames(clouds, np.stack(uvs), np.stack(poses), T_CAMERA_LIDAR, obj, extent,
                       np.asarray(params, float), image_size, cols, rows, square, margin)


def images(data: LidarFrames, seed: int = 0, noise: float = 2.0, supersample: int = 3
           ) -> list[np.ndarray]:
    """Rendered 8-bit camera images of each frame's board."""
    rng = np.random.default_rng(seed)
    return [render(data.params, T, data.cols, data.rows, data.square, data.image_size,
                   supersample, noise, rng, margin=data.margin) for T in data.T_camera_board]
