"""Chessboard detection for intrinsics: the former API over :mod:`calib.targets`.

Detection lives in :mod:`calib.targets` (one runner for every target type); this module
keeps ``detect_images(paths, board) -> list[Detection]`` for chessboard callers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from ..targets import detect as _targets_detect
from ..targets.chessboard import DEFAULT_METHOD, METHODS, Chessboard, detect_chessboard
from ..targets.detect import read_gray

__all__ = ["DEFAULT_METHOD", "METHODS", "Detection", "detect_chessboard", "detect_images",
           "read_gray"]


@dataclass(frozen=True)
class Detection:
    """One image's detection: ``corners (N, 2)`` pixels or ``None`` with a ``reason``.

    ``grid_continues``: edges (``first_col``, ``last_col``, ``first_row``, ``last_row``)
    beyond which the chessboard pattern continues in the image, i.e. the board seems to
    have more inner corners than asked for (:mod:`calib.targets.grid_check`).
    """

    name: str
    corners: np.ndarray | None
    image_size: tuple[int, int] | None
    reason: str | None
    time_s: float
    grid_continues: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.corners is not None


def detect_images(paths: Sequence[str | os.PathLike], board: Chessboard,
                  method: str = DEFAULT_METHOD, workers: int | None = None,
                  timeout_s: float = 30.0,
                  on_done: Callable[[Detection], None] | None = None) -> list[Detection]:
    """Detect the chessboard in every image (:func:`calib.targets.detect.detect_images`,
    worker processes, a time limit per image); results in the order of ``paths``."""
    if method not in METHODS:
        raise InputError(f"unknown detector {method!r}; use 'classic' or 'sb'")
    if not isinstance(board, Chessboard):
        raise InputError("board must be a Chessboard")
    target = replace(board, detector=method)

    def convert(o):
        corners = np.array(o.uv) if o.reason is None else None
        return Detection(o.view, corners, o.image_size, o.reason, o.time_s, o.flags)

    cb = (lambda o: on_done(convert(o))) if on_done else None
    obs = _targets_detect.detect_images(paths, target, workers, timeout_s, cb)
    return [convert(o) for o in obs]
