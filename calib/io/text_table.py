"""Numeric columns of a whitespace-separated text table, streamed (memory ~ the result).

``numpy.loadtxt`` parses in C, chunk by chunk, keeping only the columns asked for; it
refuses what Python's ``float()`` would quietly accept (``1_0``, non-ASCII digits).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError


def read_columns(p: Path, offset: int, cols: list[int], count: int | None,
                 skip_rows: int = 0, comments: str | None = None,
                 what: str = "data row") -> np.ndarray:
    """Columns ``cols`` as float64 ``(N, len(cols))`` of the rows after byte ``offset``
    (after ``skip_rows`` lines); exactly ``count`` rows when ``count`` is given (fewer is
    refused as truncated, later rows are not read), all rows otherwise."""
    with p.open("rb") as raw:
        raw.seek(offset)
        text = io.TextIOWrapper(raw, encoding="latin-1", newline=None)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
                a = np.loadtxt(text, dtype=np.float64, usecols=cols, skiprows=skip_rows,
                               max_rows=count, comments=comments, ndmin=2)
        except ValueError as exc:
            msg = str(exc)
            msg = f"too few columns: {msg}" if "invalid column index" in msg else msg
            raise InputError(f"{p}: malformed {what} ({msg})") from None
    if count is not None and len(a) < count:
        raise InputError(f"{p}: truncated: the header promises {count} points, the file has "
                         f"{len(a)} data rows")
    return a


def check_line_end(p: Path) -> None:
    """Refuse a text file whose last row has no line end (a file cut mid-number would
    otherwise give a wrong last value)."""
    with p.open("rb") as fh:
        fh.seek(max(0, p.stat().st_size - 64))
        tail = fh.read()
    if not tail.rstrip(b" \t").endswith((b"\n", b"\r")):
        raise InputError(f"{p}: the last data row has no line end: the file is probably "
                         "truncated (a complete ASCII PLY/PCD ends with a newline)")
