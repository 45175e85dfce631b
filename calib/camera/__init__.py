"""Pinhole camera with Brown-Conrady distortion (OpenCV's 5-coefficient model)."""

from .pinhole import PARAM_NAMES, CameraModel, distort, project

__all__ = ["PARAM_NAMES", "CameraModel", "distort", "project"]
