"""The one detection runner for every target: images in, :class:`Observation` s out.

Each image is read and detected in a worker **process** (``workers`` of them, started
through a fork server so OpenCV's thread pool is never forked), with a per-image time
limit: a worker still busy after ``timeout_s`` is terminated and replaced, so a
pathological image neither hangs the run nor keeps holding memory.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from .base import Observation, Target


def read_gray(path: str | os.PathLike) -> np.ndarray:
    """8-bit grayscale image; :class:`InputError` naming the file if it cannot be read."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: image file does not exist")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: image file is empty")
    data = np.fromfile(str(p), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise InputError(f"{p}: not a readable image (PNG, JPG, BMP or TIFF expected)")
    return img


def as_gray(image: np.ndarray | str | os.PathLike) -> np.ndarray:
    """An 8-bit ``(H, W)`` image from a path, a gray or a BGR(A) array (one-line errors)."""
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
    return np.ascontiguousarray(gray)


def _failed(name: str, size, reason: str, t0: float) -> Observation:
    return Observation(name, size, np.zeros(0, np.int64), np.zeros((0, 2)), reason,
                       time.perf_counter() - t0)


def detect_one(path: str | os.PathLike, target: Target) -> Observation:
    """Read one image and detect ``target`` in it; never raises for a bad image."""
    t0 = time.perf_counter()
    name = str(path)
    try:
        gray = read_gray(path)
    except InputError as exc:
        return _failed(name, None, str(exc).split(": ", 1)[-1], t0)
    size = (gray.shape[1], gray.shape[0])
    try:
        gray = as_gray(gray)
        found = target.detect(gray)
        if isinstance(found, str):
            return _failed(name, size, found, t0)
        ids, uv = found
        flags = target.flags(gray, ids, uv)
    except InputError as exc:  # e.g. an image too small to hold a board
        return _failed(name, size, str(exc), t0)
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else "error"
        return _failed(name, size, f"OpenCV failed on this image ({msg})", t0)
    return Observation(name, size, ids, uv, None, time.perf_counter() - t0, tuple(flags))


def _worker(conn, target: Target) -> None:
    """Worker process: receive ``(index, path)``, send ``(index, Observation)``."""
    cv2.setNumThreads(1)  # one image per process; the processes are the parallelism
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        i, path = job
        try:
            obs = detect_one(path, target)
        except Exception as exc:  # noqa: BLE001 - one image never stops the run
            obs = _failed(str(path), None, f"detection failed ({type(exc).__name__}: {exc})",
                          time.perf_counter())
        conn.send((i, obs))


def _context():
    try:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["cv2", "calib.targets"])
        return ctx
    except ValueError:  # no fork server on this platform
        return mp.get_context("spawn")


class _Pool:
    """Worker processes, each with its own pipe, one image at a time."""

    def __init__(self, target: Target) -> None:
        self.ctx, self.target = _context(), target
        self.busy: dict = {}  # conn -> (process, index, t_start)
        self.idle: list = []

    def start(self):
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.target), daemon=True)
        proc.start()
        child.close()
        return parent, proc

    def submit(self, i: int, path) -> None:
        conn, proc = self.idle.pop() if self.idle else self.start()
        conn.send((i, str(path)))
        self.busy[conn] = (proc, i, time.perf_counter())

    def kill(self, conn) -> None:
        proc, _, _ = self.busy.pop(conn)
        proc.terminate()
        proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        conn.close()

    def close(self) -> None:
        for conn, _ in self.idle:
            try:
                conn.send(None)
            except OSError:
                pass
        for conn in list(self.busy):
            self.kill(conn)
        for conn, proc in self.idle:
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            conn.close()
        self.idle = []


def _check_args(target, workers, timeout_s) -> None:
    if not isinstance(target, Target):
        raise InputError(f"target must be a calib.targets.Target, got {type(target).__name__}")
    if not timeout_s > 0:
        raise InputError(f"the per-image time limit must be positive, got {timeout_s}")
    if workers is not None and workers < 1:
        raise InputError(f"workers must be at least 1, got {workers}")


def detect_images(paths: Sequence[str | os.PathLike], target: Target,
                  workers: int | None = None, timeout_s: float = 30.0,
                  on_done: Callable[[Observation], None] | None = None) -> list[Observation]:
    """Detect ``target`` in every image, ``workers`` processes at a time (default: cores).

    Returns one :class:`Observation` per path, in the order of ``paths``; unreadable
    images, images without the target, crashed and timed-out detections carry a
    ``reason``. ``on_done(observation)`` is called as each image finishes (progress).
    """
    _check_args(target, workers, timeout_s)
    n = len(paths)
    workers = max(1, min(workers or (os.cpu_count() or 1), n or 1))
    results: list[Observation | None] = [None] * n
    todo = deque(range(n))
    pool = _Pool(target)

    def finish(i: int, obs: Observation) -> None:
        results[i] = obs
        if on_done:
            on_done(obs)

    try:
        while todo or pool.busy:
            while todo and len(pool.busy) < workers:
                i = todo.popleft()
                pool.submit(i, paths[i])
            now = time.perf_counter()
            wait_s = min(max(0.0, t + timeout_s - now) for _, _, t in pool.busy.values())
            for conn in wait(list(pool.busy), timeout=wait_s + 0.01):
                proc, i, t0 = pool.busy[conn]
                try:
                    j, obs = conn.recv()
                except (EOFError, OSError):  # the process died (out of memory, a crash)
                    pool.kill(conn)
                    finish(i, _failed(str(paths[i]), None, "the detection process died "
                                      f"(exit code {proc.exitcode})", t0))
                    continue
                pool.busy.pop(conn)
                pool.idle.append((conn, proc))
                finish(j, obs)
            now = time.perf_counter()
            for conn, (_, i, t0) in list(pool.busy.items()):
                if now - t0 > timeout_s:
                    pool.kill(conn)
                    finish(i, _failed(str(paths[i]), None, f"timed out after {timeout_s:g} s",
                                      t0))
    finally:
        pool.close()
    return [r for r in results if r is not None]

