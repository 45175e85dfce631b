"""Kannala-Brandt equidistant fisheye: OpenCV's ``cv2.fisheye`` model, vectorized, with
analytic Jacobians.

Parameters ``(fx, fy, cx, cy, k1, k2, k3, k4)`` (OpenCV's order; ROS ``equidistant``,
Kalibr ``pinhole-equi``; OpenCV's skew ``alpha`` is 0). A camera-frame point ``P = (X, Y,
Z)`` (metres) at angle ``theta = atan2(R, Z)`` from the optical axis, ``R = sqrt(X^2 +
Y^2)``, maps to

    theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)
    u = fx theta_d X / R + cx,   v = fy theta_d Y / R + cy.

For ``Z > 0`` this is exactly ``cv2.fisheye.projectPoints`` (which takes ``theta =
atan(r)`` of ``r = R / Z``); ``atan2`` extends it to points at and beyond 90 deg, so the
model covers lenses wider than 180 deg.

Valid region: ``theta < theta_max``, the smallest of pi and the first angle where
``theta_d`` stops increasing (``d theta_d / d theta = 0``); there the projection is
one-to-one, and :meth:`Fisheye.unproject` inverts it (Newton's method on ``theta``) for
pixels with ``|m| < theta_d(theta_max)``, ``m = ((u - cx) / fx, (v - cy) / fy)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import LensModel, register_model, rotation_rows

PARAM_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "k3", "k4")


@lru_cache(maxsize=256)
def _theta_max_scalar(k: tuple[float, float, float, float]) -> float:
    # d theta_d / d theta = 1 + 3 k1 t + 5 k2 t^2 + 7 k3 t^3 + 9 k4 t^4, t = theta^2
    roots = np.roots([9 * k[3], 7 * k[2], 5 * k[1], 3 * k[0], 1.0])
    t = roots.real[(np.abs(roots.imag) <= 1e-12 * np.abs(roots)) & (roots.real > 0)]
    return float(min(np.sqrt(t.min()), np.pi)) if t.size else float(np.pi)


def theta_max(params: np.ndarray) -> np.ndarray | float:
    """Largest angle (rad) of the valid region of ``params (8,)`` (a float) or ``(N, 8)``
    (an ``(N,)`` array): the first zero of ``d theta_d / d theta``, capped at pi."""
    th = np.asarray(params, dtype=float)
    if th.ndim == 1:
        return _theta_max_scalar(tuple(float(v) for v in th[4:8]))
    if len(th) and (th[:, 4:8] == th[0, 4:8]).all():  # one distortion (e.g. only f varies)
        return np.full(len(th), _theta_max_scalar(tuple(float(v) for v in th[0, 4:8])))
    uniq, inv = np.unique(th[:, 4:8], axis=0, return_inverse=True)
    return np.array([_theta_max_scalar(tuple(r)) for r in uniq.tolist()])[inv.ravel()]


def _theta_d(theta: np.ndarray, th: np.ndarray, derivative: bool = False):
    k1, k2, k3, k4 = th[..., 4], th[..., 5], th[..., 6], th[..., 7]
    t2 = theta * theta
    poly = 1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
    if not derivative:
        return theta * poly
    dpoly = 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))
    return theta * poly, dpoly


class Fisheye(LensModel):
    """Kannala-Brandt equidistant fisheye, OpenCV's ``cv2.fisheye`` (module docstring)."""

    name = "fisheye"
    kalibr_name = "pinhole-equi"
    ros_name = "equidistant"
    param_names = PARAM_NAMES

    def project_into(self, points, th, uv, valid, j_point=None, j_theta=None, j_rot=None):
        fx, fy = th[..., 0], th[..., 1]
        X, Y, Z = points
        R2 = X * X + Y * Y
        R = np.sqrt(R2)
        # arctan(R / Z) is OpenCV's formula and twice as fast as arctan2 (which numpy does
        # not vectorize): used when every point is in front
        theta = np.arctan(R / Z) if Z.min(initial=1.0) > 0 else np.arctan2(R, Z)
        # on the optical axis (R = 0, or so small that R^3 underflows) the general formulas
        # are 0/0: the pinhole limit below; elsewhere they lose no precision as R -> 0
        axis = R < 1e-100
        inv_r = 1.0 / (R + axis)
        mx, my = X * inv_r, Y * inv_r
        np.less(theta, theta_max(th), out=valid)
        valid &= (R2 + Z * Z) > 0
        if j_point is None:
            theta_d = _theta_d(theta, th)
        else:
            theta_d, dpoly = _theta_d(theta, th, derivative=True)
        np.add(fx * theta_d * mx, th[..., 2], out=uv[:, 0])
        np.add(fy * theta_d * my, th[..., 3], out=uv[:, 1])
        if axis.any():
            iz = 1.0 / np.where(axis, Z, 1.0)
            uv[axis, 0] = (fx * X * iz + th[..., 2] + 0 * Z)[axis]
            uv[axis, 1] = (fy * Y * iz + th[..., 3] + 0 * Z)[axis]
        if j_point is None:
            return
        t2 = theta * theta
        t3 = t2 * theta
        t5 = t3 * t2
        t7 = t5 * t2
        t9 = t7 * t2
        # d theta / d (X, Y, Z) = (Z X / (R rho2), Z Y / (R rho2), -R / rho2)
        inv_rho2 = 1.0 / (R2 + Z * Z)  # the origin is not valid: inf there is harmless
        g = dpoly * Z * inv_rho2  # theta_d' Z / rho2; times (X, Y) / R below
        s = theta_d * inv_r * inv_r * inv_r  # theta_d / R^3
        a = g * mx * mx + s * Y * Y  # d (theta_d mx) / dX
        b = (g - s * R2) * mx * my  # d (theta_d mx) / dY = d (theta_d my) / dX
        d = g * my * my + s * X * X  # d (theta_d my) / dY
        c = -dpoly * R * inv_rho2  # theta_d' d theta / dZ
        u0, u1, u2 = fx * a, fx * b, fx * c * mx
        v0, v1, v2 = fy * b, fy * d, fy * c * my
        if axis.any():
            iz = 1.0 / np.where(axis, Z, 1.0)
            u0, u1, u2, v0, v1, v2 = (np.where(axis, lim, val) for val, lim in (
                (u0, fx * iz), (u1, 0.0), (u2, -fx * X * iz * iz),
                (v0, 0.0), (v1, fy * iz), (v2, -fy * Y * iz * iz)))
        j_point[:, 0, 0], j_point[:, 0, 1], j_point[:, 0, 2] = u0, u1, u2
        j_point[:, 1, 0], j_point[:, 1, 1], j_point[:, 1, 2] = v0, v1, v2
        if j_rot is not None:
            rotation_rows(points, (u0, u1, u2), (v0, v1, v2), j_rot)
        mul = np.multiply
        fxm, fym = fx * mx, fy * my
        mul(theta_d, mx, out=j_theta[:, 0, 0])
        j_theta[:, 0, 1] = 0.0
        j_theta[:, 0, 2] = 1.0
        j_theta[:, 0, 3] = 0.0
        j_theta[:, 1, 0] = 0.0
        mul(theta_d, my, out=j_theta[:, 1, 1])
        j_theta[:, 1, 2] = 0.0
        j_theta[:, 1, 3] = 1.0
        for i, tp in enumerate((t3, t5, t7, t9)):
            mul(fxm, tp, out=j_theta[:, 0, 4 + i])
            mul(fym, tp, out=j_theta[:, 1, 4 + i])
        if axis.any():
            iz = 1.0 / np.where(axis, Z, 1.0)
            j_theta[axis, 0, 0] = (X * iz + 0 * Z)[axis]
            j_theta[axis, 1, 1] = (Y * iz + 0 * Z)[axis]

    @np.errstate(divide="ignore", invalid="ignore")
    def unproject(self, uv, params, iterations: int = 30):
        """Unit rays ``(N, 3)`` and ``valid (N,)`` of pixels ``uv (N, 2)``: Newton's method
        on ``theta_d(theta) = |m|`` from ``theta = |m|``, kept inside ``[0, theta_max]``."""
        th = np.asarray(params, dtype=float)
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        mx = (uv[:, 0] - th[..., 2]) / th[..., 0]
        my = (uv[:, 1] - th[..., 3]) / th[..., 1]
        rd = np.hypot(mx, my)
        tmax = theta_max(th)
        theta = np.minimum(rd, tmax)
        for _ in range(iterations):
            f, df = _theta_d(theta, th, derivative=True)
            step = (f - rd) / np.where(df > 0, df, 1.0)
            theta = np.clip(theta - step, 0.0, tmax)
            # done when every step is negligible or pushes against the bound (theta_max
            # below the pixel's angle: stays there, not valid)
            if np.all((np.abs(step) < 1e-15) | ((theta >= tmax) & (step < 0))):
                break
        err = np.abs(_theta_d(theta, th) - rd)
        valid = np.isfinite(err) & (err <= 1e-10 * np.maximum(rd, 1.0)) & (theta < tmax)
        sin_t = np.sin(theta)
        scale = np.where(rd > 0, sin_t / np.where(rd > 0, rd, 1.0), 0.0)
        rays = np.stack([mx * scale, my * scale, np.cos(theta)], axis=1)
        return rays, valid


FISHEYE = register_model(Fisheye())
