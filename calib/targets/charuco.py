"""ChArUco target (OpenCV): a chessboard whose white squares carry ArUco markers.

Points are the board's inner chessboard corners, id ``i`` at
``((i % (squares_x - 1) + 1) * square, (i // (squares_x - 1) + 1) * square, 0)`` (OpenCV's
``CharucoBoard.getChessboardCorners`` order; board frame x right, y down on the print).
Detection is ``cv2.aruco.CharucoDetector``; a board printed inverted (white on black) is
found by detecting on the inverted image when the direct pass finds no corner. Partial
views are normal: only the corners next to decoded markers are returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import cv2
import numpy as np

from ..errors import InputError
from .base import Target


def dictionary_id(name: str) -> int:
    """OpenCV's predefined dictionary constant for a name such as ``DICT_4X4_250``."""
    key = str(name).strip()
    key = key if key.upper().startswith("DICT_") else "DICT_" + key
    names = sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_"))
    match = [n for n in names if n.upper() == key.upper()]
    if not match:
        shown = ", ".join(n for n in names if n == n.upper())
        raise InputError(f"unknown dictionary {name!r}; OpenCV has {shown}")
    return int(getattr(cv2.aruco, match[0]))


@dataclass(frozen=True)
class Charuco(Target):
    """``squares_x x squares_y`` squares of ``square`` metres, markers of ``marker`` metres
    from ``dictionary``; ``legacy``: OpenCV's pre-4.6 layout for even row counts."""

    name: ClassVar[str] = "charuco"

    squares_x: int
    squares_y: int
    square: float
    marker: float
    dictionary: str = "DICT_4X4_250"
    legacy: bool = False

    def __post_init__(self) -> None:
        if self.squares_x < 2 or self.squares_y < 2:
            raise InputError(f"a ChArUco board needs at least 2x2 squares, got "
                             f"{self.squares_x}x{self.squares_y}")
        for what, v in (("squareLength", self.square), ("markerLength", self.marker)):
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"{what} must be a positive number of metres, got {v}")
        if self.marker >= self.square:
            raise InputError(f"markerLength {self.marker:g} must be smaller than squareLength "
                             f"{self.square:g}")
        d = cv2.aruco.getPredefinedDictionary(dictionary_id(self.dictionary))
        need = (self.squares_x * self.squares_y) // 2
        if d.bytesList.shape[0] < need:
            raise InputError(f"dictionary {self.dictionary} has {d.bytesList.shape[0]} markers, "
                             f"a {self.squares_x}x{self.squares_y} ChArUco board needs {need}")

    @property
    def spacing(self) -> float:
        return self.square

    def describe(self) -> str:
        return f"{self.squares_x}x{self.squares_y} ChArUco board ({self.dictionary})"

    def points(self) -> np.ndarray:
        n = self.squares_x - 1
        i = np.arange(n * (self.squares_y - 1))
        return np.stack([(i % n + 1) * self.square, (i // n + 1) * self.square,
                         np.zeros(len(i))], axis=1)

    def board(self) -> cv2.aruco.CharucoBoard:
        d = cv2.aruco.getPredefinedDictionary(dictionary_id(self.dictionary))
        b = cv2.aruco.CharucoBoard((self.squares_x, self.squares_y), self.square,
                                   self.marker, d)
        b.setLegacyPattern(bool(self.legacy))
        return b

    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        det = _detector(self)
        best = None
        for img in (gray, 255 - gray):
            corners, ids, _, marker_ids = det.detectBoard(img)
            n = 0 if ids is None else len(ids)
            if n and (best is None or n > len(best[0])):
                best = (ids.reshape(-1).astype(np.int64), corners.reshape(-1, 2).astype(float))
            if best is not None and img is gray:
                break
        if best is None:
            return f"no {self.describe()} corners found"
        return best


@lru_cache(maxsize=8)
def _detector(target: Charuco) -> cv2.aruco.CharucoDetector:
    """One detector per board per process (the OpenCV objects are not picklable)."""
    return cv2.aruco.CharucoDetector(target.board())
