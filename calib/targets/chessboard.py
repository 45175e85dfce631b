"""Chessboard target: ``cols x rows`` inner corners, ids ``0 .. cols*rows - 1`` row by row.

Detection is OpenCV's ``findChessboardCorners`` + ``cornerSubPix`` with a window scaled to
each corner's local square size (or ``findChessboardCornersSB``), followed by the
chessboard-only checks of :mod:`calib.targets.grid_check` (an uneven grid is refused; a
grid that continues past its edges is flagged, see :meth:`Chessboard.flags`).
A chessboard is all or nothing: a detection always has every id.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from ..errors import InputError
from .base import Target
from .detect import as_gray
from .grid_check import (
    MAX_SPACING_RATIO,
    MAX_TURN_DEG,
    board_too_small,
    grid_extension,
    grid_irregularity,
)

#: Detector used by default; chosen by measured corner accuracy on rendered boards with
#: known corners (see bench/bench_detection.py and the README).
DEFAULT_METHOD = "classic"
METHODS = ("classic", "sb")


@dataclass(frozen=True)
class Chessboard(Target):
    """A chessboard with ``cols x rows`` inner corners and ``square`` metres per square.

    Corner ``i`` sits at ``((i % cols) * square, (i // cols) * square, 0)``, the order in
    which OpenCV's detectors return corners for ``patternSize = (cols, rows)``.
    ``detector``: ``classic`` or ``sb`` (see :func:`detect_chessboard`); ``square_y``:
    the row spacing when it differs from the column spacing ``square`` (target.yaml's
    ``rowSpacingMeters``), else ``None``.
    """

    name: ClassVar[str] = "checkerboard"

    cols: int
    rows: int
    square: float
    detector: str = DEFAULT_METHOD
    square_y: float | None = None

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2:
            raise InputError(f"board must have at least 2x2 inner corners, got "
                             f"{self.cols}x{self.rows}")
        if not (np.isfinite(self.square) and self.square > 0):
            raise InputError(f"square size must be a positive number of metres, got "
                             f"{self.square}")
        if self.square_y is not None and not (np.isfinite(self.square_y) and self.square_y > 0):
            raise InputError(f"row spacing must be a positive number of metres, got "
                             f"{self.square_y}")
        if self.detector not in METHODS:
            raise InputError(f"unknown detector {self.detector!r}; use 'classic' or 'sb'")

    @classmethod
    def parse(cls, spec: str, square: float, detector: str = DEFAULT_METHOD) -> Chessboard:
        """From ``"9x6"`` (inner corners, columns x rows)."""
        m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", str(spec))
        if not m:
            raise InputError(f"--board {spec!r}: expected COLSxROWS inner corners, e.g. 9x6")
        return cls(int(m.group(1)), int(m.group(2)), float(square), detector)

    @property
    def pattern_size(self) -> tuple[int, int]:
        return (self.cols, self.rows)

    @property
    def num_corners(self) -> int:
        return self.cols * self.rows

    @property
    def spacing(self) -> float:
        """Distance between neighbouring points (metres)."""
        return self.square

    def describe(self) -> str:
        return f"{self.cols}x{self.rows} chessboard"

    def object_points(self) -> np.ndarray:
        """``(cols * rows, 3)`` corner coordinates in the board frame (metres)."""
        i = np.arange(self.num_corners)
        sy = self.square if self.square_y is None else self.square_y
        return np.stack([(i % self.cols) * self.square, (i // self.cols) * sy,
                         np.zeros(self.num_corners)], axis=1)

    def points(self) -> np.ndarray:
        return self.object_points()

    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        corners = detect_chessboard(gray, self, self.detector)
        if corners is None:
            return f"no {self.cols}x{self.rows} chessboard found"
        ratio, turn = grid_irregularity(corners, self.cols, self.rows)
        if ratio > MAX_SPACING_RATIO or turn > MAX_TURN_DEG:
            return (f"the detected corners do not form an even {self.cols}x{self.rows} grid "
                    f"(neighbouring squares differ {ratio:.1f}x in size, lines turn "
                    f"{turn:.0f} deg): a wrong --board, or a mis-detection")
        return np.arange(self.num_corners), corners

    def flags(self, gray: np.ndarray, ids: np.ndarray, uv: np.ndarray) -> tuple[str, ...]:
        """Edges (``first_col`` ...) past which the chessboard pattern continues."""
        return tuple(board_too_small(grid_extension(gray, uv, self.cols, self.rows)))


def _subpix_windows(corners: np.ndarray, board: Chessboard) -> np.ndarray:
    """Half-window per corner: 0.4 x the distance to its nearest grid neighbour, in [2, 11].

    A fixed 11 px half-window (OpenCV's sample) reaches into neighbouring squares where a
    tilted board's squares are small and drags those corners by a pixel or more; a window
    scaled to the local square size keeps every corner's window inside its own squares.
    """
    g = corners.reshape(board.rows, board.cols, 2)
    dx = np.linalg.norm(np.diff(g, axis=1), axis=2)
    dy = np.linalg.norm(np.diff(g, axis=0), axis=2)
    near = np.full((board.rows, board.cols), np.inf)
    near[:, :-1] = np.minimum(near[:, :-1], dx)
    near[:, 1:] = np.minimum(near[:, 1:], dx)
    near[:-1, :] = np.minimum(near[:-1, :], dy)
    near[1:, :] = np.minimum(near[1:, :], dy)
    return np.clip((0.4 * near).astype(int), 2, 11).ravel()


def detect_chessboard(image: np.ndarray | str | os.PathLike, board: Chessboard,
                      method: str = DEFAULT_METHOD) -> np.ndarray | None:
    """Inner corners ``(cols * rows, 2)`` in pixels, row by row, or ``None`` if not found.

    ``method``: ``classic`` (findChessboardCorners + cornerSubPix with a window scaled to
    each corner's local square size) or ``sb`` (findChessboardCornersSB, sector-based).
    """
    if isinstance(board, tuple | list) and len(board) == 2:
        board = Chessboard(int(board[0]), int(board[1]), 1.0)  # (cols, rows) inner corners
    if not isinstance(board, Chessboard):
        raise InputError("board must be a Chessboard or a (cols, rows) pair of inner corners")
    gray = as_gray(image)
    if method == "sb":
        ok, corners = cv2.findChessboardCornersSB(
            gray, board.pattern_size, flags=cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_ACCURACY)
        return corners.reshape(-1, 2).astype(np.float64) if ok else None
    if method != "classic":
        raise InputError(f"unknown detector {method!r}; use 'classic' or 'sb'")
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    # FAST_CHECK (kept on purpose): without it 2 more of 24 strongly tilted rendered views
    # (0.6 rad tilt std) are found, but one of them with corners 8 px off, which moved the
    # fitted fx..cy by 6 px (bench/bench_detection.py, measured 2026-11-24).
    ok, corners = cv2.findChessboardCorners(gray, board.pattern_size, flags=flags)
    if not ok:
        return None
    out = corners.reshape(-1, 2).astype(np.float32)
    win = _subpix_windows(out, board)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 100, 1e-4)
    for w in np.unique(win):
        sel = win == w
        out[sel] = cv2.cornerSubPix(gray, np.ascontiguousarray(out[sel].reshape(-1, 1, 2)),
                                    (int(w), int(w)), (-1, -1), crit).reshape(-1, 2)
    return out.astype(np.float64)
