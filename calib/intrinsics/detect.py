"""Chessboard corner detection through OpenCV, in parallel, with a per-image time limit."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from ..io.images import read_gray
from .board import Chessboard
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


@dataclass(frozen=True)
class Detection:
    """One image's detection: ``corners (N, 2)`` pixels or ``None`` with a ``reason``.

    ``grid_continues``: edges (``first_col``, ``last_col``, ``first_row``, ``last_row``)
    beyond which the chessboard pattern continues in the image, i.e. the board seems to
    have more inner corners than asked for (:mod:`calib.intrinsics.grid_check`).
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
    gray = read_gray(image) if not isinstance(image, np.ndarray) else image
    if gray.ndim not in (2, 3) or (gray.ndim == 3 and gray.shape[2] not in (3, 4)):
        raise InputError(f"image must be (H, W) gray or (H, W, 3) color, got {gray.shape}")
    if gray.shape[0] < 8 or gray.shape[1] < 8:
        raise InputError(f"image of {gray.shape[1]}x{gray.shape[0]} px is too small to hold "
                         "a board")
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray, cv2.COLOR_BGR2GRAY if gray.shape[2] == 3
                            else cv2.COLOR_BGRA2GRAY)
    if gray.dtype != np.uint8:
        raise InputError("image must be 8-bit")
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


def _detect_one(path, board: Chessboard, method: str) -> Detection:
    t0 = time.perf_counter()
    name = str(path)
    try:
        gray = read_gray(path)
    except InputError as exc:
        return Detection(name, None, None, str(exc).split(": ", 1)[-1], time.perf_counter() - t0)
    size = (gray.shape[1], gray.shape[0])
    try:
        corners = detect_chessboard(gray, board, method)
    except InputError as exc:  # e.g. an image too small to hold a board
        return Detection(name, None, size, str(exc), time.perf_counter() - t0)
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "error"
        return Detection(name, None, size, f"OpenCV failed on this image ({msg})",
                         time.perf_counter() - t0)
    if corners is None:
        return Detection(name, None, size, f"no {board.cols}x{board.rows} chessboard found",
                         time.perf_counter() - t0)
    ratio, turn = grid_irregularity(corners, board.cols, board.rows)
    if ratio > MAX_SPACING_RATIO or turn > MAX_TURN_DEG:
        return Detection(name, None, size,
                         f"the detected corners do not form an even {board.cols}x{board.rows} "
                         f"grid (neighbouring squares differ {ratio:.1f}x in size, lines turn "
                         f"{turn:.0f} deg): a wrong --board, or a mis-detection",
                         time.perf_counter() - t0)
    edges = board_too_small(grid_extension(gray, corners, board.cols, board.rows))
    return Detection(name, corners, size, None, time.perf_counter() - t0, tuple(edges))


METHODS = ("classic", "sb")


def detect_images(paths: Sequence[str | os.PathLike], board: Chessboard,
                  method: str = DEFAULT_METHOD, workers: int | None = None,
                  timeout_s: float = 30.0,
                  on_done: Callable[[Detection], None] | None = None) -> list[Detection]:
    """Detect the board in every image, ``workers`` at a time (OpenCV releases the GIL).

    An image still running after ``timeout_s`` is reported as timed out and skipped (its
    worker is abandoned, so one pathological image never hangs the run). Results are in
    the order of ``paths``.
    """
    if method not in METHODS:
        raise InputError(f"unknown detector {method!r}; use 'classic' or 'sb'")
    if not timeout_s > 0:
        raise InputError(f"the per-image time limit must be positive, got {timeout_s}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    n = len(paths)
    workers = max(1, min(workers or (os.cpu_count() or 1), n or 1))
    results: list[Detection | None] = [None] * n
    todo: queue.Queue = queue.Queue()
    for i in range(n):
        todo.put(i)
    lock = threading.Lock()
    started: dict[int, float] = {}
    finished = threading.Event()

    def work():
        while True:
            try:
                i = todo.get_nowait()
            except queue.Empty:
                return
            with lock:
                started[i] = time.perf_counter()
            try:
                det = _detect_one(paths[i], board, method)
            except Exception as exc:  # noqa: BLE001 - one image never stops the run
                det = Detection(str(paths[i]), None, None,
                                f"detection failed ({type(exc).__name__}: {exc})", 0.0)
            with lock:
                if results[i] is None:
                    results[i] = det
                    started.pop(i, None)
                    if on_done:
                        on_done(det)
                if all(r is not None for r in results):
                    finished.set()

    def spawn():
        threading.Thread(target=work, daemon=True).start()

    for _ in range(workers):
        spawn()
    while n and not finished.wait(0.05):
        now = time.perf_counter()
        with lock:
            late = [i for i, t in started.items() if now - t > timeout_s]
            for i in late:
                t_start = started.pop(i)
                results[i] = Detection(str(paths[i]), None, None,
                                       f"timed out after {timeout_s:g} s", now - t_start)
                if on_done:
                    on_done(results[i])
            if all(r is not None for r in results):
                finished.set()
        for _ in late:
            spawn()  # replace the abandoned worker
    return [r for r in results if r is not None]
