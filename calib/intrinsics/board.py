"""Chessboard geometry: inner-corner grid in the board frame (z = 0, metres)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Chessboard:
    """A chessboard with ``cols x rows`` inner corners and ``square`` metres per square.

    Corner ``i`` sits at ``((i % cols) * square, (i // cols) * square, 0)``, the order in
    which OpenCV's detectors return corners for ``patternSize = (cols, rows)``.
    """

    cols: int
    rows: int
    square: float

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise InputError(f"board must have at least 2x2 inner corners, got "
                             f"{self.cols}x{self.rows}")
        if self.cols == self.rows:
            # a square grid is ambiguous under 90-degree rotation; OpenCV warns the same
            pass
        if not (np.isfinite(self.square) and self.square > 0):
            raise InputError(f"square size must be a positive number of metres, got "
                             f"{self.square}")

    @classmethod
    def parse(cls, spec: str, square: float) -> Chessboard:
        """From ``"9x6"`` (inner corners, columns x rows)."""
        m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(spec))
        if not m:
            raise InputError(f"--board {spec!r}: expected COLSxROWS inner corners, e.g. 9x6")
        return cls(int(m.group(1)), int(m.group(2)), float(square))

    @property
    def pattern_size(self) -> tuple[int, int]:
        return (self.cols, self.rows)

    @property
    def num_corners(self) -> int:
        return self.cols * self.rows

    def object_points(self) -> np.ndarray:
        """``(cols * rows, 3)`` corner coordinates in the board frame (metres)."""
        i = np.arange(self.num_corners)
        return np.stack([(i % self.cols) * self.square, (i // self.cols) * self.square,
                         np.zeros(self.num_corners)], axis=1)
