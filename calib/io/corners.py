"""Corner files: detected image points per view, read without the images.

- NPZ or JSON (:func:`read_corners`, :func:`read_corner_views`): every view sees every
  board point; the file carries the views, the image size and (optionally) the board.
- yac's AprilGrid CSV (:func:`read_aprilgrid_csv`): one file per image, one row per
  detected tag corner, with the grid's geometry in every row and no image size.

An NPZ is a zip archive: every member's uncompressed size (zip directory) and array size
(npy header) are checked against :data:`MAX_CORNERS_BYTES` before anything is inflated,
so a zip bomb is refused in little memory.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import InputError
from .validate import check_file

#: Largest corners file (bytes on disk) and largest total of its arrays once inflated.
MAX_CORNERS_BYTES = 128 * 1024**2
#: Largest image side accepted in ``image_size`` (pixels).
MAX_IMAGE_SIDE = 1_000_000


def read_corners(path: str | os.PathLike, board=None,
                 make_board: Callable | None = None) -> tuple[list, np.ndarray, list, tuple]:
    """``(names, object_points (N, 3), image_points [(N, 2) per view], (width, height))``.

    Keys: ``image_points`` (V, N, 2), ``image_size`` (or ``image_size_wh``), and either
    ``object_points`` (N, 3), or ``pattern_cols_rows`` + ``square_size_m`` in the file
    (turned into a board by ``make_board(cols, rows, square)``), or ``board`` (an object
    with ``object_points()``). Anything else raises :class:`InputError` naming the file.
    """
    p = check_file(path, "corners file", MAX_CORNERS_BYTES)
    d = _load(p)
    try:
        img = [_real(p, "image_points", v) for v in d["image_points"]]
        if "object_points" in d:
            obj = _real(p, "object_points", d["object_points"])
        elif "pattern_cols_rows" in d and "square_size_m" in d and make_board is not None:
            cols, rows = (int(v) for v in _real(p, "pattern_cols_rows",
                                                d["pattern_cols_rows"]).ravel())
            obj = make_board(cols, rows, float(d["square_size_m"])).object_points()
        elif board is not None:
            obj = board.points()
        else:
            raise KeyError("object_points (or give the board)")
        size = d.get("image_size", d.get("image_size_wh"))
        if size is None:
            raise KeyError("image_size")
        names = [str(n) for n in d.get("names", [f"view{i}" for i in range(len(img))])]
    except InputError:
        raise
    except KeyError as exc:
        raise InputError(f"{p}: missing key {exc} (need image_points, object_points, "
                         "image_size)") from None
    except (TypeError, ValueError, IndexError, AttributeError, OverflowError) as exc:
        raise InputError(f"{p}: corners file has the wrong structure ({exc})") from None
    return names, obj, img, _image_size(p, size)


def _load(p: Path) -> dict:
    """The file's mapping of arrays (NPZ) or values (JSON)."""
    try:
        with p.open("rb") as fh:
            is_zip = fh.read(2) == b"PK"
        if is_zip:  # NPZ is a zip archive
            _check_members(p)
            with np.load(p, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
        else:
            d = json.loads(p.read_text())
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{p}: not an NPZ or JSON corners file ({exc})") from None
    if not isinstance(d, dict):
        raise InputError(f"{p}: corners file has the wrong structure (expected a mapping of "
                         "arrays)")
    return d


def _check_members(p: Path) -> None:
    """Refuse an archive whose members inflate past the cap, or whose npy headers announce
    more data than the member holds, before reading any array."""
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        if total > MAX_CORNERS_BYTES:
            big = max(infos, key=lambda i: i.file_size)
            raise InputError(f"{p}: the archive inflates to {total / 1e6:.0f} MB ({big.filename} "
                             f"{big.file_size / 1e6:.0f} MB), over the "
                             f"{MAX_CORNERS_BYTES / 1e6:.0f} MB limit for a corners file")
        for info in infos:
            with zf.open(info) as fh:
                fmt = np.lib.format
                version = fmt.read_magic(fh)
                shape, _, dtype = (fmt.read_array_header_1_0(fh) if version == (1, 0) else
                                   fmt.read_array_header_2_0(fh))
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if need > info.file_size:
                raise InputError(f"{p}: {info.filename} announces {shape} {dtype} "
                                 f"({need} bytes) but holds {info.file_size} bytes")


def _real(p: Path, key: str, value) -> np.ndarray:
    """``value`` as float64, refusing text and complex numbers (numpy would drop the
    imaginary part with only a warning)."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{p}: {key} is not an array of numbers ({exc})") from None
    if a.dtype.kind not in "biuf":
        raise InputError(f"{p}: {key} must hold real numbers, got {a.dtype}")
    return a.astype(np.float64)


def _image_size(p: Path, size) -> tuple[int, int]:
    """``(width, height)``: two whole, positive, finite numbers of pixels."""
    key = "image_size"
    wh = _real(p, key, size).ravel()
    if wh.size != 2 or not np.isfinite(wh).all() or np.any(wh != np.round(wh)) \
            or wh.min() < 1 or wh.max() > MAX_IMAGE_SIDE:
        shown = np.array2string(np.asarray(wh), separator=", ", threshold=4)
        raise InputError(f"{p}: {key} must be two whole numbers of pixels (width, height) "
                         f"from 1 to {MAX_IMAGE_SIDE}, got {shown}")
    return int(wh[0]), int(wh[1])


def read_corner_views(path: str | os.PathLike, board=None, make_board: Callable | None = None
                      ) -> tuple[list, np.ndarray, list, tuple]:
    """:func:`read_corners`, with every view checked: at least one view, each ``(N, 2)``
    for the file's ``N`` board points, finite, and named with a frame number of its own
    (the last number in the name; views pair across cameras by it, :mod:`calib.io.frames`). Files
    without ``names`` number their views 0, 1, ... One-line :class:`InputError` naming the
    file."""
    from .frames import index_by_frame

    names, obj, img, size = read_corners(path, board, make_board)
    p = Path(path)
    if obj.ndim != 2 or obj.shape[1] != 3 or not len(obj) or not np.isfinite(obj).all():
        raise InputError(f"{p}: object_points must be finite (N, 3) board points, got shape "
                         f"{obj.shape}" + ("" if obj.size == 0 or np.isfinite(obj).all()
                                           else " with NaN or inf"))
    if not img:
        raise InputError(f"{p}: the corners file holds no views")
    if len(names) != len(img):
        raise InputError(f"{p}: {len(names)} names for {len(img)} views")
    for name, uv in zip(names, img, strict=True):
        if uv.shape != (len(obj), 2):
            raise InputError(f"{p}: view {name} has image points of shape {uv.shape}, the "
                             f"board has {len(obj)} points (expected ({len(obj)}, 2))")
        if not np.isfinite(uv).all():
            raise InputError(f"{p}: view {name} has {int((~np.isfinite(uv)).sum())} NaN or "
                             "inf image coordinate(s)")
    try:
        index_by_frame(names, "frame")
    except InputError as exc:
        raise InputError(f"{p}: view {exc}") from None
    return names, obj, img, size


#: Columns of yac's AprilGrid corner CSV, in order (its header line starts with ``#``).
APRILGRID_CSV_COLUMNS = ("ts", "tag_rows", "tag_cols", "tag_size", "tag_spacing", "kp_x",
                         "kp_y", "p_x", "p_y", "p_z", "tag_id", "corner_idx")


def read_aprilgrid_csv(path: str | os.PathLike, make_grid: Callable
                       ) -> tuple[object | None, np.ndarray, np.ndarray]:
    """``(grid, ids (K,), uv (K, 2))`` from one image's AprilGrid detections in yac's CSV.

    Format (yac, github.com/chutsu/yac; one file per image, frames pair by the last number
    in the file name, usually the timestamp in ns): a header line
    ``#ts,tag_rows,tag_cols,tag_size,tag_spacing,kp_x,kp_y,p_x,p_y,p_z,tag_id,corner_idx``
    then one row per detected tag corner: the pixel ``(kp_x, kp_y)``, the corner's board
    point ``(p_x, p_y, p_z)`` in metres, Kalibr's tag id and corner index (0..3: (x0, y0),
    +x, +x+y, +y). The grid is ``make_grid(tag_cols, tag_rows, tag_size, tag_spacing)``
    (an object with ``points()`` and ``point_ids(tag_ids) -> (T, 4)``, e.g.
    :class:`calib.targets.aprilgrid.AprilGrid`); ``ids`` are its point ids. Every board
    point in the file must be the grid's point of that id. A file with the header only (no
    tag seen) gives ``(None, (0,), (0, 2))``. The CSV carries no image size.
    """
    p = check_file(path, "AprilGrid corner CSV", MAX_CORNERS_BYTES)
    a = _csv_rows(p)
    if not len(a):
        return None, np.zeros(0, np.int64), np.zeros((0, 2))
    geo = a[:, 1:5]
    if np.any(geo != geo[0]):
        raise InputError(f"{p}: the rows disagree on the grid (tag_rows, tag_cols, tag_size, "
                         "tag_spacing)")
    rows, cols, size, spacing = geo[0]
    if rows != round(rows) or cols != round(cols):
        raise InputError(f"{p}: tag_rows and tag_cols must be whole numbers, got {rows:g}, "
                         f"{cols:g}")
    try:
        grid = make_grid(int(cols), int(rows), float(size), float(spacing))
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None
    return grid, _grid_ids(p, grid, a), a[:, 5:7].copy()


def _csv_rows(p: Path) -> np.ndarray:
    """``(K, 12)`` float rows of a yac AprilGrid CSV (header checked, values finite)."""
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a readable text file ({exc})") from None
    head = text.lstrip().splitlines()[0] if text.strip() else ""
    cols = tuple(c.strip() for c in head.lstrip("#").split(","))
    if not head.startswith("#") or cols != APRILGRID_CSV_COLUMNS:
        raise InputError(f"{p}: not a yac AprilGrid CSV (the first line must be "
                         f"#{','.join(APRILGRID_CSV_COLUMNS)})")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return np.zeros((0, len(APRILGRID_CSV_COLUMNS)))
    try:
        a = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=float)
    except ValueError as exc:
        raise InputError(f"{p}: {exc}".splitlines()[0]) from None
    if a.shape[1] != len(APRILGRID_CSV_COLUMNS):
        raise InputError(f"{p}: rows have {a.shape[1]} columns, expected "
                         f"{len(APRILGRID_CSV_COLUMNS)}")
    if not np.isfinite(a).all():
        raise InputError(f"{p}: {int((~np.isfinite(a)).sum())} value(s) are NaN or inf")
    return a


def _grid_ids(p: Path, grid, a: np.ndarray) -> np.ndarray:
    """The grid's point ids of the rows' (tag_id, corner_idx), checked against the rows'
    board points (yac writes them with 6 decimals)."""
    tag, corner = a[:, 10], a[:, 11]
    n_tags = len(grid.points()) // 4
    bad = (tag != np.round(tag)) | (tag < 0) | (tag >= n_tags) | \
        ~np.isin(corner, (0, 1, 2, 3))
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(f"{p}: row {k + 2}: tag {tag[k]:g} corner {corner[k]:g} is not on a "
                         f"grid of {n_tags} tags with corners 0..3")
    ids = grid.point_ids(tag.astype(np.int64))[np.arange(len(a)), corner.astype(np.int64)]
    board = np.asarray(grid.points(), float)
    pts = board[ids]
    off = np.linalg.norm(pts - a[:, 7:10], axis=1)
    tol = 1e-6 + 1e-5 * float(np.ptp(board[:, :2]))
    if off.max() > tol:
        k = int(np.argmax(off))
        raise InputError(f"{p}: row {k + 2}: tag {int(tag[k])} corner {int(corner[k])} is at "
                         f"({', '.join(f'{v:g}' for v in a[k, 7:10])}) m in the file but at "
                         f"({', '.join(f'{v:g}' for v in pts[k])}) m on the grid its columns "
                         "describe")
    return ids
