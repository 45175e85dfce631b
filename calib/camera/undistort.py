"""Undistortion to a rectilinear (pinhole, distortion-free) camera for every lens model.

The new camera ``K_new (3, 3)`` follows OpenCV: ``balance`` 0 keeps only valid pixels
(zoomed in), 1 keeps as much of the source image as a rectilinear image can (zoomed out).
Pinhole and rational cameras use ``cv2.getOptimalNewCameraMatrix(K, D, size, balance)`` and
``cv2.initUndistortRectifyMap``. Fisheye and double-sphere cameras choose ``K_new`` as
``cv2.fisheye.estimateNewCameraMatrixForUndistortRectify`` does (the four image-edge
midpoints), computed with :meth:`Camera.unproject` and with those rays clamped to
:data:`MAX_RECTILINEAR_ANGLE` from the axis: where the edges lie within it the result is
OpenCV's, and for lenses whose edges reach ~90 deg it stays a usable view (OpenCV's then
collapses to a few-pixel focal length, which is why ROS's camera_calibration does not use it).
Fisheye maps come from ``cv2.fisheye.initUndistortRectifyMap``, double-sphere maps (no OpenCV
model) from :meth:`Camera.project`. Images are then resampled by ``cv2.remap``. Pixel (0, 0)
is the centre of the top-left pixel.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .camera import Camera

#: Rays further than this from the optical axis (rad) cannot anchor a rectilinear view:
#: the double-sphere ``K_new`` clamps the image-edge rays it uses to this angle.
MAX_RECTILINEAR_ANGLE = np.radians(80.0)


def _check(camera: Camera, balance: float, new_size) -> tuple[int, int]:
    if not 0.0 <= float(balance) <= 1.0:
        raise InputError(f"balance must be in [0, 1], got {balance}")
    size = camera.image_size if new_size is None else tuple(int(v) for v in new_size)
    if len(size) != 2 or min(size) <= 0:
        raise InputError(f"new_size must be (width, height) > 0, got {new_size}")
    return size


def _edge_rays_k(camera: Camera, balance: float, new_size: tuple[int, int]) -> np.ndarray:
    """OpenCV's fisheye ``estimateNewCameraMatrixForUndistortRectify`` (R = I, fov_scale 1)
    with calib's own unprojection: the midpoints of the four image edges, in normalized
    coordinates, fix the focal length between filling the image (``balance`` 0) and keeping
    every edge midpoint (1)."""
    w, h = camera.image_size
    edges = np.array([[w / 2, 0], [w, h / 2], [w / 2, h], [0, h / 2]], dtype=float)
    rays = camera.unproject(edges)
    if not np.isfinite(rays).all():
        raise InputError("the image edges are outside the camera model's valid region; "
                         "cannot choose a rectilinear view")
    theta = np.arccos(np.clip(rays[:, 2], -1, 1))
    r = np.tan(np.minimum(theta, MAX_RECTILINEAR_ANGLE))
    s = np.hypot(rays[:, 0], rays[:, 1])
    pts = rays[:, :2] / np.where(s > 0, s, 1.0)[:, None] * r[:, None]
    aspect = camera.params[0] / camera.params[1]
    pts[:, 1] *= aspect
    cn = pts.mean(axis=0)
    ha = h * aspect
    f = np.array([w * 0.5 / (cn[0] - pts[:, 0].min()), w * 0.5 / (pts[:, 0].max() - cn[0]),
                  ha * 0.5 / (cn[1] - pts[:, 1].min()), ha * 0.5 / (pts[:, 1].max() - cn[1])])
    focal = balance * f.min() + (1 - balance) * f.max()
    c = -cn * focal + np.array([w * 0.5, ha * 0.5])
    fx, fy, cx, cy = focal, focal / aspect, c[0], c[1] / aspect
    sx, sy = new_size[0] / w, new_size[1] / h
    return np.array([[fx * sx, 0, cx * sx], [0, fy * sy, cy * sy], [0, 0, 1.0]])


def new_camera_matrix(camera: Camera, balance: float = 0.0,
                      new_size: tuple[int, int] | None = None) -> np.ndarray:
    """``K_new (3, 3)`` of the rectilinear view (module docstring) for an output image of
    ``new_size`` (default: the camera's)."""
    import cv2

    size = _check(camera, balance, new_size)
    K, dist = camera.to_opencv()
    if camera.model in ("pinhole", "rational"):
        K_new, _ = cv2.getOptimalNewCameraMatrix(K, dist, camera.image_size, float(balance),
                                                 size)
    else:
        K_new = _edge_rays_k(camera, float(balance), size)
    if not np.isfinite(K_new).all() or K_new[0, 0] <= 0 or K_new[1, 1] <= 0:
        raise InputError(f"cannot choose a rectilinear view for this {camera.model} camera "
                         "(the distortion is not invertible over the image)")
    return K_new


def model_maps(camera: Camera, K_new: np.ndarray, new_size: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(map_x, map_y)`` float32 ``(H, W)`` for ``cv2.remap`` built with calib's own
    projection: output pixel ``(u, v)`` of the pinhole camera ``K_new`` samples the source
    pixel ``camera.project(K_new^-1 (u, v, 1))``; ``-1`` where the ray has no pixel."""
    w, h = new_size
    u, v = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    x = (u.ravel() - K_new[0, 2]) / K_new[0, 0]
    y = (v.ravel() - K_new[1, 2]) / K_new[1, 1]
    uv = camera.project(np.c_[x, y, np.ones_like(x)])
    uv[~np.isfinite(uv).all(axis=1)] = -1.0
    return (uv[:, 0].reshape(h, w).astype(np.float32),
            uv[:, 1].reshape(h, w).astype(np.float32))


def undistortion_maps(camera: Camera, balance: float = 0.0,
                      new_size: tuple[int, int] | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(map_x, map_y, K_new)``: float32 ``(H, W)`` maps for ``cv2.remap`` and the new
    pinhole camera matrix (module docstring)."""
    import cv2

    size = _check(camera, balance, new_size)
    K_new = new_camera_matrix(camera, balance, size)
    K, dist = camera.to_opencv()
    if camera.model in ("pinhole", "rational"):
        mx, my = cv2.initUndistortRectifyMap(K, dist, None, K_new, size, cv2.CV_32FC1)
    elif camera.model == "fisheye":
        mx, my = cv2.fisheye.initUndistortRectifyMap(K, dist, np.eye(3), K_new, size,
                                                     cv2.CV_32FC1)
    else:
        mx, my = model_maps(camera, K_new, size)
    return mx, my, K_new


def undistort_image(image: np.ndarray, camera: Camera, balance: float = 0.0,
                    new_size: tuple[int, int] | None = None,
                    interpolation: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(rectilinear image, K_new)`` of ``image`` (``(H, W)`` or ``(H, W, C)``, the camera's
    size), resampled by ``cv2.remap`` (bilinear by default; black outside the source)."""
    import cv2

    img = np.asarray(image)
    if img.ndim not in (2, 3) or (img.shape[1], img.shape[0]) != camera.image_size:
        raise InputError(f"image is {img.shape[1] if img.ndim >= 2 else '?'}x"
                         f"{img.shape[0] if img.ndim >= 1 else '?'} but the camera is "
                         f"{camera.image_size[0]}x{camera.image_size[1]}")
    mx, my, K_new = undistortion_maps(camera, balance, new_size)
    out = cv2.remap(img, mx, my, cv2.INTER_LINEAR if interpolation is None else interpolation,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, K_new


def undistort_points(camera: Camera, pixels: np.ndarray, K_new: np.ndarray | None = None
                     ) -> np.ndarray:
    """Pixels ``(N, 2)`` of ``camera`` moved to the rectilinear camera ``K_new`` (default
    the camera's own ``K``): ``cv2.undistortPoints(pixels, K, D, P=K_new)``; NaN where the
    model cannot be inverted or the ray points backwards."""
    xy = camera.undistort_points(pixels, normalized=True)
    Kn = camera.K if K_new is None else np.asarray(K_new, dtype=float)
    return np.stack([xy[:, 0] * Kn[0, 0] + Kn[0, 2], xy[:, 1] * Kn[1, 1] + Kn[1, 2]], axis=1)
