"""Standard deviations of a pose from its tangent covariance (left perturbation (rho, phi))."""

from __future__ import annotations

import numpy as np

from ..errors import DegenerateError, NotConvergedError
from ..lie import so3


def solved_covariance(res, group: str, what: str) -> np.ndarray:
    """The engine's covariance of ``group`` from solver result ``res``, or one-line errors:
    :class:`NotConvergedError` when the solve failed, :class:`DegenerateError` when the
    group's covariance is rank deficient (``what`` names the unknown)."""
    if res.summary.termination == "failure":
        raise NotConvergedError(f"{what}: the refinement failed ({res.summary.message})")
    cov = res.covariance.get(group)
    if cov is None or group in res.covariance_rank_deficient or not np.isfinite(cov).all():
        raise DegenerateError(f"{what} is not determined by the data (its covariance is rank "
                              "deficient): add views with more varied poses")
    return cov


def pose_std(T: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray | float]:
    """σ of ``T (4, 4)`` from its ``(6, 6)`` tangent covariance.

    A left perturbation moves the translation by ``rho - hat(t) phi``, so the translation's
    covariance is ``J C J^T`` with ``J = [I, -hat(t)]``; the rotation error vector is ``phi``.
    Returns per-axis ``rot_deg (3,)``, ``trans_m (3,)`` and the totals ``rot_deg_total``,
    ``trans_m_total`` (square roots of the traces: the expected norm of the error vector).
    """
    J = np.concatenate([np.eye(3), -so3.hat(T[:3, 3])], axis=1)
    ct = J @ cov @ J.T
    cr = cov[3:, 3:]
    dr = np.clip(np.diag(cr), 0, None)
    dt = np.clip(np.diag(ct), 0, None)
    return {"rot_deg": np.degrees(np.sqrt(dr)), "trans_m": np.sqrt(dt),
            "rot_deg_total": float(np.degrees(np.sqrt(dr.sum()))),
            "trans_m_total": float(np.sqrt(dt.sum()))}


def pose_error(T_est: np.ndarray, T_true: np.ndarray) -> tuple[float, float]:
    """``(rotation error deg, translation error m)`` between two ``(4, 4)`` poses."""
    e = so3.log(T_est[:3, :3] @ T_true[:3, :3].T)
    return float(np.degrees(np.linalg.norm(e))), float(np.linalg.norm(T_est[:3, 3] - T_true[:3, 3]))
