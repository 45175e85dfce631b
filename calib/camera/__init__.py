"""Camera (lens) models behind one interface (:mod:`calib.camera.base`): ``pinhole``
(Brown-Conrady), ``rational``, ``fisheye`` (Kannala-Brandt) and ``double-sphere``."""

# ruff: noqa: I001  (import order = registration order: pinhole is the default model)
from .base import CHUNK, LensModel, get_model, model_names, register_model
from .camera import Camera, CameraModel
from .pinhole import PARAM_NAMES, PINHOLE, Pinhole, distort, project
from .rational import RATIONAL, Rational
from .fisheye import FISHEYE, Fisheye
from .double_sphere import DOUBLE_SPHERE, DoubleSphere

__all__ = ["CHUNK", "DOUBLE_SPHERE", "FISHEYE", "PARAM_NAMES", "PINHOLE", "RATIONAL",
           "Camera", "CameraModel", "DoubleSphere", "Fisheye", "LensModel", "Pinhole", "Rational",
           "distort", "get_model", "model_names", "project", "register_model"]
