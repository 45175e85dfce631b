"""Kalibr-style ``target.yaml``: a calibration target from a file.

``target_type`` and its fields (the contract)::

    checkerboard: targetCols, targetRows (inner corners), rowSpacingMeters, colSpacingMeters
    aprilgrid:    tagCols, tagRows, tagSize (m), tagSpacing (ratio), [tagFamily: t36h11]
    charuco:      squaresX, squaresY, squareLength (m), markerLength (m),
                  dictionary (OpenCV name, e.g. DICT_4X4_250), [legacyPattern: false]
    circlegrid:   cols, rows, spacingMeters, [asymmetric: false], [originMark: false]

yac's spelling of an AprilGrid (``tag_cols``, ``tag_rows``, ``tag_size``, ``tag_spacing``)
is read as well, also nested under ``calib_target:`` as in yac's calibration configs.

Every problem is one :class:`InputError` line naming the file and the field.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..errors import InputError
from .base import Target

_FIELDS = {
    "checkerboard": (("targetCols", int), ("targetRows", int), ("rowSpacingMeters", float),
                     ("colSpacingMeters", float)),
    "aprilgrid": (("tagCols", int), ("tagRows", int), ("tagSize", float),
                  ("tagSpacing", float)),
    "charuco": (("squaresX", int), ("squaresY", int), ("squareLength", float),
                ("markerLength", float), ("dictionary", str)),
    "circlegrid": (("cols", int), ("rows", int), ("spacingMeters", float)),
}
#: yac's snake_case field names -> Kalibr's (the fields above).
_YAC_NAMES = {"tag_cols": "tagCols", "tag_rows": "tagRows", "tag_size": "tagSize",
              "tag_spacing": "tagSpacing", "tag_family": "tagFamily"}
_OPTIONAL = {"aprilgrid": {"tagFamily": "t36h11"}, "charuco": {"legacyPattern": False},
             "circlegrid": {"asymmetric": False, "originMark": False}}


def _value(d: dict, key: str, kind: type, where: str):
    if key not in d or d[key] is None:
        raise InputError(f"{where}: missing field {key!r}")
    v = d[key]
    if kind is str:
        if not isinstance(v, str):
            raise InputError(f"{where}: {key} must be a name, got {v!r}")
        return v
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InputError(f"{where}: {key} must be a number, got {v!r}")
    if kind is int and (v != int(v)):
        raise InputError(f"{where}: {key} must be a whole number, got {v!r}")
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{where}: {key} must be positive, got {v!r}")
    return kind(v)


def _flag(d: dict, key: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise InputError(f"{key} must be true or false, got {v!r}")
    return v


def target_from_dict(d: dict, where: str = "target") -> Target:
    """A :class:`Target` from a parsed target.yaml mapping (module docstring)."""
    if not isinstance(d, dict):
        raise InputError(f"{where}: expected a mapping with target_type, got "
                         f"{type(d).__name__}")
    if "target_type" not in d and isinstance(d.get("calib_target"), dict):
        d = d["calib_target"]  # a yac calibration config
    d = {_YAC_NAMES.get(k, k): v for k, v in d.items()  # Kalibr's name wins when both given
         if not (k in _YAC_NAMES and _YAC_NAMES[k] in d)}
    kind = d.get("target_type")
    if kind not in _FIELDS:
        raise InputError(f"{where}: unknown target_type {kind!r}; use one of "
                         f"{', '.join(_FIELDS)}" if kind is not None
                         else f"{where}: missing field 'target_type'")
    v = {key: _value(d, key, typ, where) for key, typ in _FIELDS[kind]}
    try:
        return _build(kind, v, d, where)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _build(kind: str, v: dict, d: dict, where: str) -> Target:
    if kind == "checkerboard":
        from .chessboard import Chessboard

        return Chessboard(v["targetCols"], v["targetRows"], v["colSpacingMeters"],
                          square_y=v["rowSpacingMeters"])
    if kind == "aprilgrid":
        from .aprilgrid import AprilGrid

        fam = d.get("tagFamily", _OPTIONAL["aprilgrid"]["tagFamily"])
        return AprilGrid(v["tagCols"], v["tagRows"], v["tagSize"], v["tagSpacing"], str(fam))
    if kind == "charuco":
        from .charuco import Charuco

        return Charuco(v["squaresX"], v["squaresY"], v["squareLength"], v["markerLength"],
                       v["dictionary"], _flag(d, "legacyPattern", False))
    from .circlegrid import CircleGrid

    return CircleGrid(v["cols"], v["rows"], v["spacingMeters"],
                      _flag(d, "asymmetric", False), _flag(d, "originMark", False))


def load_target(path: str | os.PathLike) -> Target:
    """Read a target.yaml (module docstring); one-line :class:`InputError` on any problem."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: target file does not exist")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: not a readable YAML file ({line})") from None
    return target_from_dict(d, str(p))
