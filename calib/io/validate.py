"""Validation at the public boundary: every check raises InputError naming the argument."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:  # numpy is imported in as_array: the file checks stay light (CLI start-up)
    import numpy as np

#: Files larger than this are refused before loading (bytes); override per call.
MAX_FILE_BYTES = 2 * 1024**3


def as_array(name: str, value, shape: tuple, dtype=float, finite: bool = True) -> np.ndarray:
    """``value`` as an array of ``dtype`` matching ``shape`` (``-1`` = any length).

    Raises :class:`InputError` on a wrong shape, a non-numeric value (text, complex
    numbers: numpy would drop the imaginary part with only a warning), or NaN/inf.
    """
    import numpy as np

    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "c":
            raise TypeError(f"complex values ({raw.dtype}); give the real part explicitly")
        if raw.dtype.kind in "SU":
            raise TypeError("text, not numbers")
        a = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc})") from None
    if np.dtype(dtype).kind in "iu" and raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or np.any(raw != np.round(raw)):
            raise InputError(f"{name}: indices must be whole numbers")
    if a.ndim != len(shape) or any(s not in (-1, d) for s, d in zip(shape, a.shape, strict=True)):
        want = "(" + ", ".join("N" if s == -1 else str(s) for s in shape) + ")"
        raise InputError(f"{name}: expected shape {want}, got {a.shape}")
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise InputError(f"{name}: {bad} value(s) are NaN or inf")
    return a


def check_file(path: str | os.PathLike, what: str = "file",
               max_bytes: int = MAX_FILE_BYTES) -> Path:
    """The path of a readable, non-empty regular file of at most ``max_bytes``."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: {what} does not exist")
    if not p.is_file():
        raise InputError(f"{p}: {what} is not a regular file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: {what} is empty")
    if size > max_bytes:
        raise InputError(f"{p}: {what} is {size / 1e9:.1f} GB, over the {max_bytes / 1e9:.1f} GB "
                         "limit")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: {what} is not readable (permission denied)")
    return p


def check_output_path(path: str | os.PathLike) -> Path:
    """An output path that can be written: a device or FIFO that is writable (written
    directly), or a name within the file system's length limit in a writable folder (the
    folder of its target when ``path`` is a symlink)."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file() and not p.is_dir():  # /dev/null, a FIFO, a pipe
            if not os.access(p, os.W_OK):
                raise InputError(f"{p}: output is not writable")
            return p
        target = Path(os.path.realpath(p)) if p.is_symlink() else p
        via = f" (the target of the symlink {p})" if p.is_symlink() else ""
        folder = target.parent if str(target.parent) else Path(".")
        if not folder.is_dir():
            raise InputError(f"{p}: output folder {folder}{via} does not exist")
        if not os.access(folder, os.W_OK):
            raise InputError(f"{p}: output folder {folder}{via} is not writable")
        if target.is_dir():
            raise InputError(f"{p}: output path is a folder")
        limit = os.pathconf(folder, "PC_NAME_MAX")
        if len(os.fsencode(target.name)) > limit:
            raise InputError(f"{p}: the file name is {len(os.fsencode(target.name))} bytes, "
                             f"over this file system's limit of {limit}")
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({exc.strerror or type(exc).__name__})") from None
    return p
