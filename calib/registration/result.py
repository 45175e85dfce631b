"""The frozen result of a registration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..lie import so3
from .degeneracy import DegeneracyReport


@dataclass(frozen=True)
class RegistrationResult:
    """Rigid alignment of a source cloud onto a target cloud.

    Attributes:
        T_target_source: ``(4, 4)``, maps source points into the target frame (metres).
        converged: the ICP loop met its tolerances (transform or fitness/RMSE change)
            before the iteration cap; ``termination`` says which.
        iterations: ICP iterations (correspondence searches) run, over all scales.
        fitness: fraction of (downsampled) source points whose nearest target point lies
            within ``max_correspondence_distance`` at the final pose (Open3D's definition).
        inlier_rmse: RMS distance (metres) between those matched point pairs.
        num_correspondences: matched pairs at the final pose.
        information: ``(6, 6)`` ``J^T J`` of the pose residuals at the solution, twist
            ``(rho, phi)`` of a left perturbation about the target cloud's centroid
            (``T <- S^-1 Exp(delta) S T`` with ``S`` the translation by ``-centroid``), so
            the translation block is the uncertainty at the centre of the data, not at a
            possibly far-away origin (georeferenced clouds).
        covariance: ``(6, 6)``, same twist; cluster-robust (residuals correlated within a
            spatial cell count once) and scaled up where nearest-neighbour residuals
            understate the clouds' noise: :mod:`calib.registration.covariance`
            (pseudo-inverse of ``H`` when degenerate).
        degeneracy: :class:`DegeneracyReport`.
        warnings: human-readable warnings (degeneracy, low fitness, global init...).
    """

    T_target_source: np.ndarray
    converged: bool
    termination: str
    iterations: int
    fitness: float
    inlier_rmse: float
    num_correspondences: int
    information: np.ndarray
    covariance: np.ndarray
    degeneracy: DegeneracyReport
    warnings: tuple[str, ...]
    method: str
    max_correspondence_distance: float
    initialization: str
    history: tuple[dict, ...] = ()

    @property
    def rotation_deg(self) -> float:
        return float(np.degrees(np.linalg.norm(so3.log(self.T_target_source[:3, :3]))))

    def summary(self) -> str:
        rv = so3.log(self.T_target_source[:3, :3])
        ang = np.linalg.norm(rv)
        axis = rv / ang if ang > 0 else np.array([0.0, 0.0, 1.0])
        t = self.T_target_source[:3, 3]
        std = np.sqrt(np.clip(np.diag(self.covariance), 0, None))
        lines = [
            f"converged: {self.converged} ({self.termination}) after {self.iterations} "
            "iterations",
            f"rotation: {np.degrees(ang):.4f} deg about [{axis[0]:.4f}, {axis[1]:.4f}, "
            f"{axis[2]:.4f}]",
            f"translation: [{t[0]:.6f}, {t[1]:.6f}, {t[2]:.6f}] m",
            f"fitness: {self.fitness:.4f}  inlier RMSE: {self.inlier_rmse:.6g} m  "
            f"correspondences: {self.num_correspondences}",
            f"pose std: translation {np.array2string(std[:3], precision=2)} m, rotation "
            f"{np.array2string(np.degrees(std[3:]), precision=3)} deg",
            f"geometry: {self.degeneracy.message()}",
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "T_target_source": self.T_target_source.tolist(),
            "converged": self.converged, "termination": self.termination,
            "iterations": self.iterations, "fitness": self.fitness,
            "inlier_rmse": self.inlier_rmse, "num_correspondences": self.num_correspondences,
            "rotation_deg": self.rotation_deg,
            "translation": self.T_target_source[:3, 3].tolist(),
            "information": self.information.tolist(), "covariance": self.covariance.tolist(),
            "degeneracy": self.degeneracy.to_dict(), "warnings": list(self.warnings),
            "method": self.method, "max_correspondence_distance": self.max_correspondence_distance,
            "initialization": self.initialization, "history": list(self.history),
        }
