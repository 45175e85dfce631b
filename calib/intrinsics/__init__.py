"""Camera intrinsics from board images: detection, Zhang initialisation, LM refinement."""

from ..camera import CameraModel
from ..targets.chessboard import Chessboard
from ..targets.grid_check import board_too_small, grid_extension
from .detect import Detection, detect_chessboard, detect_images
from .fit import FitOptions, fit_intrinsics
from .result import IntrinsicsResult

__all__ = ["CameraModel", "Chessboard", "Detection", "FitOptions", "IntrinsicsResult",
           "board_too_small", "detect_chessboard", "detect_images", "fit_intrinsics",
           "grid_extension"]
