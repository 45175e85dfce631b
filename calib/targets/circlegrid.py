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


@dataclass(frozen=True)
class CircleGrid(Target):
    name: ClassVar[str] = "circlegrid"

    cols: int
    rows: int
    spacing_m: float
    asymmetric: bool = False

    def __post_init__(self) -> None:
        if self.cols < 2 or self.rows < 2 or (self.cols * self.rows < 4):
            raise InputError(f"a circle grid needs at least 2x2 circles, got "
                             f"{self.cols}x{self.rows}")
        if not (np.isfinite(self.spacing_m) and self.spacing_m > 0):
            raise InputError(f"spacingMeters must be a positive number of metres, got "
                             f"{self.spacing_m}")

    @property
    def spacing(self) -> float:
        return self.spacing_m

    def describe(self) -> str:
        kind = "asymmetric" if self.asymmetric else "symmetric"
        return f"{self.cols}x{self.rows} {kind} circle grid"

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
                return np.arange(len(uv)), self._consistent(uv)
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
