"""SO(3): rotations as 3x3 matrices, tangent vectors as rotation vectors ``phi`` (rad).

Every function takes one element (``(3,)`` or ``(3, 3)``) or a batch (``(N, 3)`` or
``(N, 3, 3)``) and returns the same form. Conventions: :mod:`calib.lie`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.spatial.transform import Rotation

from .._native import kernels as _kernels
from . import _series
from ._checks import as_batch, unbatch
from ._series import inv_jacobian_coeff, one_minus_cos_over_t2, t_minus_sin_over_t3


def hat(phi: np.ndarray) -> np.ndarray:
    """Skew matrix with ``hat(a) @ b == cross(a, b)``: ``(..., 3) -> (..., 3, 3)``."""
    phi = np.asarray(phi, dtype=float)
    out = np.zeros(phi.shape[:-1] + (3, 3))
    x, y, z = phi[..., 0], phi[..., 1], phi[..., 2]
    out[..., 0, 1], out[..., 0, 2] = -z, y
    out[..., 1, 0], out[..., 1, 2] = z, -x
    out[..., 2, 0], out[..., 2, 1] = -y, x
    return out


def vee(omega: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hat` (antisymmetric part): ``(..., 3, 3) -> (..., 3)``."""
    m = np.asarray(omega, dtype=float)
    return 0.5 * np.stack(
        [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]],
        axis=-1,
    )


def _exp(phi: np.ndarray) -> np.ndarray:
    """``(N, 3) -> (N, 3, 3)``, compiled (``csrc/lie.c``): Rodrigues with the coefficients'
    series of :mod:`._series` below its small angle."""
    out = np.empty((len(phi), 3, 3))
    _kernels.so3_exp(phi, _series._RODRIGUES, _series.SMALL_ANGLE, out)
    return out


def exp(phi: np.ndarray) -> np.ndarray:
    """Rotation matrix ``Exp(phi)`` (Rodrigues): ``(3,)|(N, 3) -> (3, 3)|(N, 3, 3)``."""
    p, single = as_batch(phi, (3,), "phi")
    return unbatch(_exp(p), single)


#: Largest accepted ``max |R^T R - I|`` of a matrix given as a rotation: a rotation printed
#: to 4 or more decimals passes; 2I, 0 or a reflection (det -1) is refused.
ROTATION_TOL = 1e-3


def check_rotation(r: np.ndarray, name: str = "R", tol: float = ROTATION_TOL) -> None:
    """Raise :class:`InputError` naming ``name`` unless ``r`` is a ``(3, 3)`` rotation or
    an ``(N, 3, 3)`` batch of them (orthonormal within ``tol``, determinant +1), saying how
    far off it is; a wrong shape, NaN/inf or a non-numeric value is refused as by
    :func:`as_batch`."""
    _check_rotation(as_batch(r, (3, 3), name)[0], name, tol)


def _check_rotation(r: np.ndarray, name: str = "R", tol: float = ROTATION_TOL) -> None:
    """:func:`check_rotation` of a batch already through :func:`as_batch` (float64,
    aligned, finite)."""
    dd = np.empty((len(r), 2))
    _kernels.so3_deviation(r, dd)  # (max |R^T R - I|, det R) per matrix, compiled
    dev, det = dd[:, 0], dd[:, 1]
    bad = np.flatnonzero(~((dev <= tol) & (det > 0)))
    if bad.size:
        from ..errors import InputError

        k = int(bad[0])
        which = f" (matrix {k} of {len(r)})" if len(r) > 1 else ""
        kind = "a reflection, " if det[k] < 0 and dev[k] <= tol else ""
        raise InputError(f"{name}: not a rotation matrix{which}: {kind}max |R^T R - I| = "
                         f"{dev[k]:.3g} (tolerance {tol:g}), det = {det[k]:.3g}")


def _quat_from_matrix(r: np.ndarray) -> np.ndarray:
    """Shepperd's method, batch ``(N, 3, 3) -> (N, 4)`` as ``(x, y, z, w)`` with ``w >= 0``
    (compiled, ``csrc/lie.c``: the candidate on the largest of ``r00, r11, r22, tr r``,
    normalised)."""
    out = np.empty((len(r), 4))
    _kernels.so3_quat(r, out)
    return out


def _log(r: np.ndarray) -> np.ndarray:
    """``(N, 3, 3) -> (N, 3)`` (compiled, ``csrc/lie.c``): from the quaternion ``(v, w)`` of
    :func:`_quat_from_matrix`, ``phi = 2 atan2(|v|, w) v / |v|``, by its series
    ``2 / w (1 - |v|^2 / (3 w^2))`` below ``|v| = 1e-8``."""
    out = np.empty((len(r), 3))
    _kernels.so3_log(r, out)
    return out


def angle(rot: np.ndarray) -> np.ndarray | float:
    """Rotation angle ``|Log(R)|`` in ``[0, pi]`` rad: ``(3, 3) -> float``, ``(N, 3, 3) -> (N,)``.

    ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``: full precision at every angle (the
    arccos of the trace alone loses half the digits near 0 and pi), without :func:`log`'s
    quaternion (10x cheaper for one matrix) and without its rotation check."""
    r = np.asarray(rot, dtype=float)
    s = np.stack([r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0],
                  r[..., 1, 0] - r[..., 0, 1]], axis=-1)
    c = np.trace(r, axis1=-2, axis2=-1) - 1.0
    out = np.arctan2(np.sqrt(np.sum(s * s, axis=-1)), c)
    return float(out) if out.ndim == 0 else out


def log(rot: np.ndarray) -> np.ndarray:
    """Rotation vector ``Log(R)`` with norm in ``[0, pi]``: ``(3, 3)|(N, 3, 3) -> (3,)|(N, 3)``.

    A matrix that is not a rotation (see :func:`check_rotation`) raises InputError."""
    r, single = as_batch(rot, (3, 3), "R")
    _check_rotation(r)
    return unbatch(_log(r), single)


def _jl(phi: np.ndarray, sign: float) -> np.ndarray:
    theta = np.linalg.norm(phi, axis=-1)
    k = hat(sign * phi)
    b = one_minus_cos_over_t2(theta)[..., None, None]
    c = t_minus_sin_over_t3(theta)[..., None, None]
    return np.eye(3) + b * k + c * (k @ k)


def _jl_inv(phi: np.ndarray, sign: float) -> np.ndarray:
    theta = np.linalg.norm(phi, axis=-1)
    k = hat(sign * phi)
    c = inv_jacobian_coeff(theta)[..., None, None]
    return np.eye(3) - 0.5 * k + c * (k @ k)


def left_jacobian(phi: np.ndarray) -> np.ndarray:
    """``J_l(phi)``: ``Exp(phi + d) ~= Exp(J_l d) Exp(phi)``. ``(..., 3) -> (..., 3, 3)``."""
    p, single = as_batch(phi, (3,), "phi")
    return unbatch(_jl(p, 1.0), single)


def right_jacobian(phi: np.ndarray) -> np.ndarray:
    """``J_r(phi) = J_l(-phi)``: ``Exp(phi + d) ~= Exp(phi) Exp(J_r d)``."""
    p, single = as_batch(phi, (3,), "phi")
    return unbatch(_jl(p, -1.0), single)


def left_jacobian_inv(phi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`left_jacobian` (finite for ``|phi| <= pi``)."""
    p, single = as_batch(phi, (3,), "phi")
    return unbatch(_jl_inv(p, 1.0), single)


def right_jacobian_inv(phi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`right_jacobian` (finite for ``|phi| <= pi``)."""
    p, single = as_batch(phi, (3,), "phi")
    return unbatch(_jl_inv(p, -1.0), single)


def from_quat(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrices from quaternions ``(x, y, z, w)`` (scipy's order), normalised first."""
    q, single = as_batch(q_xyzw, (4,), "q")
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    if np.any(norm < 1e-12):
        from ..errors import InputError

        raise InputError("q: zero-norm quaternion")
    x, y, z, w = (q / norm).T
    r = np.empty((q.shape[0], 3, 3))
    r[:, 0, 0] = 1 - 2 * (y * y + z * z)
    r[:, 0, 1] = 2 * (x * y - z * w)
    r[:, 0, 2] = 2 * (x * z + y * w)
    r[:, 1, 0] = 2 * (x * y + z * w)
    r[:, 1, 1] = 1 - 2 * (x * x + z * z)
    r[:, 1, 2] = 2 * (y * z - x * w)
    r[:, 2, 0] = 2 * (x * z - y * w)
    r[:, 2, 1] = 2 * (y * z + x * w)
    r[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return unbatch(r, single)


def to_quat(rot: np.ndarray) -> np.ndarray:
    """Quaternions ``(x, y, z, w)`` with ``w >= 0`` from rotation matrices."""
    r, single = as_batch(rot, (3, 3), "R")
    _check_rotation(r)
    return unbatch(_quat_from_matrix(r), single)


def from_scipy(rotation: Rotation) -> np.ndarray:
    """Matrices from a scipy ``Rotation`` (single or stacked)."""
    return np.asarray(rotation.as_matrix(), dtype=float)


def to_scipy(rot: np.ndarray) -> Rotation:
    """A scipy ``Rotation`` from ``(3, 3)`` or ``(N, 3, 3)`` matrices (scipy is imported
    here: ``calib.lie`` itself needs only numpy and calib's compiled kernels, and scipy
    costs 0.4-0.8 s at start-up)."""
    from scipy.spatial.transform import Rotation

    r, single = as_batch(rot, (3, 3), "R")
    _check_rotation(r)
    return Rotation.from_matrix(r[0] if single else r)
