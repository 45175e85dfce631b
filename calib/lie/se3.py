"""SE(3): rigid transforms as 4x4 matrices, twists ``xi = (rho, phi)`` (translation first).

Every function takes one element (``(6,)`` or ``(4, 4)``) or a batch (``(N, 6)`` or
``(N, 4, 4)``) and returns the same form. Conventions: :mod:`calib.lie`.
"""

from __future__ import annotations

import numpy as np

from . import so3
from ._checks import as_batch, unbatch
from ._series import cos_series_4, se3_q_coeff3, t_minus_sin_over_t3


def hat(xi: np.ndarray) -> np.ndarray:
    """``(..., 6) -> (..., 4, 4)`` Lie-algebra matrix ``[[hat(phi), rho], [0, 0]]``."""
    xi = np.asarray(xi, dtype=float)
    out = np.zeros(xi.shape[:-1] + (4, 4))
    out[..., :3, :3] = so3.hat(xi[..., 3:])
    out[..., :3, 3] = xi[..., :3]
    return out


def vee(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hat`: ``(..., 4, 4) -> (..., 6)``."""
    m = np.asarray(m, dtype=float)
    return np.concatenate([m[..., :3, 3], so3.vee(m[..., :3, :3])], axis=-1)


def from_rt(rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Transforms from rotations ``(..., 3, 3)`` and translations ``(..., 3)``."""
    rot = np.asarray(rot, dtype=float)
    t = np.asarray(t, dtype=float)
    out = np.zeros(np.broadcast_shapes(rot.shape[:-2], t.shape[:-1]) + (4, 4))
    out[..., :3, :3] = rot
    out[..., :3, 3] = t
    out[..., 3, 3] = 1.0
    return out


def to_rt(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(R, t)`` views of transforms ``(..., 4, 4)``."""
    T = np.asarray(T, dtype=float)
    return T[..., :3, :3], T[..., :3, 3]


def exp(xi: np.ndarray) -> np.ndarray:
    """``Exp(xi)``: ``(6,)|(N, 6) -> (4, 4)|(N, 4, 4)``; translation ``J_l(phi) rho``."""
    x, single = as_batch(xi, (6,), "xi")
    rho, phi = x[:, :3], x[:, 3:]
    rot = so3._exp(phi)
    t = np.einsum("nij,nj->ni", so3._jl(phi, 1.0), rho)
    return unbatch(from_rt(rot, t), single)


def log(T: np.ndarray) -> np.ndarray:
    """``Log(T)``: ``(4, 4)|(N, 4, 4) -> (6,)|(N, 6)``, rotation part with norm in ``[0, pi]``."""
    m, single = as_batch(T, (4, 4), "T")
    so3._check_rotation(m[:, :3, :3], "T[:3, :3]")
    phi = so3._log(m[:, :3, :3])
    rho = np.einsum("nij,nj->ni", so3._jl_inv(phi, 1.0), m[:, :3, 3])
    return unbatch(np.concatenate([rho, phi], axis=1), single)


def compose(T1: np.ndarray, T2: np.ndarray) -> np.ndarray:
    """``T1 * T2`` (broadcasting over batch axes): ``T_a_c = compose(T_a_b, T_b_c)``."""
    a = np.asarray(T1, dtype=float)
    b = np.asarray(T2, dtype=float)
    out = np.zeros(np.broadcast_shapes(a.shape, b.shape))
    out[..., :3, :3] = a[..., :3, :3] @ b[..., :3, :3]
    out[..., :3, 3] = np.einsum("...ij,...j->...i", a[..., :3, :3], b[..., :3, 3]) + a[..., :3, 3]
    out[..., 3, 3] = 1.0
    return out


def inverse(T: np.ndarray) -> np.ndarray:
    """``T^-1`` computed as ``[R^T, -R^T t]`` (exact for rigid transforms)."""
    m = np.asarray(T, dtype=float)
    rt = np.swapaxes(m[..., :3, :3], -1, -2)
    return from_rt(rt, -np.einsum("...ij,...j->...i", rt, m[..., :3, 3]))


def act(T: np.ndarray, points: np.ndarray, jacobian: bool = False):
    """Transform points: ``p' = R p + t``.

    ``T`` is ``(4, 4)`` (applied to all points) or ``(N, 4, 4)`` (one per point);
    ``points`` is ``(3,)`` or ``(N, 3)``. With ``jacobian=True`` also returns
    ``d(Exp(delta) T p)/d delta = [I, -hat(p')]`` shaped ``(N, 3, 6)`` (or ``(3, 6)``).
    """
    m = np.asarray(T, dtype=float)
    p = np.asarray(points, dtype=float)
    if m.shape[-2:] != (4, 4) or p.shape[-1:] != (3,):
        from ..errors import InputError

        raise InputError(f"act: expected T (...,4,4) and points (...,3), got {m.shape}, {p.shape}")
    if m.ndim == 2:  # a contiguous R^T keeps matmul on BLAS (a transposed view does not)
        out = p @ np.ascontiguousarray(m[:3, :3].T) + m[:3, 3]
    else:
        out = np.einsum("...ij,...j->...i", m[..., :3, :3], p) + m[..., :3, 3]
    if not jacobian:
        return out
    jac = np.zeros(out.shape[:-1] + (3, 6))
    jac[..., 0, 0] = jac[..., 1, 1] = jac[..., 2, 2] = 1.0
    jac[..., :, 3:] = -so3.hat(out)
    return out, jac


def adjoint(T: np.ndarray) -> np.ndarray:
    """``Ad(T) = [[R, hat(t) R], [0, R]]`` so that ``T Exp(xi) T^-1 = Exp(Ad(T) xi)``."""
    m = np.asarray(T, dtype=float)
    rot, t = m[..., :3, :3], m[..., :3, 3]
    out = np.zeros(m.shape[:-2] + (6, 6))
    out[..., :3, :3] = rot
    out[..., 3:, 3:] = rot
    out[..., :3, 3:] = so3.hat(t) @ rot
    return out


def _q_matrix(rho: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Barfoot's ``Q(rho, phi)``, the off-diagonal block of SE3's left Jacobian."""
    theta = np.linalg.norm(phi, axis=-1)
    p = so3.hat(phi)
    r = so3.hat(rho)
    c1 = t_minus_sin_over_t3(theta)[:, None, None]
    c2 = cos_series_4(theta)[:, None, None]
    c3 = se3_q_coeff3(theta)[:, None, None]
    pr = p @ r
    rp = r @ p
    prp = pr @ p
    pp = p @ p
    return (0.5 * r + c1 * (pr + rp + prp) + c2 * (pp @ r + rp @ p - 3.0 * prp)
            + c3 * (prp @ p + pp @ r @ p))


def _jl(x: np.ndarray) -> np.ndarray:
    rho, phi = x[:, :3], x[:, 3:]
    j = so3._jl(phi, 1.0)
    out = np.zeros((x.shape[0], 6, 6))
    out[:, :3, :3] = j
    out[:, 3:, 3:] = j
    out[:, :3, 3:] = _q_matrix(rho, phi)
    return out


def _jl_inv(x: np.ndarray) -> np.ndarray:
    rho, phi = x[:, :3], x[:, 3:]
    ji = so3._jl_inv(phi, 1.0)
    out = np.zeros((x.shape[0], 6, 6))
    out[:, :3, :3] = ji
    out[:, 3:, 3:] = ji
    out[:, :3, 3:] = -ji @ _q_matrix(rho, phi) @ ji
    return out


def left_jacobian(xi: np.ndarray) -> np.ndarray:
    """``J_l(xi)`` ``(6, 6)``: ``Exp(xi + d) ~= Exp(J_l d) Exp(xi)``."""
    x, single = as_batch(xi, (6,), "xi")
    return unbatch(_jl(x), single)


def right_jacobian(xi: np.ndarray) -> np.ndarray:
    """``J_r(xi) = J_l(-xi)``: ``Exp(xi + d) ~= Exp(xi) Exp(J_r d)``."""
    x, single = as_batch(xi, (6,), "xi")
    return unbatch(_jl(-x), single)


def left_jacobian_inv(xi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`left_jacobian`."""
    x, single = as_batch(xi, (6,), "xi")
    return unbatch(_jl_inv(x), single)


def right_jacobian_inv(xi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`right_jacobian`."""
    x, single = as_batch(xi, (6,), "xi")
    return unbatch(_jl_inv(-x), single)
