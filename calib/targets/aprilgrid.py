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
to sub-pixel by intersecting straight lines fitted to the tag's edges
(:func:`refine_tag_corners`). Tags whose id is not on the
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
_PROFILE = 13  # samples across an edge


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
    refine: str = "edges"  # "edges" (refine_tag_corners) or "none" (OpenCV's corners)

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
        if self.refine == "edges":
            uv = refine_tag_corners(gray, uv)
        uv_k = np.empty_like(uv)
        uv_k[:, CV2_TO_KALIBR] = uv  # cv2 corner j is Kalibr corner CV2_TO_KALIBR[j]
        pid = self.point_ids(ids.reshape(-1))
        return pid.reshape(-1), uv_k.reshape(-1, 2).astype(float)


def _edge_points(img: np.ndarray, uv: np.ndarray, samples: int) -> np.ndarray:
    """Sub-pixel points ``(T, 4, samples, 2)`` on the 4 outer edges of each tag: along
    edge ``k`` (corner ``k`` to ``k + 1``), the gradient-weighted centre of an intensity
    profile across the edge, ``+-`` 0.8 of a border bit long (at least 1 px)."""
    p0 = uv.astype(np.float32)
    e = np.roll(p0, -1, axis=1) - p0
    length = np.sqrt((e * e).sum(-1))  # (T, 4)
    nx, ny = -e[..., 1] / length, e[..., 0] / length
    # 0.8 of a border bit across the edge: the bit size across edge k comes from the
    # neighbouring edges k - 1 and k + 1 (a foreshortened tag is narrow across its long edges)
    across = np.minimum(np.roll(length, 1, axis=1), np.roll(length, -1, axis=1))
    half = np.maximum(0.08 * across, 1.0)
    t = np.linspace(0.12, 0.88, samples, dtype=np.float32)
    q = p0[:, :, None] + t[None, None, :, None] * e[:, :, None]  # (T, 4, M, 2)
    unit = np.linspace(-1.0, 1.0, _PROFILE, dtype=np.float32)
    off = half[..., None, None] * unit  # (T, 4, 1, S)
    mx = (q[..., 0, None] + off * nx[..., None, None]).reshape(-1, _PROFILE)
    my = (q[..., 1, None] + off * ny[..., None, None]).reshape(-1, _PROFILE)
    # 8-bit interpolation: its rounding (0.3 grey levels rms) is far below sensor noise
    v = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    g = np.abs(np.diff(v.astype(np.float32), axis=-1))
    g = np.where(g >= 0.3 * g.max(axis=-1, keepdims=True), g, 0.0)
    g *= g
    mid = 0.5 * (unit[1:] + unit[:-1])
    loc = (g @ mid / np.maximum(g.sum(-1), 1e-12)).reshape(q.shape[:-1]) * half[..., None]
    return q + loc[..., None] * np.stack([nx, ny], axis=-1)[:, :, None]


def refine_tag_corners(gray: np.ndarray, uv: np.ndarray, iterations: int = 1,
                       samples: int = 12) -> np.ndarray:
    """``uv (T, 4, 2)`` tag corners (in order around each tag) refined to sub-pixel: a
    straight line is fitted (total least squares) to sub-pixel points on each of the tag's
    4 outer edges, and each corner is the intersection of its two edges' lines.

    A tag corner is an L-corner, where ``cornerSubPix`` is biased by blur; the edges are
    straight and unbiased. Measured on rendered AprilGrids (bench/bench_targets.py): median
    error 0.08 px against 0.23 px (cornerSubPix, best window) and 0.55-0.69 px (OpenCV's
    own refinements). A corner that would move more than 0.15 tag edges keeps its value.
    """
    img = np.ascontiguousarray(gray, dtype=np.uint8)
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 4, 2)
    for _ in range(iterations):
        e = _edge_points(img, uv, samples)
        c = e.mean(axis=2)  # (T, 4, 2) a point on each edge line
        x = e - c[:, :, None]
        sxx, syy = (x[..., 0] ** 2).sum(-1), (x[..., 1] ** 2).sum(-1)
        sxy = (x[..., 0] * x[..., 1]).sum(-1)
        th = 0.5 * np.arctan2(2 * sxy, sxx - syy)  # principal direction of the edge points
        dirs = np.stack([np.cos(th), np.sin(th)], axis=-1)
        ca, da = np.roll(c, 1, axis=1), np.roll(dirs, 1, axis=1)  # edge k - 1
        # corner k: ca + s da on line k (through c along dirs): s = (c - ca) x dirs / da x dirs
        den = da[..., 0] * dirs[..., 1] - da[..., 1] * dirs[..., 0]
        num = (c - ca)[..., 0] * dirs[..., 1] - (c - ca)[..., 1] * dirs[..., 0]
        good = np.abs(den) > 0.1  # edges at least ~6 deg apart
        new = ca + (num / np.where(good, den, 1.0))[..., None] * da
        length = np.linalg.norm(uv - np.roll(uv, -1, axis=1), axis=2)
        ok = good & np.all(np.isfinite(new), axis=-1) & \
            (np.linalg.norm(new - uv, axis=2) < 0.15 * length)
        uv = np.where(ok[..., None], new, uv)
    return uv


@lru_cache(maxsize=8)
def _detector(family: str) -> cv2.aruco.ArucoDetector:
    d = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, family_dictionary(family)))
    p = cv2.aruco.DetectorParameters()
    p.markerBorderBits = 2
    return cv2.aruco.ArucoDetector(d, p)
