"""The stereo entries of a two-camera rig and how well they hold on the corners.

``R, T`` map points from camera 0 (left) into camera 1 (right), as ``cv2.stereoCalibrate``
gives them; ``E = hat(T) R``; ``F = K1^-T E K0^-1`` on undistorted pixels; ``R1, R2, P1,
P2, Q`` from ``cv2.stereoRectify`` (``cv2.fisheye.stereoRectify`` when both cameras are
fisheye; other models are rectified as distortion-free pinholes with their ``K``, since
rectification itself only depends on ``K`` and ``R, T``).

Quality on the corners both cameras see in the same frame (pixels ``u0``, ``u1``): each
corner unprojected with its camera's model to undistorted pixels ``x = K ray / ray_z``;
epipolar error = symmetric distance of ``x1`` to ``F x0`` and of ``x0`` to ``F^T x1``;
rectified row misalignment = the difference of the rectified rows ``(P R ray)_y / (...)_z``
(columns for a vertical rig).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..lie import so3


@dataclass(frozen=True, eq=False)
class StereoReport:
    """Stereo matrices (see module docstring) and the epipolar / rectified-row errors in
    pixels over ``n_points`` shared corners."""

    R: np.ndarray
    T: np.ndarray
    E: np.ndarray
    F: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    Q: np.ndarray
    epipolar_rms_px: float
    epipolar_max_px: float
    row_rms_px: float
    row_max_px: float
    n_points: int
    vertical: bool

    def __post_init__(self) -> None:
        for n in ("R", "T", "E", "F", "R1", "R2", "P1", "P2", "Q"):
            a = np.array(getattr(self, n), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, n, a)

    def matrices(self) -> dict[str, np.ndarray]:
        return {n: getattr(self, n) for n in ("R", "T", "E", "F", "R1", "R2", "P1", "P2", "Q")}

    def to_dict(self) -> dict:
        return {"epipolar_rms_px": self.epipolar_rms_px, "epipolar_max_px": self.epipolar_max_px,
                "rectified_row_rms_px": self.row_rms_px, "rectified_row_max_px": self.row_max_px,
                "points": self.n_points, "vertical": self.vertical,
                "baseline_m": float(np.linalg.norm(self.T)),
                **{k: v.tolist() for k, v in self.matrices().items()}}


def rectify(cams, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(R1, R2, P1, P2, Q)`` for cameras ``cams`` (two :class:`CameraFit`)."""
    import cv2

    size = tuple(int(v) for v in cams[0].image_size)
    K0, K1 = cams[0].K, cams[1].K
    R, t = np.ascontiguousarray(R, float), np.ascontiguousarray(t, float)
    if cams[0].model == cams[1].model == "fisheye":
        R1, R2, P1, P2, Q = cv2.fisheye.stereoRectify(
            K0, cams[0].dist, K1, cams[1].dist, size, R, t.reshape(3, 1),
            flags=cv2.CALIB_ZERO_DISPARITY)
        return R1, R2, P1, P2, Q
    if all(c.model in ("pinhole", "rational") for c in cams):
        d0, d1 = cams[0].dist, cams[1].dist
    else:
        d0, d1 = np.zeros(5), np.zeros(5)
    R1, R2, P1, P2, Q, _, _ = cv2.stereoRectify(K0, d0, K1, d1, size, R, t.reshape(3, 1),
                                                flags=cv2.CALIB_ZERO_DISPARITY)
    return R1, R2, P1, P2, Q


def shared_rays(obs, cams) -> tuple[np.ndarray, np.ndarray]:
    """Unit rays ``(M, 3)`` in cameras 0 and 1 of the corners both see in one frame."""
    n_ids = int(obs.ids.max()) + 1
    key = obs.frame * n_ids + obs.ids
    k0, i0 = key[obs.cam == 0], np.flatnonzero(obs.cam == 0)
    k1, i1 = key[obs.cam == 1], np.flatnonzero(obs.cam == 1)
    _, a, b = np.intersect1d(k0, k1, return_indices=True)
    rays = []
    for c, rows in ((0, i0[a]), (1, i1[b])):
        ray, ok = get_model(cams[c].model).unproject(obs.uv[rows], cams[c].params)
        rays.append((ray, ok))
    ok = rays[0][1] & rays[1][1] & (rays[0][0][:, 2] > 0) & (rays[1][0][:, 2] > 0)
    return rays[0][0][ok], rays[1][0][ok]


def _to_pixels(K: np.ndarray, rays: np.ndarray) -> np.ndarray:
    p = rays @ K.T
    return p / p[:, 2:3]


def stereo_report(obs, cams, T_cam_ref: np.ndarray) -> StereoReport:
    """:class:`StereoReport` of a two-camera rig."""
    R, t = T_cam_ref[1, :3, :3], T_cam_ref[1, :3, 3]
    E = so3.hat(t) @ R
    F = np.linalg.inv(cams[1].K).T @ E @ np.linalg.inv(cams[0].K)
    F = F / (F[2, 2] if abs(F[2, 2]) > 1e-12 else np.linalg.norm(F))
    R1, R2, P1, P2, Q = rectify(cams, R, t)
    r0, r1 = shared_rays(obs, cams)
    x0, x1 = _to_pixels(cams[0].K, r0), _to_pixels(cams[1].K, r1)
    l1, l0 = x0 @ F.T, x1 @ F  # epipolar lines in image 1 and image 0
    e = np.sum(x1 * l1, axis=1)
    d = np.r_[e / np.hypot(l1[:, 0], l1[:, 1]), e / np.hypot(l0[:, 0], l0[:, 1])]
    vertical = abs(P2[1, 3]) > abs(P2[0, 3])
    axis = 0 if vertical else 1
    y0 = _to_pixels(P1[:, :3], r0 @ R1.T)[:, axis]
    y1 = _to_pixels(P2[:, :3], r1 @ R2.T)[:, axis]
    dy = y0 - y1

    def rms(v):
        return float(np.sqrt(np.mean(v * v))) if v.size else 0.0

    return StereoReport(R, t, E, F, R1, R2, P1, P2, Q, rms(d),
                        float(np.abs(d).max(initial=0.0)), rms(dy),
                        float(np.abs(dy).max(initial=0.0)), len(r0), bool(vertical))
