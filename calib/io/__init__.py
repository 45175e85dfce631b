"""File input and output: atomic writes, point clouds, camera files, corners, images,
validation."""

from .atomic import atomic_open, atomic_write
from .corners import read_corners
from .images import read_gray

__all__ = ["atomic_open", "atomic_write", "read_corners", "read_gray"]
