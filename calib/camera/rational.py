"""OpenCV's rational distortion model (``CALIB_RATIONAL_MODEL``), vectorized, with analytic
Jacobians.

Parameters ``(fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6)`` (OpenCV's order; ROS
``rational_polynomial``; Kalibr has no such model). A point ``P = (X, Y, Z)`` in the camera
frame (metres, ``Z > 0`` in front) maps to ``x = X/Z, y = Y/Z``, ``r2 = x^2 + y^2``,

    radial = (1 + k1 r2 + k2 r2^2 + k3 r2^3) / (1 + k4 r2 + k5 r2^2 + k6 r2^3)
    xd = x radial + 2 p1 x y + p2 (r2 + 2 x^2)
    yd = y radial + p1 (r2 + 2 y^2) + 2 p2 x y

and ``u = fx xd + cx``, ``v = fy yd + cy`` (as ``cv2.projectPoints``).

Valid region: ``Z > 0``, a non-zero denominator and a radial map ``r -> r radial(r^2)``
that increases at the point (``radial + 2 r2 d radial / d r2 > 0``): the projection is
locally one-to-one there. This is a local test on purpose: fitted rational lenses (OpenCV's
GoPro fits, e.g.) often carry a numerator and a denominator root a hair apart inside their
own image; that pole-zero pair spoils only a hairline ring, and OpenCV's model is sound on
both sides of it. :func:`r2_max` gives the first radius where the map stops increasing or
the denominator vanishes (for diagnostics). :meth:`Rational.unproject` inverts the
distortion by Newton's method and accepts a pixel where it converged to a point of the
valid region with a positive Jacobian determinant.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial import polynomial as poly

from .base import LensModel, register_model, rotation_rows

PARAM_NAMES = ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")


@lru_cache(maxsize=256)
def _r2_max_scalar(k: tuple[float, ...]) -> float:
    k1, k2, k3, k4, k5, k6 = k
    num, den = np.array([1.0, k1, k2, k3]), np.array([1.0, k4, k5, k6])
    # d (r radial) / d r = (num den + 2 s (num' den - num den')) / den^2, s = r^2
    slope = poly.polyadd(poly.polymul(num, den), poly.polymulx(2 * poly.polysub(
        poly.polymul(poly.polyder(num), den), poly.polymul(num, poly.polyder(den)))))
    best = np.inf
    for c in (den, slope):
        c = poly.polytrim(c, tol=0)
        if len(c) < 2:
            continue
        roots = poly.polyroots(c)
        s = roots.real[(np.abs(roots.imag) <= 1e-12 * np.abs(roots)) & (roots.real > 0)]
        if s.size:
            best = min(best, float(s.min()))
    return best


def r2_max(params: np.ndarray) -> np.ndarray | float:
    """The first ``r2 > 0`` where the denominator vanishes or the radial map ``r -> r
    radial(r^2)`` stops increasing (``inf`` when never), of ``params (12,)`` (a float) or
    ``(N, 12)`` (an ``(N,)`` array): the radius up to which the distortion is one-to-one
    from the image centre out (tangential terms aside)."""
    th = np.asarray(params, dtype=float)
    cols = [4, 5, 8, 9, 10, 11]
    if th.ndim == 1:
        return _r2_max_scalar(tuple(float(v) for v in th[cols]))
    uniq, inv = np.unique(th[:, cols], axis=0, return_inverse=True)
    return np.array([_r2_max_scalar(tuple(r)) for r in uniq.tolist()])[inv.ravel()]


#: A denominator root ``s`` (in ``r^2``) counts as a pole inside the image when ``|Im s| <=
#: POLE_SHARPNESS Re s`` (the denominator nearly vanishes on the ring ``r^2 = Re s``), and as
#: cancelled when a numerator root lies within ``POLE_SHARPNESS |s|`` of it.
POLE_SHARPNESS = 0.05


def cancelling_pair(params: np.ndarray, r2_limit: float) -> float | None:
    """``r^2`` of the innermost near-real denominator root of ``params (12,)`` that a
    numerator root nearly cancels (:data:`POLE_SHARPNESS`), with ``0 < r^2 <= r2_limit``; or
    None. Such a pole-zero pair is a narrow spike of the radial factor on that ring: a
    least-squares fit sharpens it to chase the noise of the corners near the ring, lowering
    the cost slowly along a nearly flat valley (without end on some sets), so the
    coefficients are not determined by the views."""
    p = np.asarray(params, dtype=float)
    num = poly.polytrim(np.array([1.0, p[4], p[5], p[8]]), tol=0)
    den = poly.polytrim(np.array([1.0, p[9], p[10], p[11]]), tol=0)
    if len(num) < 2 or len(den) < 2:
        return None
    zn, zd = poly.polyroots(num), poly.polyroots(den)
    best = None
    for z in zd:
        near = np.abs(zn - z) <= POLE_SHARPNESS * abs(z)
        if 0 < z.real <= r2_limit and abs(z.imag) <= POLE_SHARPNESS * z.real and near.any():
            best = z.real if best is None else min(best, z.real)
    return None if best is None else float(best)


def _distort_cols(x: np.ndarray, y: np.ndarray, th: np.ndarray, with_slope: bool = False):
    """The distortion on 1-D columns ``x, y (N,)`` (``th (12,)`` or one row per point
    ``(N, 12)``): ``(xd, yd, a, b, d, slope)`` with the symmetric Jacobian ``d xd / d xy =
    [[a, b], [b, d]]`` and, ``with_slope``, the radial slope ``d (r radial) / d r`` (else
    None; all ``(N,)``)."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (th[..., i] for i in range(4, 12))
    r2 = x * x + y * y
    inv_den = 1.0 / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) * inv_den
    dr = ((k1 + r2 * (2 * k2 + 3 * k3 * r2))
          - radial * (k4 + r2 * (2 * k5 + 3 * k6 * r2))) * inv_den  # d radial / d r2
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    a = radial + 2 * x * x * dr + 2 * p1 * y + 6 * p2 * x
    b = 2 * x * y * dr + 2 * p1 * x + 2 * p2 * y
    d = radial + 2 * y * y * dr + 6 * p1 * y + 2 * p2 * x
    return xd, yd, a, b, d, (radial + 2 * r2 * dr) if with_slope else None


def distort(xy: np.ndarray, th: np.ndarray):
    """Distorted normalized points ``xd (N, 2)`` of ``xy (N, 2)``, ``d xd / d xy (N, 2, 2)``
    and the radial slope ``d (r radial) / d r (N,)`` (for :meth:`Rational.unproject`)."""
    xd, yd, a, b, d, slope = _distort_cols(xy[:, 0], xy[:, 1], th, True)
    j = np.empty((len(xd), 2, 2))
    j[:, 0, 0], j[:, 0, 1], j[:, 1, 0], j[:, 1, 1] = a, b, b, d
    return np.stack([xd, yd], axis=1), j, slope


#: Starts (times the distorted point) from which :meth:`Rational.unproject` retries the
#: pixels where Newton's method from the distorted point fails, in order of preference.
RETRY_SCALES = (1.5, 0.7, 2.5)


class Rational(LensModel):
    """OpenCV's rational model (module docstring)."""

    name = "rational"
    ros_name = "rational_polynomial"
    param_names = PARAM_NAMES

    def project_into(self, points, th, uv, valid, j_point=None, j_theta=None, j_rot=None):
        fx, fy, cx, cy = th[..., 0], th[..., 1], th[..., 2], th[..., 3]
        k1, k2, p1, p2, k3, k4, k5, k6 = (th[..., i] for i in range(4, 12))
        X, Y, Z = points
        inv_z = 1.0 / Z
        x = X * inv_z
        y = Y * inv_z
        xx, yy, xy = x * x, y * y, x * y
        r2 = xx + yy
        r4 = r2 * r2
        r6 = r4 * r2
        num = 1 + k1 * r2 + k2 * r4 + k3 * r6
        den = 1 + k4 * r2 + k5 * r4 + k6 * r6
        inv_den = 1.0 / den
        radial = num * inv_den
        t_x = r2 + 2 * xx
        t_y = r2 + 2 * yy
        xy2 = 2 * xy
        xd = x * radial + p1 * xy2 + p2 * t_x
        yd = y * radial + p1 * t_y + p2 * xy2
        np.add(fx * xd, cx, out=uv[:, 0])
        np.add(fy * yd, cy, out=uv[:, 1])
        # d radial / d r2
        dr = ((k1 + 2 * k2 * r2 + 3 * k3 * r4) - radial * (k4 + 2 * k5 * r2 + 3 * k6 * r4)
              ) * inv_den
        np.greater(Z, 0.0, out=valid)
        valid &= (radial + 2 * r2 * dr > 0) & (den != 0)
        if j_point is None:
            return
        a = radial + 2 * xx * dr + 2 * p1 * y + 6 * p2 * x
        b = xy2 * dr + 2 * p1 * x + 2 * p2 * y
        d = radial + 2 * yy * dr + 6 * p1 * y + 2 * p2 * x
        fxz, fyz = fx * inv_z, fy * inv_z
        u0, u1 = fxz * a, fxz * b
        u2 = -(u0 * x + u1 * y)
        v0, v1 = fyz * b, fyz * d
        v2 = -(v0 * x + v1 * y)
        j_point[:, 0, 0], j_point[:, 0, 1], j_point[:, 0, 2] = u0, u1, u2
        j_point[:, 1, 0], j_point[:, 1, 1], j_point[:, 1, 2] = v0, v1, v2
        if j_rot is not None:
            rotation_rows(points, (u0, u1, u2), (v0, v1, v2), j_rot)
        mul = np.multiply
        j_theta[:, 0, 0] = xd
        j_theta[:, 0, 1] = 0.0
        j_theta[:, 0, 2] = 1.0
        j_theta[:, 0, 3] = 0.0
        j_theta[:, 1, 0] = 0.0
        j_theta[:, 1, 1] = yd
        j_theta[:, 1, 2] = 0.0
        j_theta[:, 1, 3] = 1.0
        fx_x, fy_y = fx * x * inv_den, fy * y * inv_den  # numerator terms / den
        fx_xr, fy_yr = -fx_x * radial, -fy_y * radial  # denominator terms
        for col, (px, py, pw) in ((4, (fx_x, fy_y, r2)), (5, (fx_x, fy_y, r4)),
                                  (8, (fx_x, fy_y, r6)), (9, (fx_xr, fy_yr, r2)),
                                  (10, (fx_xr, fy_yr, r4)), (11, (fx_xr, fy_yr, r6))):
            mul(px, pw, out=j_theta[:, 0, col])
            mul(py, pw, out=j_theta[:, 1, col])
        mul(xy2, fx, out=j_theta[:, 0, 6])
        mul(t_x, fx, out=j_theta[:, 0, 7])
        mul(t_y, fy, out=j_theta[:, 1, 6])
        mul(xy2, fy, out=j_theta[:, 1, 7])

    @np.errstate(divide="ignore", invalid="ignore")
    def unproject(self, uv, params):
        """Unit rays ``(N, 3)`` and ``valid (N,)`` of pixels ``uv (N, 2)``: Newton's method on
        the distortion from the distorted point (as the pinhole model); points where that
        fails (beyond a near-cancelling pole of the ratio, say) are retried from further
        out and further in."""
        th = np.asarray(params, dtype=float)
        uv = np.asarray(uv, dtype=float).reshape(-1, 2)
        xd = np.stack([(uv[:, 0] - th[..., 2]) / th[..., 0],
                       (uv[:, 1] - th[..., 3]) / th[..., 1]], axis=1)
        xy, valid = _newton(xd, xd, th)
        bad = np.flatnonzero(~valid)
        if bad.size:  # the retries run as one batch; the first that converges wins
            scales = np.array(RETRY_SCALES)
            tb = th if th.ndim == 1 else np.tile(th[bad], (len(scales), 1))
            start = (scales[:, None, None] * xd[bad][None]).reshape(-1, 2)
            xy_b, ok = _newton(np.tile(xd[bad], (len(scales), 1)), start, tb)
            ok = ok.reshape(len(scales), -1)
            first = np.argmax(ok, axis=0)
            hit = ok.any(axis=0)
            pick = (first * len(bad) + np.arange(len(bad)))[hit]
            xy[bad[hit]], valid[bad[hit]] = xy_b[pick], True
        rays = np.c_[xy, np.ones(len(xy))]
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        return rays, valid & np.isfinite(rays).all(axis=1)


def _newton(xd: np.ndarray, xy: np.ndarray, th: np.ndarray, iterations: int = 50
            ) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``distort(xy) = xd`` from ``xy``; ``(xy, valid)`` with valid = converged to a
    point with a positive Jacobian determinant and radial slope.

    The iteration runs :func:`_distort_cols` (no stacked temporaries) and works on the
    points still moving (a finite step of 1e-14 or more): the few that never settle
    (beyond the valid region) do not keep the converged ones in the loop."""
    x, y = xy[:, 0].copy(), xy[:, 1].copy()
    act = np.arange(len(x))
    for _ in range(iterations):
        xa, ya = x[act], y[act]
        f0, f1, a, b, d, _ = _distort_cols(xa, ya, th if th.ndim == 1 else th[act])
        e0 = f0 - xd[act, 0]
        e1 = f1 - xd[act, 1]
        det = a * d - b * b
        ok = np.abs(det) > 1e-12
        safe = np.where(ok, det, 1.0)
        s0 = (d * e0 - b * e1) / safe * ok
        s1 = (a * e1 - b * e0) / safe * ok
        x[act] = xa - s0
        y[act] = ya - s1
        moving = ~((np.abs(s0) < 1e-14) & (np.abs(s1) < 1e-14)) & np.isfinite(s0 + s1)
        act = act[moving]
        if not act.size:
            break
    xy = np.stack([x, y], axis=1)
    f, j, slope = distort(xy, th)
    det = j[:, 0, 0] * j[:, 1, 1] - j[:, 0, 1] * j[:, 1, 0]
    resid = np.linalg.norm(f - xd, axis=1)
    return xy, np.isfinite(resid) & (resid < 1e-9) & (det > 0) & (slope > 0)


RATIONAL = register_model(Rational())
