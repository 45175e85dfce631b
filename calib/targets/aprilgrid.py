"""AprilGrid target (Kalibr's layout): ``tag_cols x tag_rows`` AprilTags with 4 points each.

Tag ``t`` sits at column ``t % tag_cols``, row ``t // tag_cols``; tags are ``tag_size``
metres (edge of the black square) with gaps of ``tag_spacing * tag_size``. Points form a
``(2 tag_rows) x (2 tag_cols)`` grid numbered row-major, as Kalibr numbers them: corner
``k`` of tag ``t`` is point ``(2 r + k // 2 ... )`` with Kalibr's corner order
0 = (x0, y0), 1 = (x0 + s, y0), 2 = (x0 + s, y0 + s), 3 = (x0, y0 + s), where
``(x0, y0) = (c, r) * s * (1 + spacing)``. Kalibr's board frame has y "up" on the print
and z out of the printed face.

Detection: OpenCV's ArUco detector with the AprilTag dictionary and
``markerBorderBits = 2`` (Kalibr prints a 2-bit black border), then each corner refined
to sub-pixel by ``cornerSubPix`` with a window scaled to the tag's size in the image
(measured against rendered truth: bench/bench_targets.py). Tags whose id is not on the
grid get point ids >= the number of points (the view filter drops and counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import cv2
import numpy as np

from ..errors import InputError
from .base import Target

#: Kalibr tag family names -> OpenCV dictionaries.
FAMILIES = {"t36h11": "DICT_APRILTAG_36h11", "t36h10": "DICT_APRILTAG_36h10",
            "t25h9": "DICT_APRILTAG_25h9", "t16h5": "DICT_APRILTAG_16h5"}
#: cv2 corner ``CV2_TO_KALIBR[k]`` is Kalibr corner ... : cv2 [0, 1, 2, 3] = Kalibr [1, 0, 3, 2]
#: (checked against yac's Kalibr-convention detections of the real D435i images).
CV2_TO_KALIBR = np.array([1, 0, 3, 2])
#: cornerSubPix half-window as a fraction of the tag's edge in pixels, clipped to [2, 8].
SUBPIX_FRACTION = 0.1


def family_dictionary(family: str) -> str:
    key = str(family).strip().lower().replace("tag", "t", 1) if str(family).lower().startswith(
        "tag") else str(family).strip().lower()
    if key not in FAMILIES:
        raise InputError(f"unknown tagFamily {family!r}; use one of {', '.join(FAMILIES)}")
    return FAMILIES[key]


@dataclass(frozen=True)
class AprilGrid(Target):
    """Kalibr AprilGrid (module docstring): ``tag_size`` metres, ``tag_spacing`` a ratio."""

    name: ClassVar[str] = "aprilgrid"

    tag_cols: int
    tag_rows: int
    tag_size: float
    tag_spacing: float
    family: str = "t36h11"
    refine: str = "subpix"  # "subpix" (ours) or "none" (OpenCV's corners as they come)

    def __post_init__(self) -> None:
        if self.tag_cols < 1 or self.tag_rows < 1:
            raise InputError(f"an AprilGrid needs at least 1x1 tags, got "
                             f"{self.tag_cols}x{self.tag_rows}")
        if not (np.isfinite(self.tag_size) and self.tag_size > 0):
            raise InputError(f"tagSize must be a positive number of metres, got "
                             f"{self.tag_size}")
        if not (np.isfinite(self.tag_spacing) and self.tag_spacing > 0):
            raise InputError(f"tagSpacing must be a positive ratio, got {self.tag_spacing}")
        d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, family_dictionary(self.family)))
        if d.bytesList.shape[0] < self.num_tags:
            raise InputError(f"tag family {self.family} has {d.bytesList.shape[0]} tags, the grid "
                             f"needs {self.num_tags}")

    @property
    def num_tags(self) -> int:
        return self.tag_cols * self.tag_rows

    @property
    def spacing(self) -> float:
        return self.tag_size

    def describe(self) -> str:
        return f"{self.tag_cols}x{self.tag_rows} AprilGrid ({self.family})"

    def points(self) -> np.ndarray:
        """``(4 tags, 3)``: the row-major ``(2 rows) x (2 cols)`` grid of tag corners."""
        nc = 2 * self.tag_cols
        i = np.arange(4 * self.num_tags)
        c, r = i % nc, i // nc
        pitch = self.tag_size * (1.0 + self.tag_spacing)
        x = (c // 2) * pitch + (c % 2) * self.tag_size
        y = (r // 2) * pitch + (r % 2) * self.tag_size
        return np.stack([x, y, np.zeros(len(i))], axis=1)

    def point_ids(self, tag_ids: np.ndarray) -> np.ndarray:
        """``(T, 4)`` point ids of tags ``tag_ids`` in Kalibr's corner order; tags not on the
        grid get ids >= the number of points."""
        t = np.asarray(tag_ids, dtype=np.int64).reshape(-1, 1)
        k = np.arange(4)[None, :]
        nc = 2 * self.tag_cols
        on = (t >= 0) & (t < self.num_tags)
        base = (2 * (t // self.tag_cols) + k // 2) * nc + 2 * (t % self.tag_cols) + \
            np.where(k // 2 == 1, 1 - k % 2, k % 2)
        return np.where(on, base, 4 * self.num_tags + 4 * np.abs(t) + k)

    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        corners, ids, _ = _detector(self.family).detectMarkers(gray)
        if ids is None or not len(ids):
            return f"no {self.family} tags found"
        uv = np.asarray(corners, dtype=np.float32).reshape(-1, 4, 2)
        if self.refine == "subpix":
            uv = refine_tag_corners(gray, uv)
        uv_k = np.empty_like(uv)
        uv_k[:, CV2_TO_KALIBR] = uv  # cv2 corner j is Kalibr corner CV2_TO_KALIBR[j]
        pid = self.point_ids(ids.reshape(-1))
        return pid.reshape(-1), uv_k.reshape(-1, 2).astype(float)


def refine_tag_corners(gray: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """``uv (T, 4, 2)`` tag corners refined by ``cornerSubPix``, the half-window
    :data:`SUBPIX_FRACTION` x the tag's shortest edge (pixels), in [2, 8]."""
    edges = np.linalg.norm(uv - np.roll(uv, 1, axis=1), axis=2).min(axis=1)
    win = np.clip((SUBPIX_FRACTION * edges).astype(int), 2, 8)
    out = uv.astype(np.float32).copy()
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 50, 1e-3)
    for w in np.unique(win):
        sel = win == w
        pts = np.ascontiguousarray(out[sel].reshape(-1, 1, 2))
        out[sel] = cv2.cornerSubPix(gray, pts, (int(w), int(w)), (-1, -1), crit).reshape(-1, 4, 2)
    return out


@lru_cache(maxsize=8)
def _detector(family: str) -> cv2.aruco.ArucoDetector:
    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, family_dictionary(family)))
    p = cv2.aruco.DetectorParameters()
    p.markerBorderBits = 2
    return cv2.aruco.ArucoDetector(d, p)
