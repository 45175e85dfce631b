"""Align two Stanford bunny scans, check the answer against the scanner's ground truth, and
see what calib says when the answer cannot be trusted.

Run from anywhere: ``python examples/register_clouds.py``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

import calib
from calib.io.clouds import read_cloud
from calib.registration import ICPOptions
from calib_datasets import ROOT
from calib_datasets.cloud_synth import corridor

BUNNY = ROOT / "bunny"


def world_pose(name: str) -> np.ndarray:
    """``T_world_scan`` from bun.conf (``X_world = R(q)^T X_scan + t``, see SOURCES.md)."""
    for line in (BUNNY / "bun.conf").read_text().splitlines():
        f = line.split()
        if len(f) == 9 and f[:2] == ["bmesh", name]:
            T = np.eye(4)
            T[:3, :3] = Rotation.from_quat(np.array(f[5:9], float)).as_matrix().T
            T[:3, 3] = np.array(f[2:5], float)
            return T
    raise KeyError(name)


# 1. Two real scans, 45 degrees apart, no initial guess: FPFH + RANSAC, then ICP.
source = read_cloud(BUNNY / "bun045.ply")  # (N, 3) float64, metres
target = read_cloud(BUNNY / "bun000.ply")
result = calib.register(source, target, options=ICPOptions(voxel_size=0.001))
print(result.summary())

truth = np.linalg.inv(world_pose("bun000.ply")) @ world_pose("bun045.ply")
err = np.linalg.inv(truth) @ result.T_target_source
angle = np.degrees(np.linalg.norm(Rotation.from_matrix(err[:3, :3]).as_rotvec()))
print(f"\nerror against bun.conf: {angle:.3f} deg, {1e3 * np.linalg.norm(err[:3, 3]):.3f} mm")
print("pose standard deviations (tx, ty, tz m; rx, ry, rz rad):",
      np.sqrt(np.diag(result.covariance)).round(7), f"ok={result.ok}")

# 2. A corridor: translation along its axis is not determined by the geometry. calib
#    converges, but says which motion is free instead of pretending.
walls = corridor()
shifted = walls + [0.3, 0.02, -0.01]
res = calib.register(walls, shifted, np.eye(4), ICPOptions(max_correspondence_distance=0.5))
print("\ncorridor:", res.degeneracy.message())

# 3. An initial guess given the wrong way round (T_source_target for T_target_source): the
#    result is not ok, and calib says the reverse fits better (the CLI exits 4, writes nothing).
res = calib.register(source, target, np.linalg.inv(truth), ICPOptions(voxel_size=0.002))
print(f"\ninverted guess: ok={res.ok}:", "; ".join(res.problems))

# 4. Clouds that do not overlap at the given pose: a typed error, never the identity.
try:
    calib.register(source, target + [1.0, 0, 0], np.eye(4),
                   ICPOptions(max_correspondence_distance=0.005))
except calib.NotConvergedError as exc:
    print("\nno overlap:", exc)
