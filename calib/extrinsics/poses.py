"""Pose lists: the ``x, y, z, qx, qy, qz, qw`` CSV layout, rigidity and duplicate checks."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..lie import se3, so3


def poses_from_xyzq(rows: np.ndarray, what: str = "poses") -> np.ndarray:
    """Transforms ``(S, 4, 4)`` from rows ``(S, 7)`` ``x, y, z, qx, qy, qz, qw`` (metres,
    Hamilton quaternion); a quaternion whose norm is not 1 (within 1e-3) is refused, since
    it means the pose is not a rigid motion (or the columns are in another order)."""
    rows = np.asarray(rows, dtype=float).reshape(-1, 7)
    if not np.isfinite(rows).all():
        bad = int(np.flatnonzero(~np.isfinite(rows).all(axis=1))[0])
        raise InputError(f"{what}: row {bad + 1} has a non-finite number")
    norm = np.linalg.norm(rows[:, 3:], axis=1)
    off = np.flatnonzero(np.abs(norm - 1) > 1e-3)
    if off.size:
        raise InputError(f"{what}: row {off[0] + 1} is not a rigid pose (quaternion norm "
                         f"{norm[off[0]]:.4f}, expected 1; columns x y z qx qy qz qw)")
    q = rows[:, 3:] / norm[:, None]
    return se3.from_rt(so3.from_quat(q), rows[:, :3])


def poses_to_xyzq(T: np.ndarray) -> np.ndarray:
    """Rows ``(S, 7)`` ``x, y, z, qx, qy, qz, qw`` of transforms ``(S, 4, 4)``."""
    T = np.asarray(T, dtype=float).reshape(-1, 4, 4)
    return np.c_[T[:, :3, 3], so3.to_quat(T[:, :3, :3]).reshape(-1, 4)]


def read_pose_csv(path: str | os.PathLike) -> np.ndarray:
    """Poses ``(S, 4, 4)`` from a CSV of ``x, y, z, qx, qy, qz, qw`` (one pose a line, comma-
    or whitespace-separated, an optional header line, ``#`` comments)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read pose file ({exc})") from None
    rows = []
    for k, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in re.split(r"[,\s;]+", line) if f]
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            if not rows and k == _first_line(text):
                continue  # a header
            raise InputError(f"{p}: line {k} is not 7 numbers ({line[:40]!r})") from None
        if len(vals) != 7:
            raise InputError(f"{p}: line {k} has {len(vals)} values, expected 7 "
                             "(x y z qx qy qz qw)")
        rows.append(vals)
    if not rows:
        raise InputError(f"{p}: no poses (expected lines of x y z qx qy qz qw)")
    return poses_from_xyzq(np.array(rows), str(p))


def _first_line(text: str) -> int:
    for k, line in enumerate(text.splitlines(), 1):
        if line.split("#", 1)[0].strip():
            return k
    return 0


def check_rigid(T: np.ndarray, what: str) -> np.ndarray:
    """``T (S, 4, 4)`` as float, or :class:`InputError` naming the first pose that is not
    a rigid transform (orthonormal rotation with det +1, last row ``0 0 0 1``)."""
    T = np.asarray(T, dtype=float)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise InputError(f"{what}: expected (S, 4, 4) transforms, got shape {T.shape}")
    if not np.isfinite(T).all():
        raise InputError(f"{what}: pose {int(np.flatnonzero(~np.isfinite(T).all(axis=(1, 2)))[0])}"
                         " has a non-finite entry")
    R = T[:, :3, :3]
    err = np.abs(R @ np.swapaxes(R, 1, 2) - np.eye(3)).max(axis=(1, 2))
    bad = (err > 1e-5) | (np.linalg.det(R) < 0) | \
        (np.abs(T[:, 3] - [0, 0, 0, 1]).max(axis=1) > 1e-9)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(f"{what}: pose {k} is not rigid (rotation not orthonormal with det +1 "
                         f"to 1e-5: off by {err[k]:.1e})")
    return T


def duplicate_pairs(T: np.ndarray, tol_m: float = 1e-7, tol_rad: float = 1e-7
                    ) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of identical poses in ``T (S, 4, 4)``."""
    t = T[:, :3, 3]
    dt = np.linalg.norm(t[:, None] - t[None], axis=2)
    dr = np.abs(np.einsum("iab,jab->ij", T[:, :3, :3], T[:, :3, :3]) - 3)
    i, j = np.nonzero(np.triu((dt < tol_m) & (dr < tol_rad ** 2), 1))
    return list(zip(i.tolist(), j.tolist(), strict=True))


POSE_KEYS = ("x", "y", "z", "qx", "qy", "qz", "qw")
POSE_FILE_EXT = {".yaml", ".yml", ".json"}


def read_pose_folder(path: str | os.PathLike) -> tuple[list[int], np.ndarray]:
    """Poses from a folder of one file per station (``*.yaml``, ``*.yml`` or ``*.json``, a
    mapping with ``x, y, z, qx, qy, qz, qw``: ROS-Industrial's layout), in the order of
    the last number in the file names. Returns ``(numbers, poses (S, 4, 4))``;
    :class:`InputError` names a file that is not such a mapping, or a repeated number."""
    import yaml

    from ..io.frames import index_by_frame

    p = Path(path)
    files = [f for f in p.iterdir() if f.suffix.lower() in POSE_FILE_EXT] if p.is_dir() else []
    if not files:
        raise InputError(f"{p}: no pose files (*.yaml, *.yml, *.json) in this folder")
    keyed: dict[int, Path] = index_by_frame(files, "station")
    nums = sorted(keyed)
    rows = []
    for k in nums:
        f = keyed[k]
        try:
            d = yaml.safe_load(f.read_text())
            rows.append([float(d[c]) for c in POSE_KEYS])
        except (OSError, UnicodeDecodeError, yaml.YAMLError, TypeError, KeyError,
                ValueError):
            raise InputError(f"{f}: expected a mapping with numbers "
                             f"{', '.join(POSE_KEYS)}") from None
    return nums, poses_from_xyzq(np.array(rows), str(p))
