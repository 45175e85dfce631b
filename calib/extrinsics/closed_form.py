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

from ..errors import DegenerateError, InputError
from ..lie import se3, so3

#: Smallest singular value of the stacked ``R_A - I`` over the largest below which the
#: translation along the corresponding direction is called undetermined.
DEGENERATE_RATIO = 0.03
#: The robot's and the camera's motions must agree in scale within this factor. Consistent
#: stations give 1 within 4% (synthetic sets down to 5 stations at 2 px / 3 mm / 0.3 deg
#: noise; the real industrial set 1.004); millimetres for metres give 1000, inverted robot
#: poses or the wrong setup 0.1-0.45 or a negative scale.
SCALE_TOLERANCE = 1.5
#: The scale is only tested when the camera's translations between stations carry it: their
#: part that the unknown translation of X cannot absorb must have at least this RMS (m). A
#: camera turned about (nearly) its own centre moves a few mm and leaves the scale open,
#: while X is still determined by the robot's lever arm.
SCALE_INFORMATION_M = 0.01


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


def motion_scale(A: np.ndarray, B: np.ndarray, R: np.ndarray) -> tuple[float, float]:
    """``(s, info)``: the scale ``s`` of ``(R_A - I) t_X + t_A = s R_X t_B`` fitted with
    ``t_X`` by linear least squares over the pairs ``A, B (K, 4, 4)``
    (:func:`relative_motions`), given the rotation ``R (3, 3)`` of ``X`` (unit-free): 1 when
    the robot's and the camera's translations are in the same unit and the stations agree;
    ``info`` (m): the RMS of the camera's rotated translations ``R_X t_B`` left once their
    part that ``(R_A - I) t_X`` can absorb is removed, i.e. how much they say about ``s``."""
    M = (A[:, :3, :3] - np.eye(3)).reshape(-1, 3)
    v = -(B[:, :3, 3] @ R.T).reshape(-1)
    lhs = np.c_[M, v]
    sol = np.linalg.lstsq(lhs, -A[:, :3, 3].reshape(-1), rcond=None)[0]
    v_free = v - M @ np.linalg.lstsq(M, v, rcond=None)[0]
    return float(sol[3]), float(np.sqrt(np.mean(v_free ** 2)))


def check_scale(A: np.ndarray, B: np.ndarray, R: np.ndarray, robot: str) -> None:
    """:class:`InputError` when the robot's motions and the camera's disagree in scale
    (:func:`motion_scale` outside ``[1/SCALE_TOLERANCE, SCALE_TOLERANCE]``, where the
    camera's translations carry the scale: :data:`SCALE_INFORMATION_M`): millimetres for
    metres, inverted robot poses, the wrong setup, or robot poses paired with the wrong
    images, which would otherwise give a wrong transform (a few swapped stations may pass:
    the refinement names them as outliers). ``robot``: what the robot poses are (e.g.
    ``T_base_gripper``), for the message."""
    s, info = motion_scale(A, B, R)
    if info < SCALE_INFORMATION_M or 1.0 / SCALE_TOLERANCE <= s <= SCALE_TOLERANCE:
        return
    if 300.0 <= abs(s) <= 3000.0:
        why = ("the robot's translations are about 1000x the camera's: are the robot poses "
               "in millimetres? calib expects metres")
    elif 1.0 / 3000.0 <= abs(s) <= 1.0 / 300.0:
        why = ("the camera's translations are about 1000x the robot's: is the board's "
               "square size (or are the target poses) in millimetres? calib expects metres")
    else:
        why = (f"check that the robot poses are {robot} (not inverted), that the setup is "
               "right, and that each robot pose is paired with its own image")
    raise InputError(f"the robot's and the camera's motions disagree (their scale ratio is "
                     f"{s:.3g}, 1 for consistent stations): {why}")


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
