"""Seeded synthetic hand-eye stations with ground truth (robot poses, board corners, images).

Both setups satisfy ``T_cam_target_i = X^-1 B_i^s Y`` (see :mod:`calib.extrinsics`):
eye-in-hand ``X = T_gripper_camera``, ``Y = T_base_target``, ``s = -1``; eye-to-hand
``X = T_base_camera``, ``Y = T_gripper_target``, ``s = +1``. Camera views of the board are
drawn as in :func:`board_render.random_poses` (whole board in the image, varied tilt and
roll), and the robot poses follow from the chain. Robot measurements carry isotropic
position noise (mm) and rotation noise (deg, left-multiplied); corners Gaussian pixel noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calib.camera.pinhole import project
from calib.lie import se3, so3

from .board_render import DEFAULT_CAMERA, random_poses, render

#: Ground-truth unknowns of each setup.
TRUTH = {
    "eye-in-hand": (se3.from_rt(so3.exp(np.array([0.12, -0.2, 1.55])), [0.045, -0.062, 0.108]),
                    se3.from_rt(so3.exp(np.array([0.03, 3.1, 0.2])), [0.62, -0.11, 0.02])),
    "eye-to-hand": (se3.from_rt(so3.exp(np.array([2.2, 0.1, -0.3])), [1.15, 0.12, 0.74]),
                    se3.from_rt(so3.exp(np.array([0.05, -0.08, 0.7])), [0.01, 0.03, 0.09])),
}


@dataclass(frozen=True)
class HandEyeSet:
    setup: str
    X: np.ndarray  # (4, 4) true T_gripper_camera | T_base_camera
    Y: np.ndarray  # (4, 4) true T_base_target | T_gripper_target
    robot_true: np.ndarray  # (S, 4, 4) T_base_gripper
    robot_measured: np.ndarray  # (S, 4, 4) with noise
    target_poses: np.ndarray  # (S, 4, 4) true T_cam_target
    corners: np.ndarray  # (S, P, 2) noisy pixels
    object_points: np.ndarray  # (P, 3)
    params: np.ndarray  # (9,) camera
    image_size: tuple[int, int]
    cols: int
    rows: int
    square: float


def stations(n: int = 20, setup: str = "eye-in-hand", corner_noise_px: float = 0.3,
             robot_noise_mm: float = 0.2, robot_noise_deg: float = 0.02, seed: int = 0,
             cols: int = 9, rows: int = 6, square: float = 0.03,
             params: np.ndarray = DEFAULT_CAMERA, image_size: tuple[int, int] = (640, 480),
             tilt: float = 0.45) -> HandEyeSet:
    """``n`` stations of ``setup`` with the given noise (see module docstring)."""
    rng = np.random.default_rng(seed)
    X, Y = TRUTH[setup]
    C = random_poses(n, cols, rows, square, params, image_size, rng, tilt=tilt)
    M = se3.compose(se3.compose(Y, se3.inverse(C)), se3.inverse(X))  # M X C = Y
    B = M if setup == "eye-in-hand" else se3.inverse(M)
    noise_t = rng.normal(0, robot_noise_mm * 1e-3, (n, 3))
    noise_r = rng.normal(0, np.radians(robot_noise_deg), (n, 3))
    Bm = se3.from_rt(so3.exp(noise_r) @ B[:, :3, :3], B[:, :3, 3] + noise_t)
    i = np.arange(cols * rows)
    obj = np.stack([(i % cols) * square, (i // cols) * square, np.zeros(cols * rows)], axis=1)
    uv = np.stack([project(se3.act(c, obj), params) for c in C])
    uv = uv + rng.normal(0, corner_noise_px, uv.shape)
    return HandEyeSet(setup, X, Y, B, Bm, C, uv, obj, np.asarray(params, float),
                      image_size, cols, rows, square)


def images(data: HandEyeSet, seed: int = 0, noise: float = 2.0, supersample: int = 3
           ) -> list[np.ndarray]:
    """Rendered 8-bit images of the board at each station's true camera pose."""
    rng = np.random.default_rng(seed)
    return [render(data.params, c, data.cols, data.rows, data.square, data.image_size,
                   supersample, noise, rng) for c in data.target_poses]
