"""The one detection runner for every target: images in, :class:`Observation` s out.

Each image is read and detected in a worker **process** (``workers`` of them, each a
fresh ``python -m calib.targets._worker``), with a per-image time limit: a worker still
busy after ``timeout_s`` is killed and replaced, so a pathological image neither hangs
the run nor keeps holding memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
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


def _worker_loop(jobs, results) -> None:
    """Worker process body: receive the target, then ``(index, path)`` jobs until ``None``;
    send ``(index, Observation)`` for each."""
    cv2.setNumThreads(1)  # one image per process; the processes are the parallelism
    target = jobs.recv()
    while True:
        try:
            job = jobs.recv()
        except EOFError:
            return
        if job is None:
            return
        i, path = job
        t0 = time.perf_counter()
        try:
            obs = detect_one(path, target)
        except Exception as exc:  # noqa: BLE001 - one image never stops the run
            obs = _failed(str(path), None, f"detection failed ({type(exc).__name__}: {exc})",
                          t0)
        results.send((i, obs))


class _Pool:
    """Worker processes (``python -m calib.targets._worker``), one image at a time each.

    Plain subprocesses rather than :mod:`multiprocessing`: a fresh interpreter never
    re-runs the caller's ``__main__`` (spawn and forkserver do, which breaks scripts
    without a main guard) and never inherits OpenCV's thread pool (fork does)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.busy: dict = {}  # results connection -> (worker, index, t_start)
        self.idle: list = []  # workers: (process, jobs connection, results connection)

    def start(self) -> tuple:
        job_r, job_w = os.pipe()
        res_r, res_w = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the folder holding calib/
        env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
        proc = subprocess.Popen([sys.executable, "-m", "calib.targets._worker", str(job_r),
                                 str(res_w)], pass_fds=(job_r, res_w), env=env,
                                stdin=subprocess.DEVNULL)
        os.close(job_r)
        os.close(res_w)
        jobs, results = Connection(job_w, readable=False), Connection(res_r, writable=False)
        jobs.send(self.target)
        return proc, jobs, results

    def submit(self, i: int, path) -> None:
        worker = self.idle.pop() if self.idle else self.start()
        worker[1].send((i, str(path)))
        self.busy[worker[2]] = (worker, i, time.perf_counter())

    def done(self, conn) -> None:
        worker, _, _ = self.busy.pop(conn)
        self.idle.append(worker)

    def kill(self, conn) -> None:
        (proc, jobs, results), _, _ = self.busy.pop(conn)
        proc.kill()  # a timed-out or broken worker: nothing of it is kept
        proc.wait()
        jobs.close()
        results.close()

    def close(self) -> None:
        for conn in list(self.busy):
            self.kill(conn)
        for _, jobs, _ in self.idle:
            try:
                jobs.send(None)
            except OSError:
                pass
            jobs.close()
        for proc, _, results in self.idle:
            try:
                proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            results.close()
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
                (proc, _, _), i, t0 = pool.busy[conn]
                try:
                    j, obs = conn.recv()
                except (EOFError, OSError):  # the process died (out of memory, a crash)
                    pool.kill(conn)
                    finish(i, _failed(str(paths[i]), None, "the detection process died "
                                      f"(exit code {proc.returncode})", t0))
                    continue
                pool.done(conn)
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

