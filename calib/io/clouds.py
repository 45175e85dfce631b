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

    ASCII PLY/PCD are parsed here against their header (a file with fewer rows than its
    header promises is refused); binary PLY/PCD go through open3d after a size check
    against the header. Non-finite points (organized sensor clouds mark missing returns
    with NaN) are dropped and counted in a log warning when ``drop_non_finite``; a file
    with no finite point, an empty, truncated or unreadable file raises
    :class:`InputError` naming the file.
    """
    p = check_file(path, "point cloud", MAX_CLOUD_BYTES)
    kind = sniff(p)
    try:
        if kind == "npy":
            pts = _read_npy(p)
        elif kind == "xyz":
            pts = _read_text(p)
        else:
            header = _header(p, kind)
            if header["ascii"]:
                pts = _read_ascii_table(p, header)
            else:
                _check_binary_size(p, header)
                pts = _read_open3d(p, kind)
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
        a = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{p}: unreadable NPY file ({exc})") from None
    if a.ndim != 2 or a.shape[1] < 3 or a.dtype.kind not in "fiu":
        raise InputError(f"{p}: NPY array must be numeric (N, 3+), got {a.shape} {a.dtype}")
    return np.asarray(a[:, :3], dtype=np.float64)


def _read_open3d(p: Path, kind: str) -> np.ndarray:
    import open3d as o3d

    pcd = o3d.io.read_point_cloud(str(p), format=kind, remove_nan_points=False,
                                  remove_infinite_points=False)
    pts = np.asarray(pcd.points, dtype=np.float64)
    if len(pts) == 0:
        raise InputError(f"{p}: no points could be read ({kind.upper()} header or data is "
                         "invalid or truncated)")
    return pts


_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2,
              "int16": 2, "uint16": 2, "int": 4, "uint": 4, "int32": 4, "uint32": 4,
              "float": 4, "float32": 4, "double": 8, "float64": 8}


def _header(p: Path, kind: str) -> dict:
    """Parsed PLY/PCD header: ``ascii``, ``body`` (byte offset of the data), ``count``
    (points), ``columns`` (x, y, z column indices), ``skip_rows`` (ASCII rows before the
    vertices), ``row_bytes`` (binary bytes per point, 0 if unknown), ``other_bytes``."""
    head = p.open("rb").read(1 << 16)
    if kind == "ply":
        end = head.find(b"end_header")
        if end < 0:
            raise InputError(f"{p}: PLY header has no end_header")
        if head.count(b"end_header") > 1 and head.find(b"end_header", end + 1) < \
                head.find(b"\n", end) + 64:
            raise InputError(f"{p}: PLY header has more than one end_header")
        nl = head.find(b"\n", end)
        body = (nl + 1) if nl >= 0 else len(head)
        lines = head[:end].decode("latin-1").splitlines()
        fmt = next((ln.split()[1] for ln in lines if ln.startswith("format ")), None)
        if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
            raise InputError(f"{p}: PLY format line missing or unknown ({fmt})")
        elements: list[list] = []  # [name, count, [props], has_list]
        for ln in lines:
            f = ln.split()
            if f[:1] == ["element"]:
                elements.append([f[1], int(f[2]), [], False])
            elif f[:1] == ["property"] and elements:
                if f[1] == "list":
                    elements[-1][3] = True
                    elements[-1][2].append((f[-1], 0))
                else:
                    if f[1] not in _PLY_SIZES:
                        raise InputError(f"{p}: unknown PLY property type {f[1]!r}")
                    elements[-1][2].append((f[-1], _PLY_SIZES[f[1]]))
        vi = next((i for i, e in enumerate(elements) if e[0] == "vertex"), None)
        if vi is None:
            raise InputError(f"{p}: PLY file has no vertex element")
        names = [n for n, _ in elements[vi][2]]
        if not {"x", "y", "z"} <= set(names):
            raise InputError(f"{p}: PLY vertices have no x, y, z properties")
        before = elements[:vi]
        fixed = all(not e[3] for e in elements)
        need = sum(e[1] * sum(sz for _, sz in e[2]) for e in elements) if fixed else \
            sum(e[1] * sum(sz for _, sz in e[2]) for e in elements[:vi + 1]) \
            if all(not e[3] for e in elements[:vi + 1]) else 0
        return dict(ascii=fmt == "ascii", body=body, count=elements[vi][1],
                    columns=[names.index(c) for c in "xyz"],
                    skip_rows=sum(e[1] for e in before), data_bytes=need)
    text = head.decode("latin-1")
    fields: dict[str, list[str]] = {}
    body = None
    pos = 0
    for ln in text.splitlines(keepends=True):
        pos += len(ln)
        f = ln.split()
        if not f or f[0].startswith("#"):
            continue
        fields[f[0]] = f[1:]
        if f[0] == "DATA":
            body = pos
            break
    if body is None:
        raise InputError(f"{p}: PCD header has no DATA line (no point data)")
    for key in ("FIELDS", "SIZE", "POINTS"):
        if key not in fields:
            raise InputError(f"{p}: PCD header has no {key} line")
    names = fields["FIELDS"]
    if not {"x", "y", "z"} <= set(names):
        raise InputError(f"{p}: PCD fields have no x, y, z")
    counts = [int(c) for c in fields.get("COUNT", ["1"] * len(names))]
    sizes = [int(c) for c in fields["SIZE"]]
    types = fields.get("TYPE", ["F"] * len(names))
    if not (len(counts) == len(names) == len(sizes) == len(types)):
        raise InputError(f"{p}: PCD header FIELDS/SIZE/TYPE/COUNT lengths differ")
    valid = {"F": (4, 8), "I": (1, 2, 4, 8), "U": (1, 2, 4, 8)}
    for f_, t_, s_, c_ in zip(names, types, sizes, counts, strict=True):
        if t_ not in valid or s_ not in valid[t_] or c_ < 1:
            raise InputError(f"{p}: PCD field {f_!r} has an invalid TYPE/SIZE/COUNT "
                             f"({t_} {s_} {c_})")
    if any(types[names.index(c)] != "F" for c in "xyz"):
        raise InputError(f"{p}: PCD x, y, z must be floating point (TYPE F)")
    col_start = np.r_[0, np.cumsum(counts)[:-1]]
    data = fields["DATA"][0] if fields["DATA"] else ""
    if data not in ("ascii", "binary", "binary_compressed"):
        raise InputError(f"{p}: unknown PCD DATA type {data!r}")
    npts = int(fields["POINTS"][0])
    return dict(ascii=data == "ascii", body=body, count=npts,
                columns=[int(col_start[names.index(c)]) for c in "xyz"], skip_rows=0,
                data_bytes=npts * sum(s * c for s, c in zip(sizes, counts, strict=True))
                if data == "binary" else 0)


def _check_binary_size(p: Path, header: dict) -> None:
    """Refuse binary files shorter than their header promises (open3d would return
    uninitialised memory for the missing points)."""
    have = p.stat().st_size - header["body"]
    need = header["data_bytes"]
    if need and have < need:
        raise InputError(f"{p}: truncated binary file: the header promises {need} bytes of "
                         f"data, the file has {have}")
    if need and have > need + 1:  # (a single trailing newline is tolerated)
        raise InputError(f"{p}: the binary data is {have} bytes but the header describes "
                         f"{need}: the header does not match the data")


def _read_ascii_table(p: Path, header: dict) -> np.ndarray:
    """The x, y, z columns of the first ``count`` data rows of an ASCII PLY/PCD body."""
    n = header["count"]
    size = p.stat().st_size - header["body"]
    if n <= 0:
        raise InputError(f"{p}: the header declares {n} points")
    if n * 6 > size + 6:  # every row has at least "0 0 0\n"
        raise InputError(f"{p}: truncated: the header promises {n} points but the data "
                         f"section has only {size} bytes")
    with p.open("rb") as fh:
        fh.seek(header["body"])
        raw = fh.read()
    if not raw.rstrip(b" \t").endswith((b"\n", b"\r")):
        raise InputError(f"{p}: the last data row has no line end: the file is probably "
                         "truncated (a complete ASCII PLY/PCD ends with a newline)")
    lines = raw.decode("latin-1").splitlines()
    rows = [ln for ln in lines if ln.strip()][header["skip_rows"]:header["skip_rows"] + n]
    if len(rows) < n:
        raise InputError(f"{p}: truncated: the header promises {n} points, the file has "
                         f"{len(rows)} data rows")
    cols = header["columns"]
    try:
        return np.loadtxt(rows, usecols=cols, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(f"{p}: malformed data row ({exc})") from None


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
