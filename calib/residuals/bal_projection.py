"""BAL ("Bundle Adjustment in the Large") reprojection residuals.

Model (Agarwal et al. 2010): ``P = R X + t`` (camera frame), ``p = -P_xy / P_z`` (the camera
looks down -z), ``u = f (1 + k1 |p|^2 + k2 |p|^4) p``; residual ``u - observed`` (pixels,
image centre at the origin). Slots: camera pose ``T_cam_world`` (SE3, left perturbation),
camera intrinsics ``(f, k1, k2)`` (Euclidean), point ``X`` (Euclidean, usually Schur-
eliminated). Jacobians ``(N, 2, 6)``, ``(N, 2, 3)``, ``(N, 2, 3)``.
"""

from __future__ import annotations

import numpy as np

from ..lie import so3
from .base import ResidualFamily

#: ``P @ _NEG_HAT`` is ``-hat(P)`` flattened (entries 0, +-P_i): one product, not six
#: assignments (``0.0 -`` keeps the zeros positive)
_NEG_HAT = 0.0 - so3.hat(np.eye(3)).reshape(3, 9)


_EYE2 = np.eye(2)


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take(a.reshape(len(a), -1), idx, axis=0).reshape((len(idx),) + a.shape[1:])


class BALProjection(ResidualFamily):
    """``N`` observations ``observed (N, 2)`` (pixels)."""

    residual_dim = 2

    def __init__(self, observed: np.ndarray) -> None:
        self.observed = np.ascontiguousarray(observed, dtype=float)

    #: fewest observations evaluated in row chunks: below, the whole family's Jacobian
    #: (192 bytes a row) stays under glibc's 32 MB mmap ceiling and is reused from the heap,
    #: and whole-family numpy calls are cheaper than more of them (problem-49, 31,843 rows:
    #: 2.43 s CPU whole, 2.57 s in 8 chunks); above it every linearization faulted its fresh
    #: arrays in (1,000 cameras / 500k rows: 17.6 -> 11.6 s of evaluation, peak RSS
    #: 758 -> 686 MB in chunks)
    CHUNK_MIN_ROWS = 1 << 17

    def restrict(self, rows: slice) -> BALProjection | None:
        """The observations ``rows``, or ``None`` (evaluate whole) for small problems."""
        if len(self.observed) < self.CHUNK_MIN_ROWS:
            return None
        return BALProjection(self.observed[rows])

    def camera_points(self, values, indices) -> np.ndarray:
        """Points in the camera frame ``P (N, 3)``."""
        T = values[0]
        rot = _take(T[:, :3, :3], indices[0])
        X = _take(values[2], indices[2])
        return np.einsum("nij,nj->ni", rot, X) + _take(T[:, :3, 3], indices[0])

    #: below this many observations the per-observation matrix form is used: each numpy call
    #: then costs more than its arithmetic, and the matrix form makes about a quarter of the
    #: column form's calls (dubrovnik-3-7, 19 rows: residual + Jacobians 225 -> 70 us)
    SMALL_ROWS = 256

    def evaluate(self, values, indices, jacobians=True):
        if len(self.observed) < self.SMALL_ROWS:
            return self._evaluate_small(values, indices, jacobians)
        return self._evaluate_columns(values, indices, jacobians)

    def _evaluate_columns(self, values, indices, jacobians):
        """:meth:`evaluate` on scalar columns (many rows)."""
        # scalar columns (N,) throughout: numpy is fastest on contiguous 1-D arrays
        T, K = values[0], values[1]
        ci = indices[0]
        R = _take(np.ascontiguousarray(T[:, :3, :3]).reshape(len(T), 9), ci)  # (N, 9)
        t = _take(np.ascontiguousarray(T[:, :3, 3]), ci)
        X = _take(values[2], indices[2])
        X0, X1, X2 = X[:, 0], X[:, 1], X[:, 2]
        x = R[:, 0] * X0 + R[:, 1] * X1 + R[:, 2] * X2 + t[:, 0]
        y = R[:, 3] * X0 + R[:, 4] * X1 + R[:, 5] * X2 + t[:, 1]
        z = R[:, 6] * X0 + R[:, 7] * X1 + R[:, 8] * X2 + t[:, 2]
        k = _take(K, indices[1])
        f, k1, k2 = k[:, 0], k[:, 1], k[:, 2]
        inv_z = 1.0 / z
        px, py = -x * inv_z, -y * inv_z
        r2 = px * px + py * py
        dist = 1.0 + r2 * (k1 + k2 * r2)
        fd = f * dist
        res = np.empty((len(x), 2))
        res[:, 0] = fd * px
        res[:, 1] = fd * py
        res -= self.observed
        if not jacobians:
            return res, None
        return res, self._jacobians(R, x, y, z, inv_z, px, py, r2, dist, fd, f, k1, k2)

    @staticmethod
    def _jacobians(R, x, y, z, inv_z, px, py, r2, dist, fd, f, k1, k2):
        """``[(N, 2, 6), (N, 2, 3), (N, 2, 3)]``: views of one ``(N, 2, 12)`` buffer."""
        n = len(x)
        J = np.empty((n, 2, 12))
        # du/dp = f dist I + f (2 k1 + 4 k2 r2) p p^T ; dp/dP = -inv_z [[1, 0, px], [0, 1, py]]
        g = f * (2.0 * k1 + 4.0 * k2 * r2)
        gxy = g * px * py
        for row, (d0, d1, pr) in enumerate(((fd + g * px * px, gxy, px),
                                            (gxy, fd + g * py * py, py))):
            a = -d0 * inv_z
            b = -d1 * inv_z
            c = -(d0 * px + d1 * py) * inv_z
            Jr = J[:, row]
            Jr[:, 0], Jr[:, 1], Jr[:, 2] = a, b, c  # d(Exp(d) T X)/d d = [I, -hat(P)]
            Jr[:, 3] = c * y - b * z
            Jr[:, 4] = a * z - c * x
            Jr[:, 5] = b * x - a * y
            Jr[:, 6] = dist * pr
            fr = f * r2 * pr
            Jr[:, 7] = fr
            Jr[:, 8] = fr * r2
            for col in range(3):  # d/dX = du/dP R
                Jr[:, 9 + col] = a * R[:, col] + b * R[:, 3 + col] + c * R[:, 6 + col]
        return [J[:, :, :6], J[:, :, 6:9], J[:, :, 9:]]

    def _evaluate_small(self, values, indices, jacobians):
        """:meth:`evaluate` in per-observation matrix form (few numpy calls, small ``N``)."""
        T = _take(values[0], indices[0])  # (N, 4, 4)
        R = T[:, :3, :3]
        X = _take(values[2], indices[2])
        P = (R @ X[:, :, None])[:, :, 0] + T[:, :3, 3]  # camera frame (N, 3)
        k = _take(values[1], indices[1])
        f = k[:, 0]
        inv_z = 1.0 / P[:, 2]
        p = P[:, :2] * -inv_z[:, None]
        r2 = np.add.reduce(p * p, axis=1)
        dist = 1.0 + r2 * (k[:, 1] + k[:, 2] * r2)
        fd = f * dist
        res = fd[:, None] * p - self.observed
        if not jacobians:
            return res, None
        J = np.empty((len(res), 2, 12))
        # du/dP = (f dist I + g p p^T) dp/dP with dp/dP = -inv_z [I | p], g = f (2 k1 + 4 k2 r2)
        # (and (f dist I + g p p^T) p = (f dist + g r2) p)
        s = -inv_z
        g = f * (2.0 * k[:, 1] + 4.0 * k[:, 2] * r2)
        A = J[:, :, :3]
        A[:, :, :2] = p[:, :, None] * ((g * s)[:, None] * p)[:, None, :] + \
            (fd * s)[:, None, None] * _EYE2
        A[:, :, 2] = p * ((fd + g * r2) * s)[:, None]
        np.matmul(A, (P @ _NEG_HAT).reshape(-1, 3, 3), out=J[:, :, 3:6])  # [I, -hat(P)]
        q = np.empty((len(res), 1, 3))  # d/d(f, k1, k2) = (dist, f r2, f r2^2) p
        q[:, 0, 0] = dist
        np.multiply(f, r2, out=q[:, 0, 1])
        np.multiply(q[:, 0, 1], r2, out=q[:, 0, 2])
        np.multiply(p[:, :, None], q, out=J[:, :, 6:9])
        np.matmul(A, R, out=J[:, :, 9:])
        return res, [J[:, :, :6], J[:, :, 6:9], J[:, :, 9:]]
