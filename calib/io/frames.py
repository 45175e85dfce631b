"""Frames of a multi-sensor capture pair by the last number in their file names
(``left07.jpg`` with ``right07.jpg``, ``img_0007.png`` with ``scan_0007.pcd``)."""

from __future__ import annotations

import re
from pathlib import PurePath

from ..errors import InputError

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def frame_key(name: str) -> int:
    """The frame number of a file: the last number in its file name (not the folder),
    ``"cam1/img_0007.png"`` -> 7; :class:`InputError` when the name has none."""
    stem = PurePath(str(name)).stem
    m = _LAST_NUMBER.search(stem)
    if m is None:
        raise InputError(f"{name}: no number in the file name to pair it with the other "
                         "sensors' files (frames pair by the last number: left07 <-> right07)")
    return int(m.group(1))


def index_by_frame(paths, what: str = "frame") -> dict:
    """``{frame number: path}`` for ``paths`` (see :func:`frame_key`); :class:`InputError`
    when two files share a number (``what`` names the number in the message)."""
    out: dict = {}
    for p in paths:
        k = frame_key(p)
        if k in out:
            raise InputError(f"{p}: {what} number {k} also in {PurePath(str(out[k])).name}")
        out[k] = p
    return out
