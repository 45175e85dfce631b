"""Which rigid motions the registration data constrain, named in words.

The 6x6 information matrix ``H = J^T J`` of the pose (twist ``(rho, phi)``, left
perturbation, about the target centroid) is made unit-consistent by expressing a rotation
about axis ``k`` as the RMS displacement it causes on the cloud, ``L_k phi_k`` with ``L_k``
the RMS distance of the points from that axis (a corridor's roll has a short lever, its yaw
a long one). A direction ``v`` is weakly constrained when ``v^T H v <= ratio * lambda_max``
(default 2%: its standard deviation is over 7x that of the best-constrained direction). A
canonical motion (translation along x, rotation about z, ...) is reported free when more
than half of it lies in the weak subspace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z")
NAMES = tuple([f"translation along {a}" for a in AXES]
              + [f"rotation about {a}" + s for a, s in zip(AXES, (" (roll)", " (pitch)",
                                                                 " (yaw)"), strict=True)])


@dataclass(frozen=True)
class DegeneracyReport:
    """Eigen-analysis of the pose information matrix (scaled units, see module doc).

    Attributes:
        eigenvalues: ``(6,)`` ascending, of the scaled information matrix.
        eigenvectors: ``(6, 6)`` columns, twist order ``(tx, ty, tz, rx, ry, rz)``.
        condition: ``lambda_max / lambda_min`` (inf when singular).
        weak_directions: the eigenvectors judged weak.
        free_motions: canonical motions (words) lying mostly in the weak subspace.
        degenerate: any weak direction at all.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    condition: float
    weak_directions: np.ndarray
    free_motions: tuple[str, ...]
    degenerate: bool
    lever_arms_m: tuple[float, float, float]
    ratio: float

    def message(self) -> str:
        if not self.degenerate:
            return f"well constrained (condition number {self.condition:.3g})"
        return ("degenerate geometry: weakly constrained " + ", ".join(self.free_motions)
                if self.free_motions else
                f"degenerate geometry: {len(self.weak_directions.T)} weak combined direction(s)")

    def to_dict(self) -> dict:
        return {"eigenvalues": self.eigenvalues.tolist(), "condition": self.condition,
                "degenerate": self.degenerate, "free_motions": list(self.free_motions),
                "weak_directions": self.weak_directions.T.tolist(),
                "lever_arms_m": list(self.lever_arms_m),
                "ratio": self.ratio, "message": self.message()}


def lever_arms(points: np.ndarray) -> np.ndarray:
    """RMS distance ``(3,)`` of centred points ``(N, 3)`` from the x, y and z axes."""
    sq = np.mean(points * points, axis=0)
    return np.sqrt(np.maximum(np.array([sq[1] + sq[2], sq[0] + sq[2], sq[0] + sq[1]]), 1e-24))


def analyze(information: np.ndarray, points: np.ndarray, ratio: float = 0.02
            ) -> DegeneracyReport:
    """Degeneracy report of a ``(6, 6)`` pose information matrix for registered (centred)
    target points ``(N, 3)`` (they give the rotation lever arms)."""
    arms = lever_arms(points)
    s = np.r_[np.ones(3), 1.0 / arms]
    hs = information * s[:, None] * s[None, :]
    hs = 0.5 * (hs + hs.T)
    w, v = np.linalg.eigh(hs)
    wmax = max(float(w[-1]), 1e-300)
    weak = w <= ratio * wmax
    basis = v[:, weak]
    free = []
    for k in range(6):
        e = np.zeros(6)
        e[k] = 1.0
        if basis.size and float(np.sum((basis.T @ e) ** 2)) > 0.5:
            free.append(NAMES[k])
    cond = float(wmax / w[0]) if w[0] > 0 else float("inf")
    return DegeneracyReport(w, v, cond, basis, tuple(free), bool(weak.any()),
                            tuple(float(a) for a in arms), ratio)
