"""The frozen result of a registration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..lie import so3
from .degeneracy import DegeneracyReport


def length_unit(top: float) -> tuple[float, str]:
    for scale, name in ((1.0, "m"), (1e-3, "mm"), (1e-6, "µm")):
        if top >= 0.1 * scale:
            return scale, name
    return 1e-9, "nm"


def format_lengths(values) -> str:
    """``values (k,)`` in metres with one unit that fits them: ``[0.781, 0.52, 0.3] mm``."""
    v = np.atleast_1d(np.asarray(values, dtype=float))
    scale, name = length_unit(float(np.max(np.abs(v))) if v.size else 0.0)
    return "[" + ", ".join(f"{x / scale:.3g}" for x in v) + f"] {name}"


def format_length(value: float) -> str:
    """One length in metres with a unit that fits it: ``0.781 mm``."""
    scale, name = length_unit(abs(float(value)))
    return f"{value / scale:.4g} {name}"


def _read_only(value) -> np.ndarray:
    a = np.array(value, dtype=float)
    a.setflags(write=False)
    return a


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


@dataclass(frozen=True, eq=False)
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
            (pseudo-inverse of ``H`` when degenerate). :func:`~calib.registration.register`
            passes a zero-argument function instead of the array: the covariance is then
            computed on its first read (``covariance``, ``summary()``, ``to_dict()``) and
            kept, so a caller who wants only the pose does not pay for the
            noise estimate; until then the result holds the prepared clouds it needs.
        degeneracy: :class:`DegeneracyReport`.
        warnings: human-readable warnings (degeneracy, low fitness, global init...).
        problems: why the result should not be used (did not converge, overlap below
            ``min_fitness``, a possibly inverted initial guess); empty when ``ok``.

    The result is immutable: its arrays are read-only and ``history`` holds read-only
    mappings. ``ok`` is ``converged`` and no problem and no free motion.
    """

    T_target_source: np.ndarray
    converged: bool
    termination: str
    iterations: int
    fitness: float
    inlier_rmse: float
    num_correspondences: int
    information: np.ndarray
    covariance: np.ndarray | Callable[[], np.ndarray]
    degeneracy: DegeneracyReport
    warnings: tuple[str, ...]
    method: str
    max_correspondence_distance: float
    initialization: str
    history: tuple[dict, ...] = ()
    problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("T_target_source", "information", "covariance"):
            value = getattr(self, name)
            if name == "covariance" and callable(value):  # computed on first read
                object.__delattr__(self, name)
                object.__setattr__(self, "_deferred_covariance", value)
            else:
                object.__setattr__(self, name, _read_only(value))
        object.__setattr__(self, "history",
                           tuple(MappingProxyType(dict(h)) for h in self.history))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "problems", tuple(self.problems))

    def __getattr__(self, name: str):
        """Only reached for an attribute not yet set: the deferred covariance."""
        deferred = self.__dict__.get("_deferred_covariance")
        if name != "covariance" or deferred is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        cov = _read_only(deferred())
        object.__setattr__(self, "covariance", cov)
        object.__delattr__(self, "_deferred_covariance")  # releases the clouds
        return cov

    @property
    def ok(self) -> bool:
        """Converged, passed its checks, and the data determine every motion."""
        return self.converged and not self.problems and not self.degeneracy.singular

    @property
    def rotation_deg(self) -> float:
        return float(np.degrees(so3.angle(self.T_target_source[:3, :3])))

    def summary(self, warnings: bool = True) -> str:
        """Human summary; ``warnings=False`` leaves the warning lines out (the CLI prints
        them once on stderr)."""
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
            f"fitness: {self.fitness:.4f}  inlier RMSE: {format_length(self.inlier_rmse)}  "
            f"correspondences: {self.num_correspondences}",
            f"pose std: translation {format_lengths(std[:3])}, rotation ["
            + ", ".join(f"{x:.3g}" for x in np.degrees(std[3:])) + "] deg",
            f"geometry: {self.degeneracy.message()}",
        ]
        if warnings:
            lines += [f"warning: {w}" for w in self.warnings + self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready report (no NaN or Infinity: a non-finite number becomes ``None``)."""
        return {
            "T_target_source": self.T_target_source.tolist(),
            "converged": self.converged, "ok": self.ok, "termination": self.termination,
            "iterations": self.iterations, "fitness": self.fitness,
            "inlier_rmse": self.inlier_rmse, "num_correspondences": self.num_correspondences,
            "rotation_deg": self.rotation_deg,
            "translation": self.T_target_source[:3, 3].tolist(),
            "information": self.information.tolist(), "covariance": self.covariance.tolist(),
            "degeneracy": self.degeneracy.to_dict(), "warnings": list(self.warnings),
            "problems": list(self.problems),
            "method": self.method, "max_correspondence_distance": self.max_correspondence_distance,
            "initialization": self.initialization,
            "history": [{k: (_finite(v) if isinstance(v, float) else v) for k, v in h.items()}
                        for h in self.history],
        }
