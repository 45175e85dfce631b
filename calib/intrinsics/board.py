"""Moved to :mod:`calib.targets.chessboard`; kept so old imports still work."""

from ..targets.chessboard import Chessboard

__all__ = ["Chessboard"]
