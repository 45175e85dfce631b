"""Which rigid motions the registration data constrain, named in words.

The 6x6 information matrix ``H = J^T J`` of the pose (twist ``(rho, phi)``, left
perturbation, about the target centroid) is made unit-consistent by expressing a rotation
about axis ``k`` as the RMS displacement it causes on the cloud, ``L_k phi_k`` with ``L_k``
the RMS distance of the points from that axis (a corridor's roll has a short lever, its yaw
a long one). A direction ``v`` is weakly constrained when ``v^T H v <= ratio * lambda_max``
(default 2%: its standard deviation is over 7x that of the best-constrained direction), or
when it lies below ``GAP_RATIO * ratio * lambda_max`` under a ``GAP``-fold jump in the
spectrum (estimated normals leak a few percent of information into motions a curved
surface leaves free: a randomly sampled sphere's rotations measure 0.5-3%), and
free (``singular``) when ``v^T H v <= SINGULAR * lambda_max``: the data then do not determine
the pose at all along it (a line's roll, a sphere's rotations, a plane's sliding).

The weak subspace ``B`` (orthonormal columns) is named by its translation and rotation
parts: the eigenvectors ``u`` of ``B_t B_t^T`` (``B_t`` its three translation rows) with
eigenvalue above 1/2 are translations mostly inside it ("translation along x", or along
``[0.45, 0.89, 0]`` when not within ~10 deg of an axis), the same for rotations; weak
directions left unexplained are named as the coupled motion they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AXES = ("x", "y", "z")
_ROT_WORDS = (" (roll)", " (pitch)", " (yaw)")
NAMES = tuple([f"translation along {a}" for a in AXES]
              + [f"rotation about {a}{s}" for a, s in zip(AXES, _ROT_WORDS, strict=True)])
#: relative eigenvalue below which a direction is free: rounding-level information. A
#: noise-free line's roll, a sphere's rotations and a plane's sliding measure 1e-15..1e-10
#: here; the weakest direction of the wavy test surface 2e-2.
SINGULAR = 1e-7
#: the spectrum-gap rule (module doc). Measured, as fractions of lambda_max: randomly sampled
#: sphere (3000 points) 0.005, 0.024, 0.028 | 0.95 (a 34x jump); corridor 0.016 | 0.36;
#: well-constrained: wavy test surface 0.07, 0.10, 0.15, 0.94 (7x), bunny pair 0.10, 0.13
GAP_RATIO = 5.0
GAP = 10.0
#: an axis is named by its letter when a direction is within ~10 deg of it
_AXIS_COS = 0.985


@dataclass(frozen=True, eq=False)
class DegeneracyReport:
    """Eigen-analysis of the pose information matrix (scaled units, see module doc).

    Attributes:
        eigenvalues: ``(6,)`` ascending, of the scaled information matrix.
        eigenvectors: ``(6, 6)`` columns, twist order ``(tx, ty, tz, rx, ry, rz)``.
        condition: ``lambda_max / lambda_min`` (inf when singular; ``None`` in JSON).
        weak_directions: ``(6, k)`` the eigenvectors judged weak.
        free_motions: the weak subspace in words (see module doc).
        degenerate: any weak direction at all.
        singular: some direction is not determined at all (see ``SINGULAR``).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    condition: float
    weak_directions: np.ndarray
    free_motions: tuple[str, ...]
    degenerate: bool
    lever_arms_m: tuple[float, float, float]
    ratio: float
    singular: bool = False

    def __post_init__(self) -> None:
        for name in ("eigenvalues", "eigenvectors", "weak_directions"):
            a = np.array(getattr(self, name), dtype=float)
            a.setflags(write=False)
            object.__setattr__(self, name, a)

    def message(self) -> str:
        if not self.degenerate:
            return f"well constrained (condition number {self.condition:.3g})"
        what = "free (not determined by the data)" if self.singular else "weakly constrained"
        return f"degenerate geometry: {what}: " + ", ".join(self.free_motions)

    def to_dict(self) -> dict:
        return {"eigenvalues": self.eigenvalues.tolist(),
                "condition": self.condition if np.isfinite(self.condition) else None,
                "degenerate": self.degenerate, "singular": self.singular,
                "free_motions": list(self.free_motions),
                "weak_directions": self.weak_directions.T.tolist(),
                "lever_arms_m": list(self.lever_arms_m),
                "ratio": self.ratio, "message": self.message()}


def lever_arms(points: np.ndarray) -> np.ndarray:
    """RMS distance ``(3,)`` of centred points ``(N, 3)`` from the x, y and z axes."""
    sq = np.mean(points * points, axis=0)
    return np.sqrt(np.maximum(np.array([sq[1] + sq[2], sq[0] + sq[2], sq[0] + sq[1]]), 1e-24))


def _direction(u: np.ndarray) -> str:
    """``x`` / ``y`` / ``z`` when ``u (3,)`` is within ~10 deg of an axis, else ``[a, b, c]``."""
    u = u / np.linalg.norm(u)
    k = int(np.argmax(np.abs(u)))
    if abs(u[k]) >= _AXIS_COS:
        return AXES[k]
    u = u if u[k] > 0 else -u
    return "[" + ", ".join(f"{v:.2f}" for v in u) + "]"


def _parts(block: np.ndarray) -> list[np.ndarray]:
    """Unit directions ``u (3,)`` lying mostly (> 1/2) in the span of ``block (3, k)``: the
    coordinate axes when as many of them lie (almost) in that span (a plane's x and y),
    else the principal directions."""
    if not block.size:
        return []
    w, v = np.linalg.eigh(block @ block.T)
    parts = [v[:, i] for i in np.argsort(-w) if w[i] > 0.5]
    if parts:
        span = np.array(parts).T
        axes = [np.eye(3)[k] for k in range(3)
                if float(np.sum((span.T @ np.eye(3)[k]) ** 2)) >= _AXIS_COS ** 2]
        if len(axes) == len(parts):
            return axes
    return parts


def name_subspace(basis: np.ndarray, arms: np.ndarray | None = None) -> tuple[str, ...]:
    """Words for the motions in the span of ``basis (6, k)`` (orthonormal, twist scaled
    by the lever ``arms (3,)``: rotation axes are named in unscaled coordinates)."""
    words = []
    arms = np.ones(3) if arms is None else np.asarray(arms, dtype=float)
    trans = _parts(basis[:3])
    rots = [u / arms for u in _parts(basis[3:])]
    for u in trans:
        words.append(f"translation along {_direction(u)}")
    for u in rots:
        d = _direction(u)
        words.append(f"rotation about {d}" + (_ROT_WORDS[AXES.index(d)] if d in AXES else ""))
    left = basis.shape[1] - len(trans) - len(rots)
    if left > 0:  # coupled motions: the weak directions least explained by the words above
        named = np.zeros((6, 0))
        for u in trans:
            named = np.c_[named, np.r_[u, 0, 0, 0]]
        for u in rots:
            named = np.c_[named, np.r_[0, 0, 0, u * arms / np.linalg.norm(u * arms)]]
        rest = basis - named @ (named.T @ basis) if named.size else basis
        uu, s, _ = np.linalg.svd(rest, full_matrices=False)
        for k in range(left):
            v = uu[:, k]
            t, r = np.linalg.norm(v[:3]), np.linalg.norm(v[3:])
            words.append(f"translation along {_direction(v[:3])} coupled with rotation about "
                         f"{_direction(v[3:] / arms)} ({100 * t * t:.0f}% translation)" if t > 1e-3
                         and r > 1e-3 else
                         (f"translation along {_direction(v[:3])}" if t >= r else
                          f"rotation about {_direction(v[3:] / arms)}"))
    return tuple(words)


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
    for k in range(5):  # below a GAP-fold jump and under GAP_RATIO * ratio: weak too
        if w[k] <= GAP_RATIO * ratio * wmax and w[k + 1] >= GAP * max(w[k], 1e-300 * wmax):
            weak[: k + 1] = True
    basis = v[:, weak]
    cond = float(wmax / w[0]) if w[0] > 0 else float("inf")
    return DegeneracyReport(w, v, cond, basis, name_subspace(basis, arms), bool(weak.any()),
                            tuple(float(a) for a in arms), ratio,
                            bool(w[0] <= SINGULAR * wmax))
