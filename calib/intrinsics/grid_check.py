"""Moved to :mod:`calib.targets.grid_check`; kept so old imports still work."""

from ..targets.grid_check import (
    EDGES,
    MAX_SPACING_RATIO,
    MAX_TURN_DEG,
    board_too_small,
    extension_strengths,
    grid_extension,
    grid_irregularity,
    grid_is_regular,
)

__all__ = ["EDGES", "MAX_SPACING_RATIO", "MAX_TURN_DEG", "board_too_small",
           "extension_strengths", "grid_extension", "grid_irregularity", "grid_is_regular"]
