"""Seeded synthetic camera rigs with ground truth (tests and benches of ``calib.rig``).

Cameras sit on an arc: camera ``k`` is yawed ``k * yaw`` about the rig's y axis and shifted
``k * baseline`` along x, so neighbours share part of their view and cameras far apart on the
arc may never see the board together. Each frame places the whole board in front of one
camera chosen at random (:func:`datasets.board_render.random_poses`); every camera that sees
the whole board in that frame records its corners, with Gaussian pixel noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.camera.base import get_model
from calib.lie import se3, so3

from .board_render import DEFAULT_CAMERA, FISHEYE_CAMERA, random_poses

DEFAULTS = {"pinhole": DEFAULT_CAMERA, "fisheye": FISHEYE_CAMERA}


@dataclass(frozen=True, eq=False)
class SynthRig:
    cameras: dict  # name -> {frame: uv (P, 2)}
    board: np.ndarray  # (P, 3)
    params: dict  # name -> (P,) true parameters
    T_cam_rig: np.ndarray  # (C, 4, 4) true
    image_sizes: dict  # name -> (w, h)
    models: dict  # name -> model name
    true_uv: dict  # name -> {frame: uv without noise}
    T_rig_board: np.ndarray  # (F, 4, 4) true board pose of every frame


def board_points(cols: int = 9, rows: int = 6, square: float = 0.04) -> np.ndarray:
    i = np.arange(cols * rows)
    return np.stack([(i % cols) * square, (i // cols) * square, np.zeros(cols * rows)], 1)


def rig_poses(n: int, baseline: float, yaw_deg: float) -> np.ndarray:
    """``T_cam_rig (n, 4, 4)``; camera 0 is the identity."""
    T = np.tile(np.eye(4), (n, 1, 1))
    for k in range(1, n):
        R = so3.exp(np.array([0.01 * k, np.radians(yaw_deg) * k, -0.005 * k]))
        T_rig_cam = se3.from_rt(R, np.array([baseline * k, 0.002 * k, 0.01 * k]))
        T[k] = se3.inverse(T_rig_cam)
    return T


def make_rig(n_cameras: int = 2, n_frames: int = 20, seed: int = 0, noise: float = 0.2,
             baseline: float = 0.12, yaw_deg: float = 8.0, cols: int = 9, rows: int = 6,
             square: float = 0.04, image_size: tuple[int, int] = (640, 480),
             params: np.ndarray | None = None, pair_frames: int = 0,
             model: str = "pinhole") -> SynthRig:
    """A seeded rig (module docstring): ``n_frames`` frames with the board in front of a
    random camera, then ``pair_frames`` frames per neighbouring pair ``(k, k + 1)`` placed
    (by rejection) where both see the whole board. Every camera has the lens ``model``
    (``params`` by default :data:`DEFAULTS`, focal lengths 2% longer per camera)."""
    params = DEFAULTS[model] if params is None else params
    rng = np.random.default_rng(seed)
    board = board_points(cols, rows, square)
    T = rig_poses(n_cameras, baseline, yaw_deg)
    names = [f"cam{k}" for k in range(n_cameras)]
    scale = np.zeros(len(params))
    scale[:4] = 1, 1, 0.01, 0.01
    cam_params = {n: np.asarray(params, float) * (1 + 0.02 * k * scale)
                  for k, n in enumerate(names)}
    lens = get_model(model)
    cams = {n: {} for n in names}
    true = {n: {} for n in names}
    w, h = image_size
    def seen(T_rb):
        out = {}
        for k, n in enumerate(names):
            uv, ok = lens.project(se3.act(T[k] @ T_rb, board), cam_params[n])
            if np.all(ok & (uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2)
                      & (uv[:, 1] < h - 3)):
                out[n] = uv
        return out

    def place(c):
        T_cb = random_poses(1, cols, rows, square, cam_params[names[c]], image_size, rng,
                            model=model)[0]
        return se3.inverse(T[c]) @ T_cb

    poses = [place(int(rng.integers(n_cameras))) for _ in range(n_frames)]
    frames = [seen(T_rb) for T_rb in poses]
    for k in range(n_cameras - 1):
        for _ in range(pair_frames):
            for _try in range(2000):
                T_rb = place(k + int(rng.integers(2)))
                v = seen(T_rb)
                if names[k] in v and names[k + 1] in v:
                    frames.append(v)
                    poses.append(T_rb)
                    break
            else:
                raise RuntimeError(f"cameras {k} and {k + 1} never see the board together")
    for f, v in enumerate(frames):
        for n, uv in v.items():
            true[n][f] = uv
            cams[n][f] = uv + rng.normal(0, noise, uv.shape)
    return SynthRig(cams, board, cam_params, T, {n: image_size for n in names},
                    {n: model for n in names}, true, np.stack(poses))
