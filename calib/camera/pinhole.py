"""Pinhole projection with Brown-Conrady distortion, vectorized, with analytic Jacobians.

Parameters are ordered ``theta = (fx, fy, cx, cy, k1, k2, p1, p2, k3)`` (pixels for the
first four); distortion is exported in OpenCV's order ``(k1, k2, p1, p2, k3)``. A point
``P = (X, Y, Z)`` in the camera frame (metres, ``Z > 0`` in front) maps to normalized
``x = X/Z, y = Y/Z``, distorted by

    r2 = x^2 + y^2,  radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

and to pixels ``u = fx xd + cx``, ``v = fy yd + cy``; pixel (0, 0) is the centre of the
top-left pixel (OpenCV's convention).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import CHUNK, LensModel, register_model
from .camera import CameraModel  # noqa: F401  (its import path in calib 0.1)

PARAM_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3")


def distort(xy: np.ndarray, theta: np.ndarray, jacobians: bool = False):
    """Distort normalized points ``(N, 2)`` with ``theta`` ``(9,)`` or ``(N, 9)``.

    Returns ``xd (N, 2)`` and, with ``jacobians``, ``d xd / d xy (N, 2, 2)`` and
    ``d xd / d (k1, k2, p1, p2, k3) (N, 2, 5)``.
    """
    th = np.asarray(theta, dtype=float)
    x, y = xy[:, 0], xy[:, 1]
    if not jacobians:
        return np.stack(distort_columns(x, y, th, jacobian=False), axis=1)
    xd, yd, a, b, d = distort_columns(x, y, th)
    j_xy = np.empty((len(x), 2, 2))
    j_xy[:, 0, 0], j_xy[:, 0, 1], j_xy[:, 1, 0], j_xy[:, 1, 1] = a, b, b, d
    r2 = x * x + y * y
    r4 = r2 * r2
    xy2 = 2 * x * y
    j_k = np.empty((len(x), 2, 5))
    j_k[:, 0, 0], j_k[:, 1, 0] = x * r2, y * r2
    j_k[:, 0, 1], j_k[:, 1, 1] = x * r4, y * r4
    j_k[:, 0, 2], j_k[:, 1, 2] = xy2, r2 + 2 * y * y
    j_k[:, 0, 3], j_k[:, 1, 3] = r2 + 2 * x * x, xy2
    r6 = r4 * r2
    j_k[:, 0, 4], j_k[:, 1, 4] = x * r6, y * r6
    return np.stack([xd, yd], axis=1), j_xy, j_k


def _project_into(points: tuple[np.ndarray, np.ndarray, np.ndarray], th: np.ndarray,
                  uv: np.ndarray, j_point: np.ndarray | None = None,
                  j_theta: np.ndarray | None = None, j_rot: np.ndarray | None = None) -> None:
    """Write :func:`project`'s outputs for the points with coordinate columns ``points = (X,
    Y, Z)`` (each ``(n,)``) into the given arrays (which may be strided views, e.g. the first
    three columns of a pose Jacobian). ``j_rot (n, 2, 3)``, if given, receives ``d uv / d phi``
    for a left rotation ``Exp(phi) P`` of the point, ``(d uv / d P) (-hat(P))``, whose rows
    are ``P x (row of d uv / d P)``."""
    fx, fy, cx, cy = th[..., 0], th[..., 1], th[..., 2], th[..., 3]
    k1, k2, p1, p2, k3 = th[..., 4], th[..., 5], th[..., 6], th[..., 7], th[..., 8]
    X, Y, Z = points
    mul = np.multiply
    # Fewer temporaries: in-place sums and one scratch column ``tmp``; every sum is formed
    # in the same order as its plain expression (the same bits), e.g. radial is
    # ((k1 r2 + 1) + k2 r4) + k3 r6 = 1 + k1 r2 + k2 r4 + k3 r6.
    inv_z = 1.0 / Z
    x = X * inv_z
    y = Y * inv_z
    xx, yy, xy = x * x, y * y, x * y
    r2 = xx + yy
    r4 = r2 * r2
    r6 = r4 * r2
    radial = k1 * r2
    radial += 1
    tmp = k2 * r4
    radial += tmp
    radial += mul(r6, k3, out=tmp)
    t_x = xx * 2  # p2's term in xd (p1's in yd is t_y): r2 + 2 x^2
    t_x += r2
    t_y = yy * 2
    t_y += r2
    xy2 = xy * 2
    xd = x * radial  # x radial + p1 xy2 + p2 t_x
    xd += mul(xy2, p1, out=tmp)
    xd += mul(t_x, p2, out=tmp)
    yd = y * radial  # y radial + p1 t_y + p2 xy2
    yd += mul(t_y, p1, out=tmp)
    yd += mul(xy2, p2, out=tmp)
    np.add(mul(xd, fx, out=tmp), cx, out=uv[:, 0])
    np.add(mul(yd, fy, out=tmp), cy, out=uv[:, 1])
    if j_point is None:
        return
    dr2 = r2 * (4 * k2)  # 2 d radial / d r2 = 2 k1 + 4 k2 r2 + 6 k3 r4
    dr2 += 2 * k1
    dr2 += mul(r4, 6 * k3, out=tmp)
    # d (xd, yd) / d (x, y) = [[a, b], [b, d]]
    a = xx * dr2  # radial + x^2 dr2 + 2 p1 y + 6 p2 x
    a += radial
    a += mul(y, 2 * p1, out=tmp)
    a += mul(x, 6 * p2, out=tmp)
    b = xy * dr2  # xy dr2 + 2 p1 x + 2 p2 y
    b += mul(x, 2 * p1, out=tmp)
    b += mul(y, 2 * p2, out=tmp)
    d = yy * dr2  # radial + y^2 dr2 + 6 p1 y + 2 p2 x
    d += radial
    d += mul(y, 6 * p1, out=tmp)
    d += mul(x, 2 * p2, out=tmp)
    # rows of d uv / d P: (u0, u1, u2) = fx / Z (a, b, -(a x + b y)), (v0, v1, v2) likewise
    # with fy and (b, d); written over buffers no longer needed (a, b, d, inv_z, dr2, r6)
    fxz = fx * inv_z
    fyz = mul(fy, inv_z, out=inv_z)
    u0 = mul(a, fxz, out=a)
    u1 = mul(b, fxz, out=fxz)
    v0 = mul(b, fyz, out=b)
    v1 = mul(d, fyz, out=d)
    u2 = mul(u0, x, out=tmp)
    u2 += mul(u1, y, out=r6)
    np.negative(u2, out=u2)
    v2 = mul(v0, x, out=dr2)
    v2 += mul(v1, y, out=r6)
    np.negative(v2, out=v2)
    j_point[:, 0, 0], j_point[:, 0, 1], j_point[:, 0, 2] = u0, u1, u2
    j_point[:, 1, 0], j_point[:, 1, 1], j_point[:, 1, 2] = v0, v1, v2
    if j_rot is not None:  # rows P x (u0, u1, u2) and P x (v0, v1, v2)
        s, t = xx, yy  # free scratch columns
        sub = np.subtract
        for row, (a0, a1, a2) in enumerate(((u0, u1, u2), (v0, v1, v2))):
            sub(mul(Y, a2, out=s), mul(Z, a1, out=t), out=j_rot[:, row, 0])
            sub(mul(Z, a0, out=s), mul(X, a2, out=t), out=j_rot[:, row, 1])
            sub(mul(X, a1, out=s), mul(Y, a0, out=t), out=j_rot[:, row, 2])
    # products written straight into the (strided) Jacobian: no temporary, one pass each
    j_theta[:, 0, 0] = xd
    j_theta[:, 0, 1] = 0.0
    j_theta[:, 0, 2] = 1.0
    j_theta[:, 0, 3] = 0.0
    fx_x = mul(x, fx, out=x)
    fy_y = mul(y, fy, out=y)
    r6 = mul(r4, r2, out=r6)
    mul(fx_x, r2, out=j_theta[:, 0, 4])
    mul(fx_x, r4, out=j_theta[:, 0, 5])
    mul(xy2, fx, out=j_theta[:, 0, 6])
    mul(t_x, fx, out=j_theta[:, 0, 7])
    mul(fx_x, r6, out=j_theta[:, 0, 8])
    j_theta[:, 1, 0] = 0.0
    j_theta[:, 1, 1] = yd
    j_theta[:, 1, 2] = 0.0
    j_theta[:, 1, 3] = 1.0
    mul(fy_y, r2, out=j_theta[:, 1, 4])
    mul(fy_y, r4, out=j_theta[:, 1, 5])
    mul(t_y, fy, out=j_theta[:, 1, 6])
    mul(xy2, fy, out=j_theta[:, 1, 7])
    mul(fy_y, r6, out=j_theta[:, 1, 8])


def project(points: np.ndarray, theta: np.ndarray, jacobians: bool = False):
    """Pixels ``(N, 2)`` of camera-frame points ``(N, 3)``.

    With ``jacobians`` also ``d uv / d P (N, 2, 3)`` and ``d uv / d theta (N, 2, 9)``.
    ``theta`` is ``(9,)`` (one camera) or ``(N, 9)`` (one per point).

    Evaluated on 1-D columns in chunks of :data:`CHUNK` points: this is the hot path of
    every intrinsics iteration.
    """
    points = np.asarray(points, dtype=float)
    th = np.asarray(theta, dtype=float)  # (9,) gives scalars: no (N, 9) copies
    n = len(points)
    uv = np.empty((n, 2))
    j_point = np.empty((n, 2, 3)) if jacobians else None
    j_theta = np.empty((n, 2, 9)) if jacobians else None
    for s in range(0, n, CHUNK):
        sl = slice(s, s + CHUNK)
        p = points[sl]
        _project_into((p[:, 0], p[:, 1], p[:, 2]), th if th.ndim == 1 else th[sl], uv[sl],
                      None if j_point is None else j_point[sl],
                      None if j_theta is None else j_theta[sl])
    if not jacobians:
        return uv
    return uv, j_point, j_theta


def distort_columns(x: np.ndarray, y: np.ndarray, th: np.ndarray, jacobian: bool = True):
    """Brown-Conrady distortion of normalized columns ``x, y`` (each ``(N,)``; ``th`` the
    ``(9,)`` or ``(N, 9)`` parameters): ``(xd, yd)`` and, with ``jacobian``, also ``(a, b,
    d)`` with ``d (xd, yd) / d (x, y) = [[a, b], [b, d]]``. The formulas behind
    :func:`distort` (which adds the coefficient columns) and Newton's undistortion."""
    k1, k2, p1, p2, k3 = th[..., 4], th[..., 5], th[..., 6], th[..., 7], th[..., 8]
    xx, yy, xy = x * x, y * y, x * y
    r2 = xx + yy
    r4 = r2 * r2
    radial = 1 + k1 * r2 + k2 * r4 + k3 * (r4 * r2)
    xy2 = 2 * xy
    xd = x * radial + p1 * xy2 + p2 * (r2 + 2 * xx)
    yd = y * radial + p1 * (r2 + 2 * yy) + p2 * xy2
    if not jacobian:
        return xd, yd
    dr2 = 2 * (k1 + 2 * k2 * r2 + 3 * k3 * r4)  # 2 d radial / d r2
    a = radial + xx * dr2 + 2 * p1 * y + 6 * p2 * x
    b = xy * dr2 + 2 * p1 * x + 2 * p2 * y
    d = radial + yy * dr2 + 6 * p1 * y + 2 * p2 * x
    return xd, yd, a, b, d


def undistort_normalized(xd: np.ndarray, theta: np.ndarray, iterations: int = 50,
                         tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`distort` by Newton's method, vectorized over points.

    Returns ``(xy (N, 2), converged (N,) bool)``; a point is converged when the re-distorted
    point is within ``sqrt(tol)`` of ``xd`` (normalized units).
    """
    th = np.asarray(theta, dtype=float)
    ux = np.ascontiguousarray(xd[:, 0], dtype=float)
    uy = np.ascontiguousarray(xd[:, 1], dtype=float)
    x, y = ux.copy(), uy.copy()
    for _ in range(iterations):
        fx, fy, a, b, d = distort_columns(x, y, th)
        ex, ey = fx - ux, fy - uy
        det = a * d - b * b
        ok = np.abs(det) > 1e-12
        inv = ok / np.where(ok, det, 1.0)  # 0 where the step is skipped
        dx = (d * ex - b * ey) * inv
        dy = (a * ey - b * ex) * inv
        x -= dx
        y -= dy
        if np.abs(dx).max(initial=0.0) < tol and np.abs(dy).max(initial=0.0) < tol:
            break
    fx, fy = distort_columns(x, y, th, jacobian=False)
    resid = np.hypot(fx - ux, fy - uy)
    return np.stack([x, y], axis=1), np.isfinite(resid) & (resid < np.sqrt(tol))


class Pinhole(LensModel):
    """Pinhole + Brown-Conrady (OpenCV's 5-coefficient model; ROS ``plumb_bob``, Kalibr
    ``pinhole-radtan``). Valid in front of the camera (``Z > 0``)."""

    name = "pinhole"
    kalibr_name = "pinhole-radtan"
    ros_name = "plumb_bob"
    param_names = PARAM_NAMES

    def project_into(self, points, th, uv, valid, j_point=None, j_theta=None, j_rot=None):
        np.greater(points[2], 0.0, out=valid)
        _project_into(points, th, uv, j_point, j_theta, j_rot)

    def unproject(self, uv, params):
        th = np.asarray(params, dtype=float)
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        xd = np.stack([(uv[:, 0] - th[2]) / th[0], (uv[:, 1] - th[3]) / th[1]], axis=1)
        xy, ok = undistort_normalized(xd, th)
        rays = np.c_[xy, np.ones(len(xy))]
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        return rays, ok & np.isfinite(rays).all(axis=1)


    def to_kalibr(self, params):
        """Kalibr's ``radtan`` has ``k1, k2, p1, p2`` only: refused when ``k3`` is not 0."""
        p = np.asarray(params, dtype=float)
        if p[8] != 0:
            raise InputError("Kalibr's radtan model has no k3 (k1, k2, p1, p2 only); fit "
                             "with k3 fixed at 0 to write a Kalibr camchain")
        return p[:4].tolist(), p[4:8].tolist()

    def from_kalibr(self, intrinsics, coeffs):
        """``k3 = 0`` (radtan has four coefficients; none is no distortion)."""
        intr = np.asarray(intrinsics, dtype=float).ravel()
        c = np.asarray(coeffs if coeffs is not None else [], dtype=float).ravel()
        c = c if c.size else np.zeros(4)
        if intr.size != 4 or c.size != 4:
            raise InputError("Kalibr pinhole-radtan needs 4 intrinsics and 4 "
                             f"distortion_coeffs (k1, k2, p1, p2), got {intr.size} and "
                             f"{c.size}")
        return np.r_[intr, c, 0.0]


PINHOLE = register_model(Pinhole())
