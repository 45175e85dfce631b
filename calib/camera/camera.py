"""A calibrated camera of any lens model: a frozen value object compared by value."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .base import LensModel, get_model


@dataclass(frozen=True, eq=False)
class Camera:
    """A calibrated camera.

    Attributes:
        params: ``(P,)`` in the order of ``lens.param_names``: ``fx, fy, cx, cy`` (pixels)
            then the distortion in OpenCV's order for the model (read-only).
        image_size: ``(width, height)`` in pixels.
        model: the lens model's name (``pinhole``, ``rational``, ``fisheye``,
            ``double-sphere``; Kalibr's and ROS's names are accepted and normalised).

    Two cameras are equal when model, image size and every parameter are equal; equal
    cameras hash alike. ``CameraModel`` is the same class (the name of calib 0.1).
    """

    params: np.ndarray
    image_size: tuple[int, int]
    model: str = "pinhole"

    def __post_init__(self) -> None:
        lens = get_model(self.model)
        object.__setattr__(self, "model", lens.name)
        try:
            p = np.array(self.params, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise InputError(f"camera params must be numbers, got {self.params!r}") from None
        if p.shape != (lens.num_params,) or not np.isfinite(p).all():
            raise InputError(f"{lens.name} camera params must be {lens.num_params} finite "
                             f"numbers ({', '.join(lens.param_names)}), got {self.params}")
        if p[0] <= 0 or p[1] <= 0:
            raise InputError("camera focal lengths must be positive")
        if lens.name == "double-sphere" and not 0.0 <= p[5] <= 1.0:
            raise InputError(f"double-sphere alpha must be in [0, 1], got {p[5]}")
        p.setflags(write=False)
        object.__setattr__(self, "params", p)
        try:
            w, h = (int(v) for v in self.image_size)
        except (TypeError, ValueError):
            raise InputError(f"image_size must be (width, height), got {self.image_size!r}"
                             ) from None
        if w <= 0 or h <= 0:
            raise InputError(f"image_size must be positive, got {self.image_size}")
        object.__setattr__(self, "image_size", (w, h))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Camera):
            return NotImplemented
        return (self.model == other.model and self.image_size == other.image_size
                and np.array_equal(self.params, other.params))

    def __hash__(self) -> int:
        return hash((self.model, self.params.tobytes(), self.image_size))

    @property
    def lens(self) -> LensModel:
        """The :class:`~calib.camera.LensModel` of :attr:`model`."""
        return get_model(self.model)

    @property
    def K(self) -> np.ndarray:
        fx, fy, cx, cy = self.params[:4]
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    @property
    def dist(self) -> np.ndarray:
        """Distortion in OpenCV's order for the model (``[xi, alpha]`` for double-sphere)."""
        return self.params[4:].copy()

    def to_opencv(self) -> tuple[np.ndarray, np.ndarray]:
        """``(K (3, 3), dist)`` for ``cv2.projectPoints`` (pinhole, rational) or
        ``cv2.fisheye`` (fisheye)."""
        return self.lens.to_opencv(self.params)

    @classmethod
    def from_opencv(cls, K: np.ndarray, dist: np.ndarray, image_size: tuple[int, int],
                    model: str = "pinhole") -> Camera:
        """From ``K (3, 3)`` and the model's coefficients in OpenCV's order (fewer are
        zero-padded; extra non-zero ones are refused)."""
        lens = get_model(model)
        return cls(lens.from_opencv(K, dist), image_size, lens.name)

    def project(self, points_cam: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` of camera-frame points ``(N, 3)`` (metres); points outside the
        model's valid region (e.g. behind a pinhole camera) come back as NaN."""
        p = np.asarray(points_cam, dtype=float).reshape(-1, 3)
        uv, valid = self.lens.project(p, self.params)
        uv[~valid] = np.nan
        return uv

    def unproject(self, pixels: np.ndarray) -> np.ndarray:
        """Unit rays ``(N, 3)`` in the camera frame of pixels ``(N, 2)``; NaN where the model
        cannot be inverted."""
        rays, valid = self.lens.unproject(np.asarray(pixels, dtype=float).reshape(-1, 2),
                                          self.params)
        rays[~valid] = np.nan
        return rays

    def undistort_points(self, pixels: np.ndarray, normalized: bool = False) -> np.ndarray:
        """Ideal pinhole pixels ``(N, 2)`` through ``K`` (or normalized coordinates ``x/z,
        y/z`` with ``normalized``) of pixels ``(N, 2)``: ``cv2.undistortPoints(pixels, K,
        dist, P=K)`` (``cv2.fisheye.undistortPoints`` for fisheye), solved to 1e-12. NaN
        where the model cannot be inverted or the ray is not in front (``z <= 0``)."""
        rays = self.unproject(pixels)
        z = rays[:, 2]
        front = z > 0
        xy = np.full((len(rays), 2), np.nan)
        xy[front] = rays[front, :2] / z[front, None]
        if normalized:
            return xy
        fx, fy, cx, cy = self.params[:4]
        return np.stack([xy[:, 0] * fx + cx, xy[:, 1] * fy + cy], axis=1)

    def to_dict(self) -> dict:
        """``{"model", "image_size", <param name>: value...}`` for JSON."""
        return {"model": self.model, "image_size": list(self.image_size),
                **{k: float(v) for k, v in zip(self.lens.param_names, self.params,
                                                strict=True)}}


#: calib 0.1's name for :class:`Camera` (same class).
CameraModel = Camera
