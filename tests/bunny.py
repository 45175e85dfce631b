"""Stanford bunny pairs with their ground truth (bun.conf convention in SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from calib.io.clouds import read_cloud
from calib.lie import so3


def world_pose(conf: Path, name: str) -> np.ndarray:
    """``T_world_scan`` from ``bmesh NAME tx ty tz qx qy qz qw`` (X_world = R(q)^T X + t)."""
    for line in conf.read_text().splitlines():
        f = line.split()
        if len(f) == 9 and f[0] == "bmesh" and f[1] == name:
            T = np.eye(4)
            T[:3, :3] = Rotation.from_quat(np.array(f[5:9], float)).as_matrix().T
            T[:3, 3] = np.array(f[2:5], float)
            return T
    raise KeyError(name)


def pair(folder: Path, source: str, target: str):
    """``(source points, target points, T_target_source ground truth)``."""
    conf = folder / "bun.conf"
    G = np.linalg.inv(world_pose(conf, target)) @ world_pose(conf, source)
    return read_cloud(folder / source), read_cloud(folder / target), G


def pose_error(T: np.ndarray, G: np.ndarray) -> tuple[float, float]:
    """``(rotation error deg, translation error m)`` of ``T`` against ``G``."""
    d = np.linalg.inv(G) @ T
    return float(np.degrees(np.linalg.norm(so3.log(d[:3, :3])))), float(np.linalg.norm(d[:3, 3]))
