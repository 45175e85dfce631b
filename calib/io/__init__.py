"""File input and output: atomic writes, point clouds, camera files, corners, images,
validation (imported lazily: ``calib.io.atomic`` alone stays free of numpy, so the CLI
starts fast)."""

from __future__ import annotations

import importlib

from .atomic import atomic_open, atomic_write

_LAZY = {"read_corners": "calib.io.corners", "read_gray": "calib.io.images"}

__all__ = ["atomic_open", "atomic_write", "read_corners", "read_gray"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'calib.io' has no attribute {name!r}")
