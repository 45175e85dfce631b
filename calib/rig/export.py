"""Rig files: OpenCV FileStorage YAML, Kalibr camchain YAML, JSON.

OpenCV (written by ``cv2.FileStorage``, so ``cv2.FileStorage(path, READ)`` reads it back):
``camera_names`` (sequence), per camera ``i = 1..C`` ``model_i``, ``image_size_i``
``[w, h]``, ``K{i}``, ``D{i}`` (the model's distortion in OpenCV's order),
``T_cam_ref_{i}`` (4x4), ``rms_px_{i}``; ``rms_px``; for two cameras also ``R, T, E, F, R1,
R2, P1, P2, Q`` (:mod:`calib.rig.stereo`).

Kalibr camchain: ``cam0 .. cam{C-1}`` with ``camera_model``, ``intrinsics``,
``distortion_model``, ``distortion_coeffs``, ``resolution``, ``rostopic`` and, from the
second camera on, ``T_cn_cnm1`` = ``T_cam_n_ref T_cam_{n-1}_ref^-1`` (maps camera n-1's
points into camera n).
"""

from __future__ import annotations

import json

import numpy as np

from ..camera.base import get_model
from ..errors import InputError
from ..io.json_safe import json_safe
from .result import RigResult

FORMATS = ("opencv", "kalibr", "json")
_KALIBR_DIST = {"radtan": "radtan", "equi": "equidistant", "none": "none"}


def opencv_yaml(result: RigResult) -> str:
    """The rig as OpenCV FileStorage YAML text (module docstring)."""
    import cv2

    fs = cv2.FileStorage("rig.yaml", cv2.FILE_STORAGE_WRITE | cv2.FILE_STORAGE_MEMORY)
    fs.startWriteStruct("camera_names", cv2.FileNode_SEQ)
    for c in result.cameras:
        fs.write("", c.name)
    fs.endWriteStruct()
    fs.write("rms_px", float(result.rms_px))
    for i, c in enumerate(result.cameras, start=1):
        fs.write(f"model_{i}", c.model)
        fs.write(f"image_size_{i}", np.array([c.image_size], dtype=np.int32))
        fs.write(f"K{i}", c.K)
        fs.write(f"D{i}", c.dist.reshape(1, -1))
        fs.write(f"T_cam_ref_{i}", np.asarray(result.T_cam_ref[i - 1]))
        fs.write(f"rms_px_{i}", float(c.rms_px))
    if result.stereo is not None:
        for k, v in result.stereo.matrices().items():
            fs.write(k, np.asarray(v, float).reshape(3, -1) if k == "T" else np.asarray(v))
    return fs.releaseAndGetString()


def _kalibr_camera(c) -> dict:
    lens = get_model(c.model)
    if lens.kalibr_name is None:
        raise InputError(f"camera {c.name!r}: Kalibr has no {c.model} model; write "
                         "--format opencv or json")
    cam_model, dist_model = lens.kalibr_name.split("-", 1)
    p = [float(v) for v in c.params]
    intr, dist = p[:4], p[4:]
    if cam_model == "ds":
        intr, dist = dist[:2] + intr, []
    if dist_model == "radtan" and len(dist) > 4:
        if any(dist[4:]):
            raise InputError(f"camera {c.name!r}: Kalibr's radtan has k1, k2, p1, p2 only, "
                             f"and k3 = {dist[4]:.3g}; fit with k3 held at 0 (--fix k3)")
        dist = dist[:4]
    return {"camera_model": cam_model, "intrinsics": intr,
            "distortion_model": _KALIBR_DIST.get(dist_model, dist_model),
            "distortion_coeffs": dist, "resolution": [int(v) for v in c.image_size],
            "rostopic": f"/{c.name}/image_raw"}


def kalibr_yaml(result: RigResult) -> str:
    """The rig as a Kalibr camchain (module docstring)."""
    lines = []
    T = result.T_cam_ref
    for n, c in enumerate(result.cameras):
        lines.append(f"cam{n}:")
        if n:
            rel = T[n] @ np.linalg.inv(T[n - 1])
            lines.append("  T_cn_cnm1:")
            lines += ["  - [" + ", ".join(repr(float(v)) for v in row) + "]" for row in rel]
        for k, v in _kalibr_camera(c).items():
            val = v if isinstance(v, str) else "[" + ", ".join(repr(x) for x in v) + "]"
            lines.append(f"  {k}: {val}")
    return "\n".join(lines) + "\n"


def rig_json(result: RigResult) -> str:
    """The rig (cameras, extrinsics, stereo entries) as JSON text; non-finite values as
    null."""
    d = result.to_dict()
    out = {k: d[k] for k in ("reference", "cameras", "extrinsics", "rms_px")}
    if "stereo" in d:
        out["stereo"] = d["stereo"]
    return json.dumps(json_safe(out), indent=2) + "\n"


def rig_text(result: RigResult, fmt: str) -> str:
    """The rig file's text in ``fmt`` (one of :data:`FORMATS`)."""
    writers = {"opencv": opencv_yaml, "kalibr": kalibr_yaml, "json": rig_json}
    if fmt not in writers:
        raise InputError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return writers[fmt](result)
