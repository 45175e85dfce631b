"""Point-to-plane residuals ``r = n . (T p - q)`` (metres), one SE3 slot ``T_target_source``.

``n`` is the unit normal of the target surface at ``q``. The Jacobian with respect to a
left perturbation is ``[n^T, (T p x n)^T]``.
"""

from __future__ import annotations

import numpy as np

from .._native import kernels as _kernels
from .base import ResidualFamily


def cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``a x b`` for ``(N, 3)`` arrays (several times faster than ``np.cross``)."""
    out = np.empty_like(a)
    out[:, 0] = a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1]
    out[:, 1] = a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2]
    out[:, 2] = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    return out


class PointToPlane(ResidualFamily):
    """``N`` pairs: source ``p (N, 3)``, target ``q (N, 3)``, target normals ``n (N, 3)``."""

    residual_dim = 1

    def __init__(self, source: np.ndarray, target: np.ndarray, normals: np.ndarray) -> None:
        self.source = np.ascontiguousarray(source, dtype=float)
        self.target = np.ascontiguousarray(target, dtype=float)
        self.normals = np.ascontiguousarray(normals, dtype=float)

    def evaluate(self, values, indices, jacobians=True):
        """Residuals ``(N, 1)`` and the Jacobian ``[(N, 1, 6)]``, one pair at a time in
        compiled code (``csrc/registration.c``: numpy made six passes over the
        pairs, a fifth of an ICP registration at 10k points)."""
        n = len(self.source)
        r = np.empty((n, 1))
        j = np.empty((n, 1, 6)) if jacobians else None
        _kernels.point_to_plane(values[0][0], self.source, self.target, self.normals, r, j)
        return r, None if j is None else [j]
