"""Circle grid target: ``cols x rows`` dots, symmetric or asymmetric (OpenCV's layouts).

Point ``i`` (row ``r = i // cols``, column ``c = i % cols``) sits at ``(c s, r s, 0)`` on a
symmetric grid and at ``((2 c + r % 2) s, r s, 0)`` on an asymmetric one (OpenCV's
calibration sample; ``s`` = ``spacing``). Detection is ``cv2.findCirclesGrid``, whole
grid or nothing; light dots on dark are found on the inverted image.

The order is made consistent between views: the printed face is always seen from the
front, so the image of the board's x axis crossed with its y axis must point the same way
in every view; a labelling that comes out mirrored (findCirclesGrid does not fix the
handedness of a symmetric grid) is re-labelled. A symmetric grid is still ambiguous up
to a 180-degree turn (and 90 degrees when square): harmless for intrinsics, not for
multi-camera or hand-eye work, which need an asymmetric grid or an origin mark.

Origin mark (``origin_mark=True``, target.yaml ``originMark: true``): one corner dot is
printed larger (ROS-Industrial's "modified circle grid"); the labelling is turned, keeping
its handedness, so that the large dot is point 0 in every view. Which corner dot is the
large one is measured in the image: each corner dot's blob area (Otsu threshold of the
window around it) over its two neighbours' (so perspective cancels); the largest ratio must
reach 1.5 and exceed the next by a quarter, or the view is refused. On a grid that is not
square only a 180-degree turn keeps the shape, so the mark must sit at the first or last
point.

Centre bias: the image of a circle's centre is not the centre of the imaged ellipse; the
detected blob centres carry that perspective bias (measured: bench/bench_targets.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from ..errors import InputError
from .base import Target

#: A marked origin dot covers at least this many times the area of its neighbours.
MARK_RATIO = 1.5


@dataclass(frozen=True)
class CircleGrid(Target):
    name: ClassVar[str] = "circlegrid"

    cols: int
    rows: int
    spacing_m: float
    asymmetric: bool = False
    origin_mark: bool = False

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2 or (self.cols * self.rows < 4):
            raise InputError(f"a circle grid needs at least 2x2 circles, got "
                             f"{self.cols}x{self.rows}")
        if not (np.isfinite(self.spacing_m) and self.spacing_m > 0):
            raise InputError(f"spacingMeters must be a positive number of metres, got "
                             f"{self.spacing_m}")
        if self.origin_mark and self.asymmetric:
            raise InputError("originMark is for symmetric circle grids (an asymmetric grid "
                             "has no ambiguity to resolve)")

    @property
    def spacing(self) -> float:
        return self.spacing_m

    def describe(self) -> str:
        kind = "asymmetric" if self.asymmetric else "symmetric"
        mark = " with an origin mark" if self.origin_mark else ""
        return f"{self.cols}x{self.rows} {kind} circle grid{mark}"

    def points(self) -> np.ndarray:
        i = np.arange(self.cols * self.rows)
        c, r = i % self.cols, i // self.cols
        x = (2 * c + r % 2) if self.asymmetric else c
        return np.stack([x * self.spacing_m, r * self.spacing_m, np.zeros(len(i))], axis=1)

    def detect(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
        flags = cv2.CALIB_CB_ASYMMETRIC_GRID if self.asymmetric else cv2.CALIB_CB_SYMMETRIC_GRID
        for img in (gray, 255 - gray):
            ok, centres = cv2.findCirclesGrid(img, (self.cols, self.rows), flags=flags)
            if ok:
                uv = centres.reshape(-1, 2).astype(float)
                if _repeated(uv):
                    return (f"no {self.describe()} found (the grid finder returned repeated "
                            "centres)")
                uv = self._consistent(uv)
                if self.origin_mark:
                    uv = self._origin_first(img, uv)
                    if isinstance(uv, str):
                        return uv
                return np.arange(len(uv)), uv
        return f"no {self.describe()} found"

    def _consistent(self, uv: np.ndarray) -> np.ndarray:
        """Re-label a mirrored labelling (see the module docstring)."""
        if self.asymmetric:
            return uv
        g = uv.reshape(self.rows, self.cols, 2)
        ex, ey = g[0, -1] - g[0, 0], g[-1, 0] - g[0, 0]
        if ex[0] * ey[1] - ex[1] * ey[0] >= 0:
            return uv
        if self.rows == self.cols:
            return g.transpose(1, 0, 2).reshape(-1, 2)
        return g[::-1].reshape(-1, 2)

    def _origin_first(self, dark_dots: np.ndarray, uv: np.ndarray) -> np.ndarray | str:
        """``uv`` re-labelled so that the large corner dot is point 0 (module docstring);
        ``dark_dots``: the image with the dots dark. A reason string when no corner dot
        stands out or the mark sits where no handedness-keeping turn can bring it."""
        g = uv.reshape(self.rows, self.cols, 2)
        spacing = max(float(np.median(np.linalg.norm(np.diff(g, axis=a), axis=2)))
                      for a in (0, 1))
        corners = [(0, 0), (0, -1), (-1, -1), (-1, 0)]  # np.rot90(g, k) brings k-th to (0, 0)
        ratio = []
        for r, c in corners:  # the dot's area over its two neighbours' (perspective-free)
            nb = [(r, c + (1 if c == 0 else -1)), (r + (1 if r == 0 else -1), c)]
            a = [_blob_area(dark_dots, g[i], spacing) for i in [(r, c), *nb]]
            ratio.append(a[0] / max(np.mean(a[1:]), 1.0))
        order = np.argsort(ratio)[::-1]
        if ratio[order[0]] < MARK_RATIO or ratio[order[0]] < 1.25 * ratio[order[1]]:
            return "origin mark not found (no corner dot is larger than the others)"
        k = int(order[0])
        if self.rows != self.cols and k % 2:
            return "origin mark not found (the large dot is not at the first or last point)"
        return np.rot90(g, k).reshape(-1, 2).copy()


def _repeated(uv: np.ndarray) -> bool:
    """Whether two of the centres ``uv (P, 2)`` nearly coincide (under a fifth of the median
    nearest-neighbour distance): findCirclesGrid sometimes returns such a broken grid on
    steep views."""
    d = np.linalg.norm(uv[:, None] - uv[None], axis=2)
    np.fill_diagonal(d, np.inf)
    near = d.min(axis=1)
    return bool(near.min() < 0.2 * np.median(near))


def _blob_area(gray: np.ndarray, uv: np.ndarray, spacing: float) -> int:
    """Pixels of the dark blob at ``uv`` (Otsu threshold of the window of half-size
    ``spacing`` around it, the connected piece holding the centre pixel)."""
    x, y = (int(round(v)) for v in uv)
    R = int(np.ceil(spacing))
    y0, x0 = max(y - R, 0), max(x - R, 0)
    patch = np.ascontiguousarray(gray[y0:y + R + 1, x0:x + R + 1], dtype=np.uint8)
    if patch.size == 0 or not (0 <= y - y0 < patch.shape[0] and 0 <= x - x0 < patch.shape[1]):
        return 0
    _, bw = cv2.threshold(patch, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    _, lab = cv2.connectedComponents(bw, connectivity=8)
    k = lab[y - y0, x - x0]
    return int((lab == k).sum()) if bw[y - y0, x - x0] else 0
