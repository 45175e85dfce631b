"""The double-sphere camera model (Usenko, Demmel, Cremers: "The Double Sphere Camera
Model", 3DV 2018), vectorized, with analytic Jacobians. Kalibr ``ds-none``; valid beyond
180 deg; no OpenCV or ROS equivalent.

Parameters ``(fx, fy, cx, cy, xi, alpha)``. Projection of a camera-frame point ``x = (x, y,
z)`` (metres), the paper's eq. (40)-(42):

    d1 = sqrt(x^2 + y^2 + z^2)
    d2 = sqrt(x^2 + y^2 + (xi d1 + z)^2)
    u = fx x / (alpha d2 + (1 - alpha) (xi d1 + z)) + cx
    v = fy y / (alpha d2 + (1 - alpha) (xi d1 + z)) + cy

valid on the set (eq. 43-45)

    Omega = {x : z > -w2 d1},   w2 = (w1 + xi) / sqrt(2 w1 xi + xi^2 + 1),
    w1 = alpha / (1 - alpha) if alpha <= 0.5 else (1 - alpha) / alpha.

Unprojection in closed form (eq. 46-50): ``mx = (u - cx) / fx``, ``my = (v - cy) / fy``,
``r2 = mx^2 + my^2``,

    mz = (1 - alpha^2 r2) / (alpha sqrt(1 - (2 alpha - 1) r2) + 1 - alpha)
    ray = (mz xi + sqrt(mz^2 + (1 - xi^2) r2)) / (mz^2 + r2) (mx, my, mz) - (0, 0, xi)

defined on ``Theta = R^2`` when ``alpha <= 0.5`` and ``r2 <= 1 / (2 alpha - 1)`` when
``alpha > 0.5``. :meth:`DoubleSphere.unproject` also requires the square root's argument to
be non-negative and the ray to lie in ``Omega`` (so that projecting it gives the pixel back).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import LensModel, register_model, rotation_rows

PARAM_NAMES = ("fx", "fy", "cx", "cy", "xi", "alpha")


def w2(xi, alpha):
    """The paper's ``w2``: the projection is valid for ``z > -w2 d1`` (scalar or array)."""
    w1 = np.where(alpha <= 0.5, alpha / np.where(alpha < 1, 1 - alpha, 1.0),
                  (1 - alpha) / np.where(alpha > 0, alpha, 1.0))
    return (w1 + xi) / np.sqrt(np.maximum(2 * w1 * xi + xi * xi + 1, 1e-300))


class DoubleSphere(LensModel):
    """Double-sphere camera (module docstring)."""

    name = "double-sphere"
    kalibr_name = "ds-none"
    ros_name = None
    param_names = PARAM_NAMES

    def initial_params(self, K: np.ndarray) -> np.ndarray:
        """``fx, fy, cx, cy`` of ``K`` with ``xi = 0``, ``alpha = 0.5`` (a wide-angle start;
        the focal lengths keep their meaning at the image centre)."""
        p = super().initial_params(K)
        p[5] = 0.5
        return p

    def project_into(self, points, th, uv, valid, j_point=None, j_theta=None, j_rot=None):
        fx, fy, xi, alpha = th[..., 0], th[..., 1], th[..., 4], th[..., 5]
        X, Y, Z = points
        R2 = X * X + Y * Y
        d1 = np.sqrt(R2 + Z * Z)
        k = xi * d1 + Z
        d2 = np.sqrt(R2 + k * k)
        beta = 1 - alpha
        den = alpha * d2 + beta * k
        ok = (Z > -w2(xi, alpha) * d1) & (den > 0)
        valid[:] = ok
        inv = 1.0 / np.where(ok, den, 1.0)
        mx, my = X * inv, Y * inv
        np.add(fx * mx, th[..., 2], out=uv[:, 0])
        np.add(fy * my, th[..., 3], out=uv[:, 1])
        if j_point is None:
            return
        inv_d1 = 1.0 / np.where(d1 > 0, d1, 1.0)
        inv_d2 = 1.0 / np.where(d2 > 0, d2, 1.0)
        # d den / d (X, Y, Z): alpha d d2 + beta d k, d k = xi p / d1 + e_z,
        # d d2 = ((X, Y, 0) + k d k) / d2
        xk = xi * inv_d1
        ak = alpha * inv_d2
        e_xy = ak * (1 + k * xk) + beta * xk  # coefficient of X (resp. Y) in d den / dX (dY)
        dz = ak * k * (xk * Z + 1) + beta * (xk * Z + 1)
        dX, dY = e_xy * X, e_xy * Y
        fxi, fyi = fx * inv, fy * inv
        u0 = fxi * (1 - mx * dX)
        u1 = -fxi * mx * dY
        u2 = -fxi * mx * dz
        v0 = -fyi * my * dX
        v1 = fyi * (1 - my * dY)
        v2 = -fyi * my * dz
        j_point[:, 0, 0], j_point[:, 0, 1], j_point[:, 0, 2] = u0, u1, u2
        j_point[:, 1, 0], j_point[:, 1, 1], j_point[:, 1, 2] = v0, v1, v2
        if j_rot is not None:
            rotation_rows(points, (u0, u1, u2), (v0, v1, v2), j_rot)
        d_xi = (ak * k + beta) * d1  # d den / d xi
        d_alpha = d2 - k  # d den / d alpha
        j_theta[:, 0, 0] = mx
        j_theta[:, 0, 1] = 0.0
        j_theta[:, 0, 2] = 1.0
        j_theta[:, 0, 3] = 0.0
        j_theta[:, 1, 0] = 0.0
        j_theta[:, 1, 1] = my
        j_theta[:, 1, 2] = 0.0
        j_theta[:, 1, 3] = 1.0
        fmx, fmy = -fx * mx * inv, -fy * my * inv
        np.multiply(fmx, d_xi, out=j_theta[:, 0, 4])
        np.multiply(fmy, d_xi, out=j_theta[:, 1, 4])
        np.multiply(fmx, d_alpha, out=j_theta[:, 0, 5])
        np.multiply(fmy, d_alpha, out=j_theta[:, 1, 5])

    @np.errstate(divide="ignore", invalid="ignore")
    def unproject(self, uv, params):
        """Unit rays ``(N, 3)`` and ``valid (N,)`` of pixels ``uv (N, 2)``, in closed form
        (module docstring)."""
        th = np.asarray(params, dtype=float)
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        xi, alpha = th[..., 4], th[..., 5]
        mx = (uv[:, 0] - th[..., 2]) / th[..., 0]
        my = (uv[:, 1] - th[..., 3]) / th[..., 1]
        r2 = mx * mx + my * my
        s1 = 1 - (2 * alpha - 1) * r2
        mz = (1 - alpha * alpha * r2) / (alpha * np.sqrt(np.maximum(s1, 0.0)) + 1 - alpha)
        s2 = mz * mz + (1 - xi * xi) * r2
        scale = (mz * xi + np.sqrt(np.maximum(s2, 0.0))) / (mz * mz + r2)
        rays = np.stack([scale * mx, scale * my, scale * mz - xi], axis=1)
        norm = np.linalg.norm(rays, axis=1, keepdims=True)
        rays = rays / np.where(norm > 0, norm, 1.0)
        valid = (s1 >= 0) & (s2 >= 0) & np.isfinite(rays).all(axis=1)
        valid &= rays[:, 2] > -w2(xi, alpha)
        return rays, valid


    def to_kalibr(self, params):
        """Kalibr's ``ds``: intrinsics ``[xi, alpha, fu, fv, pu, pv]``, no coefficients
        (Kalibr needs ``alpha < 1``)."""
        p = np.asarray(params, dtype=float)
        if p[5] >= 1:
            raise InputError("Kalibr's ds model needs alpha < 1")
        return np.r_[p[4:6], p[:4]].tolist(), []

    def from_kalibr(self, intrinsics, coeffs):
        intr = np.asarray(intrinsics, dtype=float).ravel()
        if intr.size != 6 or len(coeffs or []) != 0:
            raise InputError("Kalibr ds-none needs 6 intrinsics [xi, alpha, fu, fv, pu, pv] "
                             f"and no distortion_coeffs, got {intr.size} and "
                             f"{len(coeffs or [])}")
        return np.r_[intr[2:6], intr[0:2]]


DOUBLE_SPHERE = register_model(DoubleSphere())
