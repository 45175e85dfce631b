"""Point-cloud files: PCD, PLY, XYZ/PTS (through open3d) and NPY, sniffed by content."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..errors import InputError
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

    Non-finite points (organized sensor clouds mark missing returns with NaN) are dropped
    and counted in a log warning when ``drop_non_finite``; a file with no finite point,
    an empty, truncated or unreadable file raises :class:`InputError` naming the file.
    """
    p = check_file(path, "point cloud", MAX_CLOUD_BYTES)
    kind = sniff(p)
    if kind == "npy":
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise InputError(f"{p}: unreadable NPY file ({exc})") from None
        if a.ndim != 2 or a.shape[1] < 3 or a.dtype.kind not in "fiu":
            raise InputError(f"{p}: NPY array must be numeric (N, 3+), got {a.shape} {a.dtype}")
        pts = np.asarray(a[:, :3], dtype=np.float64)
    elif kind == "xyz":
        pts = _read_text(p)
    else:
        _check_binary_size(p, kind)
        import open3d as o3d

        pcd = o3d.io.read_point_cloud(str(p), format=kind, remove_nan_points=False,
                                      remove_infinite_points=False)
        pts = np.asarray(pcd.points, dtype=np.float64)
        if len(pts) == 0:
            raise InputError(f"{p}: no points could be read ({kind.upper()} header or data "
                             "is invalid or truncated)")
    bad = ~np.isfinite(pts).all(axis=1)
    if bad.any():
        if bad.all() or not drop_non_finite:
            raise InputError(f"{p}: {int(bad.sum())} of {len(pts)} points are NaN or inf")
        log.warning("%s: dropped %d non-finite points of %d", p, int(bad.sum()), len(pts))
        pts = pts[~bad]
    if len(pts) == 0:
        raise InputError(f"{p}: the cloud is empty")
    return pts


_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2,
              "int16": 2, "uint16": 2, "int": 4, "uint": 4, "int32": 4, "uint32": 4,
              "float": 4, "float32": 4, "double": 8, "float64": 8}


def _check_binary_size(p: Path, kind: str) -> None:
    """Refuse binary PLY/PCD files shorter than their header promises (open3d would return
    uninitialised memory for the missing points)."""
    head = p.open("rb").read(65536)
    size = p.stat().st_size
    if kind == "ply":
        end = head.find(b"end_header")
        if end < 0:
            raise InputError(f"{p}: PLY header has no end_header")
        lines = head[:end].decode("latin-1").splitlines()
        fmt = next((ln.split()[1] for ln in lines if ln.startswith("format")), "ascii")
        if fmt == "ascii":
            return
        body = end + len(b"end_header") + (2 if head[end + 10:end + 12] == b"\r\n" else 1)
        need, element, count, rowsize, has_list = 0, None, 0, 0, False
        for ln in lines + ["element end 0"]:
            f = ln.split()
            if f[:1] == ["element"]:
                if element is not None and not has_list:
                    need += count * rowsize
                element, count, rowsize, has_list = f[1], int(f[2]), 0, False
            elif f[:1] == ["property"]:
                if f[1] == "list":
                    has_list = True
                else:
                    rowsize += _PLY_SIZES.get(f[1], 0)
        if size - body < need:
            raise InputError(f"{p}: truncated binary PLY: the header promises {need} bytes of "
                             f"data, the file has {size - body}")
    elif kind == "pcd":
        text = head.decode("latin-1")
        fields = {}
        for ln in text.splitlines():
            f = ln.split()
            if f and f[0] in ("SIZE", "COUNT", "POINTS", "DATA"):
                fields[f[0]] = f[1:]
            if f[:1] == ["DATA"]:
                break
        if fields.get("DATA", ["ascii"])[0] != "binary":
            return
        try:
            row = sum(int(s) * int(c) for s, c in zip(fields["SIZE"], fields.get(
                "COUNT", ["1"] * len(fields["SIZE"])), strict=True))
            npts = int(fields["POINTS"][0])
        except (KeyError, ValueError):
            raise InputError(f"{p}: PCD header is incomplete (SIZE/COUNT/POINTS)") from None
        body = head.find(b"DATA binary")
        body = head.find(b"\n", body) + 1
        if size - body < row * npts:
            raise InputError(f"{p}: truncated binary PCD: the header promises {row * npts} "
                             f"bytes of data, the file has {size - body}")


def _read_text(p: Path) -> np.ndarray:
    try:
        with p.open() as fh:
            rows = [ln.split() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    except UnicodeDecodeError:
        raise InputError(f"{p}: not a text XYZ/PTS file") from None
    if rows and len(rows[0]) == 1 and len(rows) > 1:  # PTS: first line is the count
        rows = rows[1:]
    try:
        width = min(len(r) for r in rows) if rows else 0
        if width < 3:
            raise ValueError("fewer than 3 columns")
        return np.array([r[:3] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{p}: not an XYZ/PTS point list ({exc})") from None


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
            T = np.loadtxt(p, ndmin=2)
    except Exception as exc:
        raise InputError(f"{p}: not a 4x4 transform ({exc})") from None
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise InputError(f"{p}: expected a finite 4x4 matrix, got shape {T.shape}")
    return T
