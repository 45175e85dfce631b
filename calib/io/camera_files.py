"""Camera files for every lens model: OpenCV FileStorage YAML, ROS ``camera_info`` YAML,
Kalibr camchain YAML and JSON.

Model names in files (``distortion_model``): ``plumb_bob`` (pinhole), ``rational_polynomial``
(rational), ``equidistant`` (fisheye; ``kannala_brandt`` and ``fisheye`` are read too),
``double_sphere``. ROS ``camera_info`` has no double-sphere model and Kalibr has no rational
one (and its ``radtan`` has no ``k3``): writing those is refused, never approximated.

Reading (:func:`read_camera`) sniffs the format from the content, dispatches on the model
name and refuses names it cannot represent. It is safe on hostile files: the path must be a
regular file (not a FIFO or device) of at most :data:`MAX_CAMERA_FILE_BYTES`, and YAML
aliases are refused (a "billion laughs" file expands a few hundred bytes into gigabytes).
"""

from __future__ import annotations

import json
import logging
import os
import re

import numpy as np

from ..camera.base import get_model
from ..camera.camera import Camera
from ..errors import InputError
from .atomic import atomic_write
from .validate import check_file

log = logging.getLogger(__name__)

FORMATS = ("opencv", "ros", "kalibr", "json")

#: Camera files larger than this are refused before reading (bytes).
MAX_CAMERA_FILE_BYTES = 1 << 20

#: ``distortion_model`` written for each calib model.
DISTORTION_MODEL = {"pinhole": "plumb_bob", "rational": "rational_polynomial",
                    "fisheye": "equidistant", "double-sphere": "double_sphere"}
_READ_NAMES = {**{v: k for k, v in DISTORTION_MODEL.items()}, "kannala_brandt": "fisheye",
               "fisheye": "fisheye", "pinhole": "pinhole", "rational": "rational",
               "double-sphere": "double-sphere", "ds": "double-sphere"}

#: Kalibr ``(camera_model, distortion_model)`` of each calib model it has.
KALIBR_NAMES = {"pinhole": ("pinhole", "radtan"), "fisheye": ("pinhole", "equidistant"),
                "double-sphere": ("ds", "none")}


def model_from_distortion_name(name: str) -> str:
    """calib's model name for a ``distortion_model`` string, or :class:`InputError`."""
    key = str(name).strip().lower()
    if key not in _READ_NAMES:
        raise InputError(f"distortion_model {name!r} is not one calib can represent; known: "
                         f"{', '.join(DISTORTION_MODEL.values())}")
    return _READ_NAMES[key]


def _num(v: float) -> str:
    """``v`` exactly (repr) in a form every YAML 1.1 parser reads as a float: PyYAML (ROS,
    Kalibr) reads ``-5e-05`` as a string, so the mantissa always gets a dot."""
    s = repr(float(v))
    if "e" in s and "." not in s:
        s = s.replace("e", ".0e")
    return s


def _row(values) -> str:
    return "[" + ", ".join(_num(v) for v in np.ravel(values)) + "]"


def _matrix(name: str, m: np.ndarray) -> str:
    m = np.atleast_2d(m)
    data = ", ".join(_num(v) for v in m.ravel())
    return (f"{name}: !!opencv-matrix\n   rows: {m.shape[0]}\n   cols: {m.shape[1]}\n"
            f"   dt: d\n   data: [ {data} ]\n")


def opencv_yaml(camera: Camera, extra: dict | None = None) -> str:
    """Text readable by ``cv2.FileStorage``: ``camera_matrix``, ``distortion_coefficients``
    (a column in the model's OpenCV order; ``[xi, alpha]`` for double-sphere),
    ``distortion_model``, ``image_width``, ``image_height`` and ``extra`` (numbers or
    matrices)."""
    w, h = camera.image_size
    out = f"%YAML:1.0\n---\nimage_width: {w}\nimage_height: {h}\n"
    out += f'distortion_model: "{DISTORTION_MODEL[camera.model]}"\n'
    out += _matrix("camera_matrix", camera.K)
    out += _matrix("distortion_coefficients", camera.dist.reshape(-1, 1))
    for k, v in (extra or {}).items():
        out += f"{k}: {_num(v)}\n" if np.isscalar(v) else _matrix(k, np.asarray(v, float))
    return out


def ros_projection(camera: Camera) -> np.ndarray:
    """The ``(3, 4)`` rectified projection matrix ``P`` ROS's ``camera_calibration`` writes
    for a monocular camera (its ``set_alpha(0)``): ``cv2.getOptimalNewCameraMatrix(K, D,
    size, alpha=0)`` for plumb_bob and rational_polynomial, ``K`` for equidistant."""
    K, dist = camera.to_opencv()
    if camera.model == "fisheye":
        new = K
    else:
        import cv2

        new, _ = cv2.getOptimalNewCameraMatrix(K, dist, camera.image_size, 0.0)
    if not np.isfinite(new).all() or new[0, 0] <= 0 or new[1, 1] <= 0:
        raise InputError("cannot compute the rectified projection matrix P for ROS "
                         "camera_info: the distortion is not invertible over the image")
    return np.c_[new, np.zeros(3)]


def ros_yaml(camera: Camera, name: str = "camera") -> str:
    """ROS ``sensor_msgs/CameraInfo`` YAML (as ``camera_calibration`` writes ``ost.yaml``)."""
    if get_model(camera.model).ros_name is None:
        raise InputError(f"ROS camera_info has no {camera.model} model; write it with "
                         "--format opencv, kalibr or json")
    w, h = camera.image_size
    row = _row
    dist = camera.dist
    return (f"image_width: {w}\nimage_height: {h}\ncamera_name: {name}\n"
            f"camera_matrix:\n  rows: 3\n  cols: 3\n  data: {row(camera.K)}\n"
            f"distortion_model: {DISTORTION_MODEL[camera.model]}\n"
            f"distortion_coefficients:\n  rows: 1\n  cols: {dist.size}\n  data: {row(dist)}\n"
            f"rectification_matrix:\n  rows: 3\n  cols: 3\n  data: {row(np.eye(3))}\n"
            f"projection_matrix:\n  rows: 3\n  cols: 4\n  data: {row(ros_projection(camera))}\n")


def kalibr_yaml(camera: Camera) -> str:
    """A Kalibr camchain with one camera ``cam0`` (``camera_model``, ``intrinsics``,
    ``distortion_model``, ``distortion_coeffs``, ``resolution``; Kalibr's field names and
    orders: pinhole ``[fu, fv, pu, pv]``, ds ``[xi, alpha, fu, fv, pu, pv]``)."""
    if camera.model not in KALIBR_NAMES:
        raise InputError(f"Kalibr has no {camera.model} model; it has pinhole-radtan, "
                         "pinhole-equi and ds-none")
    cam_model, dist_model = KALIBR_NAMES[camera.model]
    intr, coeffs = camera.lens.to_kalibr(camera.params)
    w, h = camera.image_size
    return (f"cam0:\n  camera_model: {cam_model}\n  intrinsics: {_row(intr)}\n"
            f"  distortion_model: {dist_model}\n  distortion_coeffs: {_row(coeffs)}\n"
            f"  resolution: [{w}, {h}]\n")


def camera_json(camera: Camera, extra: dict | None = None) -> str:
    d = {"model": camera.model, "image_size": list(camera.image_size), "K": camera.K.tolist(),
         "dist": camera.dist.tolist(), "dist_order": list(camera.lens.dist_names)}
    d.update(extra or {})
    return json.dumps(d, indent=2, allow_nan=False) + "\n"


def write_camera(path: str | os.PathLike, camera: Camera, fmt: str = "opencv",
                 extra: dict | None = None) -> None:
    """Write ``camera`` atomically in ``fmt`` (one of :data:`FORMATS`); ``extra`` (e.g. the
    fit's RMS) goes into the opencv and json formats."""
    writers = {"opencv": lambda: opencv_yaml(camera, extra), "ros": lambda: ros_yaml(camera),
               "kalibr": lambda: kalibr_yaml(camera), "json": lambda: camera_json(camera, extra)}
    if fmt not in writers:
        raise InputError(f"unknown camera file format {fmt!r}; choose one of "
                         f"{', '.join(FORMATS)}")
    atomic_write(path, writers[fmt]())


#: a YAML anchor (``&name``) or alias (``*name``) as a node, not inside a word
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])[&*][^\s\[\]{},]", re.MULTILINE)


def _refuse_deep_nesting(text: str, limit: int = 16) -> None:
    """Camera files nest three levels at most; a file of 100,000 brackets would take the
    parsers seconds to give up on (Python's recursion limit)."""
    b = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(b, (91, 123)).astype(np.int32) - np.isin(b, (93, 125))  # [{ and ]}
    if b.size and np.cumsum(step).max() > limit:
        raise InputError(f"brackets nest deeper than {limit} levels: not a camera file")


def _refuse_aliases(text: str) -> None:
    if _ANCHOR.search(text):
        raise InputError("YAML anchors and aliases are not allowed in camera files")


def _safe_yaml(text: str):
    """``yaml.safe_load`` that refuses aliases (no "billion laughs" expansion)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise InputError("YAML aliases are not allowed in camera files")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)


def _from_opencv_storage(text: str, model: str | None) -> Camera:
    import cv2

    fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    try:
        K = fs.getNode("camera_matrix").mat()
        dist = fs.getNode("distortion_coefficients").mat()
        name = fs.getNode("distortion_model")
        name = name.string() if not name.empty() else "plumb_bob"
        size = (int(fs.getNode("image_width").real()), int(fs.getNode("image_height").real()))
    finally:
        fs.release()
    if K is None or dist is None:
        raise InputError("no camera_matrix / distortion_coefficients")
    return Camera.from_opencv(K, dist, size, model or model_from_distortion_name(name))


def _from_kalibr(d: dict, model: str | None) -> Camera:
    cam = d["cam0"]
    key = (str(cam["camera_model"]).lower(), str(cam["distortion_model"]).lower())
    key = (key[0], {"equi": "equidistant", "none": "radtan"}.get(key[1], key[1])
           if key[0] == "pinhole" else key[1])  # pinhole-none: radtan with no coefficients
    found = [m for m, k in KALIBR_NAMES.items() if k == key]
    if not found:
        raise InputError(f"Kalibr model {cam['camera_model']}-{cam['distortion_model']} is "
                         "not one calib can represent; known: pinhole-radtan, pinhole-equi, "
                         "ds-none")
    lens = get_model(found[0])
    params = lens.from_kalibr(cam["intrinsics"], cam.get("distortion_coeffs") or [])
    if model is not None and model != lens.name:
        raise InputError(f"a Kalibr {lens.kalibr_name} camera cannot be read as {model}")
    return Camera(params, tuple(cam["resolution"]), lens.name)


def _from_ros(d: dict, model: str | None, where: str = "camera file") -> Camera:
    K = np.array(d["camera_matrix"]["data"], dtype=float).reshape(3, 3)
    dist = np.array(d["distortion_coefficients"]["data"], dtype=float)
    label = d.get("distortion_model", "plumb_bob")
    if model is None and label == "plumb_bob" and dist.size == 4:
        # ROS writes five plumb_bob coefficients; its fisheye calibrator writes its four
        # equidistant k1..k4 under this label (then the rectified P's focal length is a
        # fraction of K's, as cv2.fisheye's new camera matrix shrinks it)
        P = d.get("projection_matrix")
        P = P.get("data") if isinstance(P, dict) else None
        shrunk = (isinstance(P, list) and len(P) == 12 and type(P[0]) in (int, float)
                  and 0 < P[0] < 0.5 * K[0, 0])
        log.warning("%s: 4 coefficients labelled plumb_bob are read as pinhole k1, k2, p1, p2 "
                    "(ROS writes 5 for plumb_bob; its fisheye calibrator writes its k1..k4 under "
                    "this label%s): if the lens is a fisheye, pass --model fisheye",
                    where, ", and this file's projection matrix has the shrunken "
                    "focal length of a fisheye rectification" if shrunk else "")
    name = model or model_from_distortion_name(label)
    return Camera.from_opencv(K, dist, (d["image_width"], d["image_height"]), name)


def _from_json(d: dict, model: str | None) -> Camera:
    name = model or d.get("model", "pinhole")
    return Camera.from_opencv(np.array(d["K"], dtype=float), np.array(d["dist"], dtype=float),
                              tuple(d["image_size"]), name)


#: a key whose value is tagged ``!!opencv-matrix`` (not the text in a comment)
_OPENCV_MATRIX = re.compile(r"^[^#\n]*:\s*!!opencv-matrix", re.M)


def _opencv_storage(text: str) -> bool:
    """Is ``text`` an OpenCV FileStorage YAML file: ``%YAML:1.0`` (what OpenCV 4 and calib
    write) or ``%YAML 1.2`` with values tagged ``!!opencv-matrix`` (what OpenCV 5 writes)?"""
    return text.startswith("%YAML:") or (text.startswith("%YAML") and
                                          _OPENCV_MATRIX.search(text) is not None)


def read_camera(path: str | os.PathLike, model: str | None = None) -> Camera:
    """Read a camera file in any of :data:`FORMATS` (sniffed from the content).

    Args:
        path: the file (a regular file of at most :data:`MAX_CAMERA_FILE_BYTES`).
        model: read the coefficients as this model instead of the file's own name (for files
            that mislabel their model, e.g. a fisheye ``ost.yaml`` saying ``plumb_bob``).

    Raises:
        InputError: unreadable, unknown format or model, bad values (one line naming ``path``).
    """
    p = check_file(path, "camera file")
    if p.stat().st_size > MAX_CAMERA_FILE_BYTES:
        raise InputError(f"{p}: camera file is {p.stat().st_size} bytes, over the "
                         f"{MAX_CAMERA_FILE_BYTES} byte limit for camera files")
    if model is not None:
        model = get_model(model).name
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read camera file ({exc})") from None
    try:
        _refuse_deep_nesting(text)
        if text.lstrip().startswith("{"):
            return _from_json(json.loads(text), model)
        if _opencv_storage(text):  # OpenCV's parser: refuse anchors before it sees them
            _refuse_aliases(text)
            return _from_opencv_storage(text, model)
        d = _safe_yaml(text)
        if not isinstance(d, dict):
            raise InputError("not a YAML mapping")
        if "cam0" in d:
            return _from_kalibr(d, model)
        return _from_ros(d, model, str(p))
    except InputError as exc:
        msg = str(exc)
        raise InputError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    except Exception as exc:
        raise InputError(f"{p}: not a camera file calib can read ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
