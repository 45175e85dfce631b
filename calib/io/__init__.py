"""File input and output: atomic writes, point clouds, camera files, validation."""

from .atomic import atomic_open, atomic_write

__all__ = ["atomic_open", "atomic_write"]
