"""Closed-form hand-eye start: Park & Martin's rotation from the Lie algebra, then linear
least squares for the translation, over all station pairs (vectorized).

Both setups reduce to ``M_i X C_i = Y`` for every station ``i`` (``C_i = T_cam_target``):
eye-in-hand ``M_i = T_base_gripper``, ``X = T_gripper_camera``, ``Y = T_base_target``;
eye-to-hand ``M_i = T_gripper_base``, ``X = T_base_camera``, ``Y = T_gripper_target``.
Pairs ``(i, j)`` give ``A X = X B`` with ``A = M_i^-1 M_j``, ``B = C_i C_j^-1``; rotation
axes ``alpha = Log(R_A) = R_X Log(R_B)`` (Park & Martin 1994), solved as an orthogonal
Procrustes problem; then ``(R_A - I) t_X = R_X t_B - t_A`` stacked; then ``Y`` averaged.
"""

from __future__ import annotations

import numpy as np

from ..errors import DegenerateError
from ..lie import se3, so3

#: Smallest singular value of the stacked ``R_A - I`` over the largest below which the
#: translation along the corresponding direction is called undetermined.
DEGENERATE_RATIO = 0.03


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, 1)
    return i, j


def project_rotation(m: np.ndarray) -> np.ndarray:
    """The rotation nearest ``m (3, 3)`` in the Frobenius norm."""
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def relative_motions(M: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` ``(K, 4, 4)`` over all station pairs ``i < j``."""
    i, j = _pairs(len(M))
    A = se3.compose(se3.inverse(M[i]), M[j])
    B = se3.compose(C[i], se3.inverse(C[j]))
    return A, B


def check_axes(A: np.ndarray, frame: str, name: str) -> None:
    """:class:`DegenerateError` when the relative rotations ``A (K, 4, 4)`` all share one
    axis: then ``name``'s translation along it (and rotation about it) is undetermined."""
    m = (A[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    _, s, vt = np.linalg.svd(m, full_matrices=False)
    if s[0] <= 0 or s[-1] / s[0] < DEGENERATE_RATIO:
        axis = vt[-1] * np.sign(vt[-1][np.argmax(np.abs(vt[-1]))])
        ax = ", ".join(f"{v:.3f}" for v in axis)
        raise DegenerateError(
            f"the stations' rotations all share one axis ({frame} axis [{ax}], spread ratio "
            f"{s[-1] / max(s[0], 1e-300):.3f} < {DEGENERATE_RATIO}): {name}'s translation "
            "along it and rotation about it are undetermined; rotate the robot about at least "
            "two different axes")


def park_martin(M: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X, Y)`` ``(4, 4)`` with ``M_i X C_i = Y`` from ``M, C (S, 4, 4)`` (see module)."""
    A, B = relative_motions(M, C)
    alpha = so3.log(A[:, :3, :3]).reshape(-1, 3)
    beta = so3.log(B[:, :3, :3]).reshape(-1, 3)
    u, _, vt = np.linalg.svd(alpha.T @ beta)
    R = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    lhs = (A[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    rhs = (B[:, :3, 3] @ R.T - A[:, :3, 3]).reshape(-1)
    t = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    X = se3.from_rt(R, t)
    Yi = se3.compose(se3.compose(M, X), C)
    Y = se3.from_rt(project_rotation(Yi[:, :3, :3].sum(axis=0)), Yi[:, :3, 3].mean(axis=0))
    return X, Y
