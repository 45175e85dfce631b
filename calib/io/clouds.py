"""Point-cloud files: PCD, PLY, XYZ/PTS and NPY, sniffed by content, read by their headers."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError
from .pcd import read_pcd
from .ply import read_ply
from .text_table import read_columns
from .validate import check_file

log = logging.getLogger(__name__)

#: Largest cloud file read (bytes): a size check before loading everything.
MAX_CLOUD_BYTES = 4 * 1024**3


def sniff(path: Path) -> str:
    """``ply``, ``pcd``, ``npy`` or ``xyz`` from the first bytes (extensions are not trusted)."""
    head = path.open("rb").read(512)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"ply"):
        return "ply"
    text = head.decode("latin-1")
    if "# .PCD" in text or text.lstrip().startswith(("VERSION", "FIELDS")):
        return "pcd"
    if b"\x00" in head:
        raise InputError(f"{path}: binary file that is not PLY, PCD or NPY")
    return "xyz"


def read_cloud(path: str | os.PathLike, drop_non_finite: bool = True) -> np.ndarray:
    """Points ``(N, 3)`` float64 (metres) from a PCD, PLY, XYZ/PTS or NPY file.

    PLY and PCD files are read by their header (:mod:`calib.io.ply`, :mod:`calib.io.pcd`):
    any property order and storage, refused when the data do not match the header. Text is
    parsed in C, streamed. Non-finite points (organized sensor clouds mark missing returns
    with NaN) are dropped and counted in a log warning when ``drop_non_finite``; a file
    with no finite point, an empty, truncated or unreadable file raises
    :class:`InputError` naming the file.
    """
    p = check_file(path, "point cloud", MAX_CLOUD_BYTES)
    kind = sniff(p)
    readers = {"npy": _read_npy, "xyz": _read_text, "ply": read_ply, "pcd": read_pcd}
    try:
        pts = readers[kind](p)
    except InputError:
        raise
    except (ValueError, IndexError, KeyError, OverflowError, MemoryError) as exc:
        raise InputError(f"{p}: malformed {kind.upper()} file ({type(exc).__name__}: {exc})"
                         ) from None
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        if bad.all() or not drop_non_finite:
            raise InputError(f"{p}: {int(bad.sum())} of {len(pts)} points are NaN or inf")
        log.warning("%s: dropped %d non-finite points of %d", p, int(bad.sum()), len(pts))
        pts = pts[~bad]
    if len(pts) == 0:
        raise InputError(f"{p}: the cloud is empty")
    return pts


def _read_npy(p: Path) -> np.ndarray:
    try:
        a = np.load(p, allow_pickle=False, mmap_mode="r")
    except Exception as exc:
        raise InputError(f"{p}: unreadable NPY file ({exc})") from None
    if a.ndim != 2 or a.shape[1] < 3 or a.dtype.kind not in "fiu":
        raise InputError(f"{p}: NPY array must be real numbers (N, 3+), got {a.shape} "
                         f"{a.dtype}")
    return np.array(a[:, :3], dtype=np.float64)


def _read_text(p: Path) -> np.ndarray:
    """XYZ / PTS: rows of x y z [more columns]; ``#`` comments; a PTS count line first."""
    skip = 0
    with p.open("rb") as fh:
        for raw in fh:
            words = raw.split(b"#")[0].split()
            if words:
                skip += len(words) == 1  # PTS: the first data line is the point count
                break
            skip += 1
    if skip and not words:
        raise InputError(f"{p}: the cloud is empty")
    return read_columns(p, 0, [0, 1, 2], None, skip_rows=skip, comments="#",
                        what="XYZ/PTS point row")


def write_ply(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write points ``(N, 3)`` as binary little-endian PLY (float64 x, y, z: no precision
    lost for georeferenced coordinates) atomically through :mod:`calib.io.atomic`."""
    from .atomic import atomic_write

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"{path}: points must be (N, 3), got {pts.shape}")
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by calib\n"
              f"element vertex {len(pts)}\nproperty double x\nproperty double y\n"
              "property double z\nend_header\n").encode("ascii")
    atomic_write(path, header + np.ascontiguousarray(pts, dtype="<f8").tobytes())


def read_transform(path: str | os.PathLike) -> np.ndarray:
    """A ``(4, 4)`` transform from a text file (4 rows of 4 numbers) or JSON (a 4x4 list, or
    an object with ``T_target_source`` / ``transform`` / ``matrix``)."""
    import json

    p = check_file(path, "transform file", 1 << 20)
    text = p.read_text(errors="replace")
    try:
        if text.lstrip().startswith(("{", "[")):
            d = json.loads(text)
            if isinstance(d, dict):
                for key in ("T_target_source", "transform", "matrix"):
                    if key in d:
                        d = d[key]
                        break
            T = np.asarray(d, dtype=float)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                T = np.loadtxt(p, ndmin=2)
    except Exception as exc:
        raise InputError(f"{p}: not a 4x4 transform ({exc})") from None
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise InputError(f"{p}: expected a finite 4x4 matrix, got shape {T.shape}")
    return T
