"""Registration options (:class:`ICPOptions`) and their checks, one error per field."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import InputError
from ..solver import make_loss

METHODS = ("point-to-plane", "point-to-point")
MIN_CORRESPONDENCES = 10
#: lengths (metres) an option may take: the clouds' coordinates are refused beyond 1e9 m,
#: and below a nanometre squares of residuals reach the float rounding of coordinates
LENGTH_RANGE = (1e-9, 1e9)
LENGTHS = ("max_correspondence_distance", "voxel_size", "loss_scale", "normal_radius",
           "global_voxel")


@dataclass(frozen=True)
class ICPOptions:
    """Registration options.

    Attributes:
        method: ``point-to-plane`` (needs target normals, estimated when not given) or
            ``point-to-point``. Point-to-point converges slowly along smooth surfaces
            (points slide tangentially); with the auto-scaled Huber loss it needs more
            iterations than Open3D's closed-form step (bunny bun045->bun000 from the
            identity, 30 iterations: 6.4 deg vs Open3D 1.8 deg; 100 iterations: 0.18 deg
            vs 1.4 deg). Prefer point-to-plane (0.1 deg in 20 iterations there).
        max_correspondence_distance: pairs farther apart are ignored (metres); default
            ``3 x`` the voxel size, or ``5 x`` the source's median point spacing.
        voxel_size: downsample both clouds to this voxel size first (None: no downsampling).
        max_iterations: ICP iterations (correspondence searches) at the finest scale.
        scales: coarse-to-fine multipliers of the maximum correspondence distance, e.g.
            ``(4, 2, 1)``; each scale runs up to ``max_iterations`` iterations.
        loss, loss_scale: robust loss on the residuals (scale in metres). The default
            ``auto`` is Huber for point-to-plane (none for point-to-point, where it only
            slowed convergence on the bunny pairs); with ``loss_scale=None`` Huber
            re-estimates the scale at every iteration as
            1.345 x the residuals' robust standard deviation (1.4826 MAD): the classic
            95%-efficient Huber tuning, so inliers keep least-squares weight and partial-
            overlap outliers are down-weighted whatever the sensor's noise level.
        relative_fitness, relative_rmse: stop when both change by less than this between
            iterations (Open3D's criteria).
        transform_tolerance: also stop when an iteration rotates by less than this (rad) and
            translates by less than this times the cloud radius.
        uncertainty_tolerance: also stop when the pose has settled within its own
            statistical uncertainty: the last step was below one standard deviation
            (Mahalanobis size under ``sigma^2 (J^T J)^-1``, ``sigma`` from the residuals)
            and the steps still to come, extrapolated geometrically from the last three,
            add up to at most this many standard deviations (0.1: the answer moves by at
            most a tenth of its spread, 1% of its variance), with the same source points
            matched as at the iteration before (a pair crossing the distance bound makes
            a jump the steps cannot foresee). None: off. Each step's size is in
            ``history`` (``step_sigma``).
        inner_iterations: LM iterations per correspondence set (one, as in Open3D; the
            next correspondence search re-linearizes anyway).
        mutual: keep a pair only when the source point is also the nearest neighbour of
            its target point among the moved source points.
        max_normal_angle_deg: reject pairs whose source normal (rotated by the current
            pose) and target normal differ by more than this angle (sign ignored); source
            normals are then estimated like the target's.
        normal_radius, normal_max_nn: normal estimation (radius default ``3 x`` spacing,
            or ``2 x`` voxel).
        workers: threads for the k-d tree queries (-1: all cores; a positive count caps
            Open3D's process-wide thread pool during each query).
        degeneracy_ratio: eigenvalue ratio below which a direction is reported weak.
        coarse_points, coarse_tolerance: clouds of at least 8000 source points (4 x
            ``coarse_points`` when that is smaller) first iterate on an even subset of a
            quarter of their points, at most ``coarse_points``, until
            a step is below ``coarse_tolerance`` (rad; times the cloud radius for the
            translation), then on all points (None: off). The full-cloud iterations
            decide convergence and accuracy; the subset only shortens the long first
            correspondence searches.
        min_fitness: a result whose fitness (matched fraction of the source) is below this
            lists the low overlap in ``problems`` (the CLI then exits 4); lower it for
            clouds that overlap little by design.

    Lengths are metres within ``LENGTH_RANGE``; every field is checked on construction and
    a bad one raises :class:`~calib.errors.InputError` naming it.
    """

    method: str = "point-to-plane"
    max_correspondence_distance: float | None = None
    voxel_size: float | None = None
    max_iterations: int = 30
    scales: tuple[float, ...] = (1.0,)
    loss: str | None = "auto"
    loss_scale: float | None = None
    relative_fitness: float = 1e-6
    relative_rmse: float = 1e-6
    transform_tolerance: float = 1e-8
    uncertainty_tolerance: float | None = 0.1
    inner_iterations: int = 1
    mutual: bool = False
    max_normal_angle_deg: float | None = None
    normal_radius: float | None = None
    normal_max_nn: int = 30
    workers: int = -1
    degeneracy_ratio: float = 0.02
    global_voxel: float | None = None
    seed: int = 0
    coarse_points: int | None = 20000
    coarse_tolerance: float = 2e-4
    min_fitness: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {self.method!r}")
        for name in LENGTHS:
            _check_length(name, getattr(self, name))
        for name, low in (("max_iterations", 1), ("inner_iterations", 1), ("normal_max_nn", 1),
                          ("seed", 0)):
            _check_int(name, getattr(self, name), low)
        if self.coarse_points is not None:
            _check_int("coarse_points", self.coarse_points, MIN_CORRESPONDENCES)
        _check_int("workers", self.workers, -1)
        if self.workers == 0:
            raise InputError("workers must be -1 (all cores) or a positive count, got 0")
        if not isinstance(self.scales, tuple | list) or not self.scales or \
                not all(_real(s) and 0 < s < 1e6 for s in self.scales):
            raise InputError(f"scales must be positive numbers below 1e6, got {self.scales!r}")
        if self.uncertainty_tolerance is not None and not (
                _real(self.uncertainty_tolerance) and 0 < self.uncertainty_tolerance <= 1):
            raise InputError("uncertainty_tolerance must be None or a number in (0, 1], got "
                             f"{self.uncertainty_tolerance!r}")
        if self.loss not in (None, "none", "auto"):
            make_loss(self.loss, 1.0)  # an unknown name fails here, before any work
        if self.max_normal_angle_deg is not None and not (
                _real(self.max_normal_angle_deg) and 0 < self.max_normal_angle_deg <= 90):
            raise InputError("max_normal_angle_deg must be in (0, 90], got "
                             f"{self.max_normal_angle_deg}")
        for name, lo, hi in (("degeneracy_ratio", 0.0, 1.0), ("min_fitness", 0.0, 1.0),
                             ("relative_fitness", 0.0, 1.0), ("relative_rmse", 0.0, 1.0),
                             ("transform_tolerance", 0.0, 1.0), ("coarse_tolerance", 0.0, 1.0)):
            v = getattr(self, name)
            if not (_real(v) and lo <= v <= hi) or (name == "degeneracy_ratio" and v == 0):
                raise InputError(f"{name} must be a number in [{lo:g}, {hi:g}], got {v!r}")


def _real(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool) \
        and bool(np.isfinite(v))


def _check_length(name: str, v) -> None:
    if v is None:
        return
    lo, hi = LENGTH_RANGE
    if not (_real(v) and lo <= v <= hi):
        raise InputError(f"{name} {v!r}: must be a length between {lo:g} and {hi:g} m")


def _check_int(name: str, v, low: int) -> None:
    if not (isinstance(v, int | np.integer) and not isinstance(v, bool) and v >= low):
        raise InputError(f"{name} must be an integer >= {low}, got {v!r}")


def merge_options(options: ICPOptions | None, kwargs: dict) -> ICPOptions:
    """``options``, or an :class:`ICPOptions` from keyword fields; never both, never an
    unknown field (each an :class:`InputError` naming the keywords)."""
    names = [f.name for f in fields(ICPOptions)]
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise InputError(f"unknown option(s) {', '.join(unknown)} (ICPOptions fields: "
                         f"{', '.join(names)})")
    if options is None:
        return ICPOptions(**kwargs)
    if not isinstance(options, ICPOptions):
        raise InputError(f"options: expected ICPOptions, got {type(options).__name__}")
    if kwargs:
        raise InputError("give options=ICPOptions(...) or its fields as keywords, not both "
                         f"(got options and {', '.join(sorted(kwargs))})")
    return options
