"""Calibration targets: image -> observations with ids (:mod:`calib.targets.base`)."""

from .base import Observation, Target

__all__ = ["Observation", "Target"]
