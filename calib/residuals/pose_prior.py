"""Prior on poses measured with stated noise (robot kinematics): one 6-vector per pose.

Slot: ``poses (S, 4, 4)`` SE3. For each pose ``T = (R, t)`` with measurement
``(R_m, t_m)``: ``r = [(t - t_m) / sigma_t, Log(R R_m^T) / sigma_r]`` (translation in
metres, rotation in radians, so ``sigma_t`` in metres and ``sigma_r`` in radians make the
residual unit-free). This is the noise model ``t_m = t + n_t``, ``R_m = Exp(n_r) R`` with
isotropic Gaussian ``n_t``, ``n_r``. Jacobian w.r.t. a left perturbation (rho, phi):
``[[I, -hat(t)] / sigma_t, [0, J_l^-1(Log(R R_m^T))] / sigma_r]``.
"""

from __future__ import annotations

import numpy as np

from ..lie import so3
from .base import ResidualFamily


class PosePrior(ResidualFamily):
    """``S`` measured poses ``(S, 4, 4)``; residual ``n`` reads block ``indices[0][n]`` and
    compares it with measurement ``n``."""

    residual_dim = 6

    def __init__(self, measured: np.ndarray, sigma_t: float, sigma_r: float) -> None:
        self.measured = np.ascontiguousarray(measured, dtype=float)
        self.sigma_t = float(sigma_t)
        self.sigma_r = float(sigma_r)

    def evaluate(self, values, indices, jacobians=True):
        T = values[0][indices[0]]
        R, t = T[:, :3, :3], T[:, :3, 3]
        e = so3.log(R @ np.swapaxes(self.measured[:, :3, :3], 1, 2))
        e = e.reshape(-1, 3)
        r = np.concatenate([(t - self.measured[:, :3, 3]) / self.sigma_t,
                            e / self.sigma_r], axis=1)
        if not jacobians:
            return r, None
        n = len(T)
        j = np.zeros((n, 6, 6))
        j[:, :3, :3] = np.eye(3) / self.sigma_t
        j[:, :3, 3:] = -so3.hat(t) / self.sigma_t
        j[:, 3:, 3:] = so3.left_jacobian_inv(e).reshape(n, 3, 3) / self.sigma_r
        return r, [j]
