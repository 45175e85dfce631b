"""Corner files (NPZ or JSON): detected image points per view, the board, the image size.

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
