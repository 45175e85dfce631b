"""Camera files: OpenCV FileStorage YAML, ROS ``camera_info`` YAML (plumb_bob), JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..camera.pinhole import CameraModel
from ..errors import InputError
from .atomic import atomic_write

FORMATS = ("opencv", "ros", "json")


def _matrix(name: str, m: np.ndarray) -> str:
    m = np.atleast_2d(m)
    data = ", ".join(repr(float(v)) for v in m.ravel())
    return (f"{name}: !!opencv-matrix\n   rows: {m.shape[0]}\n   cols: {m.shape[1]}\n"
            f"   dt: d\n   data: [ {data} ]\n")


def opencv_yaml(camera: CameraModel, extra: dict | None = None) -> str:
    """Text readable by ``cv2.FileStorage`` (keys camera_matrix, distortion_coefficients)."""
    w, h = camera.image_size
    out = f"%YAML:1.0\n---\nimage_width: {w}\nimage_height: {h}\n"
    out += _matrix("camera_matrix", camera.K)
    out += _matrix("distortion_coefficients", camera.dist.reshape(5, 1))
    for k, v in (extra or {}).items():
        out += f"{k}: {float(v)!r}\n" if np.isscalar(v) else _matrix(k, np.asarray(v, float))
    return out


def ros_yaml(camera: CameraModel, name: str = "camera") -> str:
    """ROS ``sensor_msgs/CameraInfo`` YAML (plumb_bob = OpenCV's 5 coefficients)."""
    w, h = camera.image_size
    K = camera.K
    P = np.c_[K, np.zeros(3)]

    def row(m):
        return "[" + ", ".join(repr(float(v)) for v in np.ravel(m)) + "]"

    return (f"image_width: {w}\nimage_height: {h}\ncamera_name: {name}\n"
            f"camera_matrix:\n  rows: 3\n  cols: 3\n  data: {row(K)}\n"
            f"distortion_model: plumb_bob\n"
            f"distortion_coefficients:\n  rows: 1\n  cols: 5\n  data: {row(camera.dist)}\n"
            f"rectification_matrix:\n  rows: 3\n  cols: 3\n  data: {row(np.eye(3))}\n"
            f"projection_matrix:\n  rows: 3\n  cols: 4\n  data: {row(P)}\n")


def camera_json(camera: CameraModel, extra: dict | None = None) -> str:
    d = {"image_size": list(camera.image_size), "K": camera.K.tolist(),
         "dist": camera.dist.tolist(), "dist_order": ["k1", "k2", "p1", "p2", "k3"]}
    d.update(extra or {})
    return json.dumps(d, indent=2) + "\n"


def write_camera(path: str | os.PathLike, camera: CameraModel, fmt: str = "opencv",
                 extra: dict | None = None) -> None:
    """Write ``camera`` atomically in ``fmt`` (``opencv``, ``ros`` or ``json``)."""
    if fmt == "opencv":
        text = opencv_yaml(camera, extra)
    elif fmt == "ros":
        text = ros_yaml(camera)
    elif fmt == "json":
        text = camera_json(camera, extra)
    else:
        raise InputError(f"unknown camera file format {fmt!r}; choose one of {FORMATS}")
    atomic_write(path, text)


def read_camera(path: str | os.PathLike) -> CameraModel:
    """Read any of the three formats (sniffed from the content, not the extension)."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read camera file ({exc})") from None
    try:
        if text.lstrip().startswith("{"):
            d = json.loads(text)
            return CameraModel.from_opencv(np.array(d["K"]), np.array(d["dist"]),
                                           tuple(d["image_size"]))
        if text.startswith("%YAML"):
            import cv2

            fs = cv2.FileStorage(str(p), cv2.FILE_STORAGE_READ)
            K = fs.getNode("camera_matrix").mat()
            dist = fs.getNode("distortion_coefficients").mat()
            size = (int(fs.getNode("image_width").real()), int(fs.getNode("image_height").real()))
            fs.release()
            return CameraModel.from_opencv(K, dist, size)
        import yaml

        d = yaml.safe_load(text)
        return CameraModel.from_opencv(np.array(d["camera_matrix"]["data"]).reshape(3, 3),
                                       np.array(d["distortion_coefficients"]["data"]),
                                       (d["image_width"], d["image_height"]))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{p}: not a camera file calib can read ({type(exc).__name__}: {exc})"
                         ) from None
