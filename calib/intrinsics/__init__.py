"""Camera intrinsics from board images: detection, Zhang initialisation, LM refinement."""

from ..camera import CameraModel
from .board import Chessboard
from .detect import Detection, detect_chessboard, detect_images
from .fit import FitOptions, fit_intrinsics
from .grid_check import board_too_small, grid_extension
from .result import IntrinsicsResult

__all__ = ["CameraModel", "Chessboard", "Detection", "FitOptions", "IntrinsicsResult",
           "board_too_small", "detect_chessboard", "detect_images", "fit_intrinsics",
           "grid_extension"]
