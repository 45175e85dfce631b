"""Board points seen through a chain of poses ``T_cam_board = X^-1 B^s Y`` (hand-eye).

Eye-in-hand: ``X = T_gripper_camera``, ``B = T_base_gripper`` with ``s = -1``,
``Y = T_base_target``. Eye-to-hand: ``X = T_base_camera``, ``B = T_base_gripper`` with
``s = +1``, ``Y = T_gripper_target``. With ``X = Y = I`` held constant and ``s = +1`` it is the
plain board reprojection of ``B = T_cam_board`` through any :class:`~calib.camera.LensModel`.

Slots: ``([intrinsics (1, P) Euclidean,] X (1, 4, 4) SE3, Y (1, 4, 4) SE3, B (S, 4, 4) SE3)``;
the intrinsics slot is present only when a lens model is given. Residual, times ``weight``:
``project(p_cam; theta) - uv_observed`` (pixels, ``(N, 2)``) with a model, or
``p_cam - p_observed`` (metres, ``(N, 3)``) without one (virtual points of a measured
``T_cam_board``). Jacobians w.r.t. left perturbations (rho, phi) of X, Y, B.
"""

from __future__ import annotations

import numpy as np

from ..camera.base import LensModel
from ..lie import so3
from .base import ResidualFamily


def point_jacobian(M: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``M [I, -hat(p)]`` ``(N, 3, 6)``: derivative of ``M Exp(delta) p`` w.r.t. ``delta``
    for rotations ``M (N, 3, 3)`` (or ``(3, 3)``) and points ``p (N, 3)``."""
    M = np.broadcast_to(M, (len(p), 3, 3))
    return np.concatenate([M, -M @ so3.hat(p)], axis=2)


class ChainReprojection(ResidualFamily):
    """``N`` observations of board points (see module docstring).

    Args:
        model: the lens model, or ``None`` for 3-D residuals.
        board_points: ``(N, 3)`` point of each observation in the board frame (metres).
        observed: ``(N, 2)`` pixels (with a model) or ``(N, 3)`` camera-frame points.
        sign: ``s``, +1 or -1 (the exponent of ``B`` in the chain).
        weight: scalar multiplying residuals and Jacobians (1 / sigma).
    """

    def __init__(self, model: LensModel | None, board_points: np.ndarray, observed: np.ndarray,
                 sign: int, weight: float = 1.0) -> None:
        self.model = model
        self.board_points = np.ascontiguousarray(board_points, dtype=float)
        self.observed = np.ascontiguousarray(observed, dtype=float)
        self.sign = 1 if sign > 0 else -1
        self.weight = float(weight)
        self.residual_dim = 2 if model is not None else 3

    def restrict(self, rows: slice) -> ChainReprojection:
        return ChainReprojection(self.model, self.board_points[rows], self.observed[rows],
                                 self.sign, self.weight)

    def camera_points(self, X, Y, B):
        """``(p_cam, p_mid, p_far, R_B^s)`` for per-residual ``B (N, 4, 4)``."""
        p_far = self.board_points @ Y[:3, :3].T + Y[:3, 3]
        RB, tB = B[:, :3, :3], B[:, :3, 3]
        if self.sign > 0:
            RBs = RB
            p_mid = np.einsum("nij,nj->ni", RB, p_far) + tB
        else:
            RBs = np.swapaxes(RB, 1, 2)
            p_mid = np.einsum("nij,nj->ni", RBs, p_far - tB)
        p_cam = (p_mid - X[:3, 3]) @ X[:3, :3]
        return p_cam, p_mid, p_far, RBs

    def evaluate(self, values, indices, jacobians=True):
        o = 1 if self.model is not None else 0
        X, Y = values[o][0], values[o + 1][0]
        B = values[o + 2][indices[o + 2]]
        p_cam, p_mid, p_far, RBs = self.camera_points(X, Y, B)
        w = self.weight
        if self.model is None:
            r = (p_cam - self.observed) * w
            j_p = None
        else:
            th = values[0][0]
            if jacobians:
                uv, _, j_p, j_th = self.model.project(p_cam, th, jacobians=True)
            else:
                uv, _ = self.model.project(p_cam, th)
            r = (uv - self.observed) * w
        if not jacobians:
            return r, None
        RXt = X[:3, :3].T
        M = RXt @ RBs  # (N, 3, 3)
        d_x = -point_jacobian(RXt, p_mid)
        d_y = point_jacobian(M, p_far)
        if self.sign > 0:
            d_b = point_jacobian(RXt, p_mid)
        else:
            d_b = -point_jacobian(M, p_far)
        jac = [d_x, d_y, d_b]
        if j_p is not None:
            jac = [j_p @ d for d in jac]
            jac.insert(0, j_th)
        return r, [j * w for j in jac]
