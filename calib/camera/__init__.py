"""Camera (lens) models behind one interface (:mod:`calib.camera.base`)."""

from .base import LensModel, get_model, model_names, register_model
from .pinhole import PARAM_NAMES, PINHOLE, CameraModel, Pinhole, distort, project

__all__ = ["PARAM_NAMES", "PINHOLE", "CameraModel", "LensModel", "Pinhole", "distort",
           "get_model", "model_names", "project", "register_model"]
