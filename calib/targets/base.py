"""Calibration targets: an image in, observations with ids out.

A target knows its 3-D points in the board frame (metres, ``z = 0``; row ``i`` of
:meth:`Target.points` is the point with id ``i``) and detects them in an 8-bit grayscale
image, returning the ids it saw and their sub-pixel positions (pixel (0, 0) is the centre
of the top-left pixel). Partial views are normal: residual rows are
``target.points()[ids]`` against ``uv``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True, eq=False)
class Observation:
    """One image's detection.

    Attributes:
        view: image name (file path as given).
        image_size: ``(width, height)`` in pixels, or ``None`` if the image was unreadable.
        ids: ``(K,)`` int, rows of ``target.points()`` that were seen.
        uv: ``(K, 2)`` pixels of those points.
        reason: why the view is unusable (``None`` when it is usable).
        time_s: detection time in seconds.
        flags: notes on a usable view (a chessboard: the edges past which the pattern
            continues, see :meth:`Target.flags`).
    """

    view: str
    image_size: tuple[int, int] | None
    ids: np.ndarray
    uv: np.ndarray
    reason: str | None = None
    time_s: float = 0.0
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = np.array(self.ids, dtype=np.int64).reshape(-1)
        uv = np.array(self.uv, dtype=float).reshape(-1, 2)
        ids.setflags(write=False)
        uv.setflags(write=False)
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "uv", uv)
        object.__setattr__(self, "flags", tuple(self.flags))

    @property
    def ok(self) -> bool:
        return self.reason is None and len(self.ids) > 0


class Target(ABC):
    """A calibration target (see module docstring)."""

    name: ClassVar[str]  # "checkerboard", "charuco", "aprilgrid", "circlegrid"

    @abstractmethod
    def points(self) -> np.ndarray:
        """``(P, 3)`` points in the board frame (metres, z = 0); row ``i`` is id ``i``."""

    @abstractmethod
    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        """``(ids (K,), uv (K, 2))`` seen in the 8-bit image ``gray (H, W)``, or a one-line
        reason (str) why nothing usable was found."""

    def flags(self, gray: np.ndarray, ids: np.ndarray, uv: np.ndarray) -> tuple[str, ...]:
        """Notes on a detection the view filter may act on (none by default)."""
        return ()

    def describe(self) -> str:
        """A short human name, e.g. ``"9x6 chessboard"``."""
        return self.name

    @property
    def spacing(self) -> float:
        """Distance between neighbouring points in metres (for unit sanity checks)."""
        return float("nan")

    def min_points(self) -> int:
        """Fewest points a view must show to be used (pose and homography need 4)."""
        return min(len(self.points()), 6)
