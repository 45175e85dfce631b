"""Board pose from one view's corners through any lens model (rays, then OpenCV's PnP)."""

from __future__ import annotations

import numpy as np

from ..camera.base import LensModel
from ..errors import DegenerateError
from ..lie import se3, so3


def board_pose(model: LensModel, params: np.ndarray, board_points: np.ndarray,
               uv: np.ndarray, what: str = "view") -> tuple[np.ndarray, np.ndarray]:
    """``(T_cam_board (4, 4), residuals (K, 2) px)`` from ``K >= 4`` corners.

    The corners are unprojected to rays (so every lens model works) and the pose solved on
    normalized coordinates with ``cv2.solvePnP`` (IPPE for planar boards, then its LM);
    residuals are the model's reprojection minus ``uv``.
    """
    import cv2

    rays, ok = model.unproject(uv, params)
    ok &= rays[:, 2] > 1e-6
    if ok.sum() < 4:
        raise DegenerateError(f"{what}: fewer than 4 usable corners for the board pose")
    xy = rays[ok, :2] / rays[ok, 2:]
    obj = np.ascontiguousarray(board_points[ok], dtype=np.float64)
    img = np.ascontiguousarray(xy, dtype=np.float64)
    planar = np.ptp(obj[:, 2]) < 1e-9
    flags = cv2.SOLVEPNP_IPPE if planar else cv2.SOLVEPNP_ITERATIVE
    good, rvec, tvec = cv2.solvePnP(obj, img, np.eye(3), None, flags=flags)
    if not good:
        raise DegenerateError(f"{what}: the board pose could not be solved (PnP failed)")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, np.eye(3), None, rvec, tvec)
    T = se3.from_rt(so3.exp(rvec.ravel()), tvec.ravel())
    pc = se3.act(T, board_points)
    proj, _ = model.project(pc, params)
    return T, proj - uv


def views_poses(model: LensModel, params: np.ndarray, board_points: np.ndarray,
                image_points: list[np.ndarray], names: list[str]
                ) -> tuple[np.ndarray, float, np.ndarray]:
    """Per-view PnP: ``(T_cam_board (V, 4, 4), sigma_px, rms (V,))`` where ``sigma_px`` is the
    corner noise estimated from all views' residuals (``2K - 6`` degrees of freedom each)."""
    poses, sq, dof, rms = [], 0.0, 0, []
    for uv, name in zip(image_points, names, strict=True):
        ok = np.isfinite(uv).all(axis=1)
        T, r = board_pose(model, params, board_points[ok], uv[ok], name)
        poses.append(T)
        sq += float(np.sum(r ** 2))
        dof += 2 * int(ok.sum()) - 6
        rms.append(float(np.sqrt(np.mean(np.sum(r ** 2, axis=1)))))
    return np.stack(poses), float(np.sqrt(sq / max(dof, 1))), np.array(rms)
