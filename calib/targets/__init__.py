"""Calibration targets: image -> observations with ids (:mod:`calib.targets.base`).

One module per target type (chessboard, ChArUco, AprilGrid, circle grid), one detection
runner (:func:`detect_images`), one view filter (:func:`select_views`) and the Kalibr-style
``target.yaml`` reader (:func:`load_target`).
"""

from .base import Observation, Target
from .chessboard import Chessboard, detect_chessboard
from .detect import detect_images, detect_one, read_gray
from .select import ViewSelection, select_views

__all__ = ["Chessboard", "Observation", "Target", "ViewSelection", "detect_chessboard",
           "detect_images", "detect_one", "read_gray", "select_views"]
