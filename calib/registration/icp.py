"""Rigid ICP (point-to-plane or point-to-point) on the shared LM engine.

Each iteration matches every source point to its nearest target point (within the maximum
correspondence distance), then takes Levenberg-Marquardt steps on the pose
``T_target_source`` with those pairs fixed. Clouds are centred on the target centroid and
processed in float64, so clouds far from the origin (georeferenced LiDAR) register as
accurately as clouds at the origin.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from ..errors import DegenerateError, InputError, NotConvergedError
from ..io.validate import as_array
from ..lie import se3, so3
from ..residuals.point_to_plane import PointToPlane
from ..residuals.point_to_point import PointToPoint, transform_points
from ..solver import Problem, SE3Manifold, SolverOptions, make_loss, solve
from ..solver.threads import blas_policy
from .correspondences import NearestNeighbors, match
from .covariance import cluster_cells, noise_inflation, sandwich_covariance
from .degeneracy import analyze
from .global_init import fpfh_ransac
from .options import METHODS, MIN_CORRESPONDENCES, ICPOptions, merge_options
from .result import RegistrationResult, format_length
from .spatial import bounds, estimate_normals, morton_order, spacing, voxel_downsample

__all__ = ["METHODS", "MIN_CORRESPONDENCES", "ICPOptions", "check_init", "register"]

log = logging.getLogger(__name__)

#: an initial rotation may be this far from orthonormal (max |R^T R - I|) and is then
#: re-orthonormalised with a warning: a matrix printed with 4-6 decimals (logs, tf_echo)
#: is 1e-6..2e-4 off, one printed with 3 decimals up to ~2e-3; a scaled or sheared matrix
#: (1.05 I: 0.1) is refused
INIT_TOLERANCE = 5e-3
#: Open3D refuses a voxel grid with more cells per axis than a 32-bit int holds
MAX_VOXELS_PER_AXIS = 1e9


@dataclass(frozen=True)
class _Clouds:
    """The prepared problem: centred (by ``centre``), downsampled, Morton-ordered clouds and
    the target's neighbour index ``nn`` (built once: normals, matching, noise estimate)."""

    src: np.ndarray
    tgt: np.ndarray
    tn: np.ndarray | None
    sn: np.ndarray | None
    centre: np.ndarray
    radius: float
    max_d: float
    extents: tuple[float, float]
    nn: NearestNeighbors


def _check_cloud(name: str, pts) -> tuple[np.ndarray, float]:
    """The ``(N, 3)`` cloud and its largest per-axis extent (metres), or a typed error."""
    a = as_array(name, pts, (-1, 3))
    if len(a) < MIN_CORRESPONDENCES:
        raise InputError(f"{name}: {len(a)} points; need at least {MIN_CORRESPONDENCES}")
    lo, hi = bounds(a)
    top = float(max(np.abs(lo).max(), np.abs(hi).max()))
    if top > 1e9:
        raise InputError(f"{name}: coordinates up to {top:.3g} m are not "
                         "plausible (corrupt data or wrong units?)")
    ext = float(np.max(hi - lo))
    if ext == 0.0:
        raise DegenerateError(f"{name}: all points are identical")
    return a, ext


def check_init(init, warnings: list[str] | None = None) -> np.ndarray:
    """A rigid ``(4, 4)`` from ``init``: refuses a reflection, a last row other than
    ``[0, 0, 0, 1]`` and a rotation part more than ``INIT_TOLERANCE`` from orthonormal
    (saying how far); a smaller deviation (a rounded printout) is re-orthonormalised (SVD,
    the nearest rotation) with a warning appended to ``warnings``."""
    T = as_array("init", init, (4, 4)).copy()
    row = float(np.abs(T[3] - [0, 0, 0, 1]).max())
    if row > 1e-6:
        raise InputError(f"init: last row is {np.array2string(T[3], precision=4)}, expected "
                         f"[0, 0, 0, 1] (off by {row:.2g})")
    R = T[:3, :3]
    det = float(np.linalg.det(R))
    if det <= 0:
        raise InputError(f"init: the rotation part has determinant {det:.3g}: a reflection "
                         "(a left-handed frame?), not a rotation")
    dev = float(np.abs(R.T @ R - np.eye(3)).max())
    if dev > INIT_TOLERANCE:
        raise InputError(f"init: not a rigid transform: the rotation part is {dev:.2g} from "
                         f"orthonormal (max |R^T R - I|; up to {INIT_TOLERANCE:g} is accepted "
                         "as rounding)")
    u, _, vt = np.linalg.svd(R)
    Rn = u @ vt
    if dev > 1e-6 and warnings is not None:
        warnings.append(f"init: the rotation part was {dev:.1g} from orthonormal (rounded "
                        "numbers?); used the nearest rotation (entries changed by up to "
                        f"{float(np.abs(Rn - R).max()):.1g})")
    T[:3, :3] = Rn
    T[3] = [0, 0, 0, 1]
    return T


def _shift(T: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``T`` expressed in frames translated by ``-c``: ``S T S^-1`` with ``S = [I, -c]``."""
    out = T.copy()
    out[:3, 3] = T[:3, 3] + T[:3, :3] @ c - c
    return out


def _unshift(T: np.ndarray, c: np.ndarray) -> np.ndarray:
    out = T.copy()
    out[:3, 3] = T[:3, 3] - T[:3, :3] @ c + c
    return out


@blas_policy
def register(source: np.ndarray, target: np.ndarray, init: np.ndarray | None = None,
             options: ICPOptions | None = None, target_normals: np.ndarray | None = None,
             **kwargs) -> RegistrationResult:
    """Align ``source (N, 3)`` to ``target (M, 3)`` (metres); returns ``T_target_source``.

    ``init``: a ``(4, 4)`` initial ``T_target_source`` (see :func:`check_init`); ``None``
    runs a global FPFH + RANSAC alignment first. ``options`` or its fields as keyword
    arguments (not both): :class:`ICPOptions`.

    The result says whether to trust it: ``converged``, ``problems`` (no convergence, overlap
    below ``min_fitness``, an initial guess that looks inverted: when the result fails and
    ``inv(init)`` matches clearly more of the source at the start, that is said),
    ``degeneracy`` (``singular``: a motion the data do not determine) and ``ok`` for all.

    Raises:
        InputError: bad shapes, NaN/inf, too few points, bad options or keywords.
        DegenerateError: the clouds cannot determine a pose (identical points...).
        NotConvergedError: no (or too few) correspondences within the maximum distance,
            or the solver failed. Never returns a silent identity.
    """
    opts = merge_options(options, kwargs)
    warnings: list[str] = []
    T0 = None if init is None else check_init(init, warnings)
    clouds = _prepare(source, target, target_normals, opts, warnings)
    T, initialization = _initial_pose(clouds, T0, opts, warnings)
    try:
        trace = _refine(T, clouds, opts)
        result = _result(trace, clouds, opts, initialization, warnings, T0)
    except NotConvergedError as exc:
        hint = _inverse_hint(clouds, T0, opts)
        if hint:
            raise NotConvergedError(f"{exc}; {hint}") from None
        raise
    return result


def _start_fitness(clouds: _Clouds, T: np.ndarray, opts: ICPOptions) -> float:
    """Fraction of the source within the first scale's distance of the target at ``T``
    (centred frame): one neighbour query."""
    nn = NearestNeighbors(clouds.tgt, opts.workers, clouds.nn.tree)
    _, dist = nn.nearest(transform_points(T, clouds.src), clouds.max_d * opts.scales[0])
    return float(np.isfinite(dist).mean())


def _inverse_hint(clouds: _Clouds, T0, opts: ICPOptions) -> str | None:
    """When a given initial guess failed: does its inverse match clearly more of the source
    at the start (at least twice as much, and 10 points of percentage more)?"""
    if T0 is None:
        return None
    given = _start_fitness(clouds, _shift(T0, clouds.centre), opts)
    inverse = _start_fitness(clouds, _shift(se3.inverse(T0), clouds.centre), opts)
    if inverse < max(2 * given, given + 0.1):
        return None
    return (f"the initial guess may be inverted (T_source_target given for T_target_source?): "
            f"its inverse matches {100 * inverse:.0f}% of the source at the start, the guess "
            f"{100 * given:.0f}%")


def _prepare(source, target, target_normals, opts: ICPOptions, warnings: list[str]) -> _Clouds:
    """Check, centre on the target centroid, downsample, estimate normals, Morton-order."""
    src, ext_s = _check_cloud("source", source)
    tgt, ext_t = _check_cloud("target", target)
    tn = None
    if target_normals is not None:
        tn = as_array("target_normals", target_normals, (len(tgt), 3))
    extents = (ext_s, ext_t)
    ratio = max(extents) / max(min(extents), 1e-300)
    if 300 <= ratio <= 3000:
        warnings.append(_units_hint(extents))
    for name in ("voxel_size", "global_voxel"):
        v = getattr(opts, name)
        if v is not None and max(extents) / v > MAX_VOXELS_PER_AXIS:
            raise InputError(f"{name} {v:g} m: too small for clouds {max(extents):.3g} m "
                             f"across (more than {MAX_VOXELS_PER_AXIS:.0e} voxels per axis)")
    c = tgt.mean(axis=0)
    src, tgt = src - c, tgt - c
    if opts.voxel_size is not None:
        src = voxel_downsample(src, opts.voxel_size)
        if tn is None:
            tgt = voxel_downsample(tgt, opts.voxel_size)
        if min(len(src), len(tgt)) < MIN_CORRESPONDENCES:
            raise InputError(f"voxel_size {opts.voxel_size:g} m leaves {len(src)} source and "
                             f"{len(tgt)} target points (need {MIN_CORRESPONDENCES}); use a "
                             "smaller voxel_size")
    max_d = opts.max_correspondence_distance or (3 * opts.voxel_size if opts.voxel_size
                                                 else 5 * spacing(src))
    # Z-order both clouds: k-d tree queries (matching, normals) reuse the same branches from
    # one point to the next (open3d's normals of a 100k-point scan: 2x faster)
    src = np.ascontiguousarray(src[morton_order(src)])
    order = morton_order(tgt)
    tgt = np.ascontiguousarray(tgt[order])
    tn = None if tn is None else np.ascontiguousarray(tn[order])
    nn = NearestNeighbors(tgt, opts.workers)
    angle_check = opts.max_normal_angle_deg is not None
    if (opts.method == "point-to-plane" or angle_check) and tn is None:
        tn = estimate_normals(tgt, _normal_radius(tgt, opts, nn.tree), opts.normal_max_nn)
    sn = estimate_normals(src, _normal_radius(src, opts), opts.normal_max_nn) \
        if angle_check else None  # source normals, rotated with the pose at every iteration
    radius = float(np.sqrt(np.max(np.sum(tgt * tgt, axis=1))))
    return _Clouds(src, tgt, tn, sn, c, radius, float(max_d), extents, nn)


def _normal_radius(points: np.ndarray, opts: ICPOptions, tree=None) -> float:
    return opts.normal_radius or (2 * opts.voxel_size if opts.voxel_size else
                                  3 * spacing(points, tree=tree))


#: how the units hint (clouds ~1000x apart in size) ends, for callers that look for it
UNITS_QUESTION = "are they in the same units (mm vs m)?"


def _units_hint(extents: tuple[float, float]) -> str:
    a, b = extents
    return (f"the source spans {format_length(a)} and the target {format_length(b)} "
            f"({max(a, b) / min(a, b):.0f}x): {UNITS_QUESTION}")


def _initial_pose(clouds: _Clouds, T0, opts: ICPOptions, warnings: list[str]):
    """``(T in the centred frame, how it was obtained)``: given, or FPFH + RANSAC."""
    if T0 is not None:
        return _shift(T0, clouds.centre), "given"
    gv = opts.global_voxel or clouds.radius / 25
    try:
        T, gfit = fpfh_ransac(clouds.src, clouds.tgt, gv, seed=opts.seed)
    except RuntimeError as exc:
        raise NotConvergedError(f"global initialisation failed ({exc}); give init") from None
    if gfit < 0.2:
        warnings.append(f"global initialisation is weak (RANSAC fitness {gfit:.2f}); give "
                        "init if the result looks wrong")
    return T, f"fpfh-ransac (fitness {gfit:.3f} at voxel {gv:.4g} m)"


@dataclass
class _Trace:
    """The state the ICP loop hands to the result."""

    T: np.ndarray
    termination: str = "iteration limit"
    converged: bool = False
    iterations: int = 0
    history: list = dataclasses.field(default_factory=list)
    final: object = None  # matches at the final pose at the final distance, when known
    fam: object = None
    last_m: object = None
    nn: object = None  # the target's neighbour index


def _loss_name(opts: ICPOptions) -> str | None:
    name = opts.loss if opts.loss not in (None, "none") else None
    if name == "auto":  # Huber for point-to-plane; point-to-point distances are all
        # positive, so down-weighting the far ones early only slows its slow convergence
        name = "huber" if opts.method == "point-to-plane" else None
    return name


def _refine(T: np.ndarray, clouds: _Clouds, opts: ICPOptions) -> _Trace:
    """Coarse subset stage (large clouds), then every scale up to ``max_iterations``."""
    tr = _Trace(T, nn=clouds.nn)
    loss_name = _loss_name(opts)
    subset = coarse_size(len(clouds.src), opts.coarse_points)
    if subset:
        step = max(len(clouds.src) // subset, 1)
        tr.T, tr.iterations = _coarse_stage(tr.T, step, clouds.src, clouds.sn, clouds.nn,
                                            clouds.tgt, clouds.tn, opts,
                                            clouds.max_d * opts.scales[0], loss_name,
                                            clouds.radius, tr.history)
        clouds.nn.widen(slice(0, None, step), len(clouds.src))
    for scale in opts.scales:
        _iterate_scale(tr, clouds, opts, scale, loss_name)
    return tr


def _iterate_scale(tr: _Trace, clouds: _Clouds, opts: ICPOptions, scale: float,
                   loss_name: str | None) -> None:
    """ICP iterations at distance ``scale * max_d`` until a stopping rule holds (fitness and
    RMSE unchanged, a negligible transform, or :func:`_settled`) or ``max_iterations``."""
    src, d_s = clouds.src, clouds.max_d * scale
    last_fit = last_rmse = tr.final = None
    steps: list[float] = []  # Mahalanobis sizes of this scale's pose steps
    tr.termination, tr.converged = "iteration limit", False
    for it in range(opts.max_iterations):
        m = match(tr.nn, transform_points(tr.T, src), d_s, _rotate(tr.T, clouds.sn),
                  clouds.tn, opts.max_normal_angle_deg, opts.mutual)
        tr.iterations += 1
        n = len(m.source_index)
        if n < MIN_CORRESPONDENCES:
            raise NotConvergedError(_no_overlap(n, d_s, clouds))
        fit, rmse = n / len(src), float(np.sqrt(np.mean(m.distance ** 2)))
        tr.history.append({"scale": scale, "iteration": it, "fitness": fit, "rmse": rmse,
                           "correspondences": n, "queried": tr.nn.queried})
        if last_fit is not None and abs(fit - last_fit) <= opts.relative_fitness * \
                max(last_fit, 1e-12) and abs(rmse - last_rmse) <= opts.relative_rmse * \
                max(last_rmse, 1e-300):
            tr.termination, tr.converged = "fitness and RMSE stopped changing", True
            tr.final = m if d_s == clouds.max_d else None  # matched at the final pose
            return
        last_fit, last_rmse = fit, rmse
        # the matched source points are those of the last iteration: no residual has
        # jumped in or out at the distance bound (a jump the step sizes cannot foresee)
        same_set = tr.last_m is not None and \
            np.array_equal(m.source_index, tr.last_m.source_index)
        dT, step = _pose_step(tr, m, clouds, opts, loss_name, d_s)
        steps.append(step)
        if _small_step(dT, opts.transform_tolerance, clouds.radius):
            tr.termination, tr.converged = "transform stopped changing", True
            return
        if same_set and _settled(steps, opts.uncertainty_tolerance):
            tr.termination, tr.converged = SETTLED, True
            return


def _pose_step(tr: _Trace, m, clouds: _Clouds, opts: ICPOptions, loss_name: str | None,
               d_s: float) -> tuple[np.ndarray, float]:
    """One pose solve on the matches ``m`` (their residual family kept while the matches
    repeat); updates ``tr.T`` and the history. Returns the step ``dT`` (new pose times the
    inverse of the old) and its Mahalanobis size (:func:`_step_sigma`)."""
    if tr.fam is None or not _same(m, tr.last_m):  # late iterations keep their pairs
        tr.fam = _pairs(opts.method, clouds.src, clouds.tgt, clouds.tn, m)
    tr.last_m = m
    T_new, step = _solve_pose(tr.fam, tr.T, _loss(loss_name, tr.fam, tr.T, d_s, opts),
                              opts.inner_iterations)
    tr.history[-1]["step_sigma"] = step
    dT = T_new @ se3.inverse(tr.T)
    tr.T = T_new
    return dT, step


#: termination of :func:`_settled`
SETTLED = "pose settled within its uncertainty"


def _settled(steps: list[float], tolerance: float | None) -> bool:
    """Whether the pose steps of one scale (Mahalanobis sizes, :func:`_step_sigma`) say
    the iteration has settled (the caller also asks that the set of matched source points
    did not change at the last search): the last step was below one standard deviation of the pose
    and the steps still to come, extrapolated geometrically from the last three (ratio
    ``q``, the larger of the last two step ratios, below 1), add up to at most
    ``tolerance`` standard deviations: ``s q / (1 - q) <= tolerance``. ICP converges
    linearly (the correspondences follow the pose), so the remaining motion is that
    geometric tail; stopping then moves the answer by at most ``tolerance`` of its own
    statistical spread (0.1: at most 1% more mean squared error)."""
    if tolerance is None or len(steps) < 3 or steps[-1] > 1.0:
        return False
    a, b, c = steps[-3:]
    if not (a > 0 and b > 0):
        return False
    q = max(c / b, b / a)
    return q < 1.0 and c * q / (1.0 - q) <= tolerance


def _no_overlap(n: int, d: float, clouds: _Clouds) -> str:
    a, b = clouds.extents
    units = f"; {_units_hint(clouds.extents)}" if max(a, b) >= 50 * min(a, b) else ""
    return (f"{n} correspondences within {format_length(d)} (need {MIN_CORRESPONDENCES}): the "
            "clouds do not overlap at this pose; give a better init or a larger "
            f"max_correspondence_distance{units}")


def _result(tr: _Trace, clouds: _Clouds, opts: ICPOptions, initialization: str,
            warnings: list[str], T0: np.ndarray) -> RegistrationResult:
    """Statistics, uncertainty, degeneracy and the checks at the final pose (a failed one,
    when the data determine every motion, also says whether the inputs look swapped:
    :func:`_inverse_hint` from the start ``T0``)."""
    T, src = tr.T, clouds.src
    m = tr.final if tr.final is not None else match(
        tr.nn, transform_points(T, src), clouds.max_d, _rotate(T, clouds.sn), clouds.tn,
        opts.max_normal_angle_deg, opts.mutual)
    n = len(m.source_index)
    if n < MIN_CORRESPONDENCES:
        raise NotConvergedError(f"only {n} correspondences at the final pose")
    fam = tr.fam if tr.fam is not None and _same(m, tr.last_m) else \
        _pairs(opts.method, src, clouds.tgt, clouds.tn, m)
    info = _information(fam, T, n)
    degeneracy = analyze(info, fam.target, opts.degeneracy_ratio)
    warnings = list(warnings)
    if degeneracy.degenerate:
        warnings.append(degeneracy.message())
    problems = []
    if not tr.converged:
        problems.append(f"did not converge within {opts.max_iterations} iterations")
    fitness = n / len(src)
    if fitness < opts.min_fitness:
        problems.append(f"low overlap: only {100 * fitness:.0f}% of source points have a "
                        f"correspondence within {format_length(clouds.max_d)} (min_fitness "
                        f"{opts.min_fitness:g})")
    if problems and not degeneracy.singular:
        hint = _inverse_hint(clouds, T0, opts)
        if hint:
            problems.append(hint)
    return RegistrationResult(
        T_target_source=_unshift(T, clouds.centre), converged=tr.converged,
        termination=tr.termination, iterations=tr.iterations, fitness=fitness,
        inlier_rmse=float(np.sqrt(np.mean(m.distance ** 2))), num_correspondences=n,
        information=info, covariance=_deferred_covariance(fam, T, n, src, clouds),
        degeneracy=degeneracy, warnings=tuple(warnings),
        method=opts.method, max_correspondence_distance=clouds.max_d,
        initialization=initialization, history=tuple(tr.history), problems=tuple(problems))


def _auto_scale(fam, T, max_d: float, sample: int = 20000) -> float:
    """Huber's 95%-efficiency tuning constant times a robust noise estimate:
    ``1.345 * 1.4826 * median(|r - median r|)`` of the current residuals (per-row norms; a
    strided subset of at most ``sample`` rows, plenty for a median; the source is in Morton
    order so a stride samples space evenly), floored at ``1e-6 * max_d`` so an exact fit
    cannot give a zero scale."""
    n = len(fam.source)
    if n > sample:
        sel = slice(0, n, -(-n // sample))
        fam = _family("point-to-plane" if hasattr(fam, "normals") else "point-to-point",
                      fam.source[sel], fam.target[sel],
                      fam.normals[sel] if hasattr(fam, "normals") else None)
    r, _ = fam.evaluate([T[None]], [None], jacobians=False)
    e = np.linalg.norm(r, axis=1) if r.shape[1] > 1 else r[:, 0]
    mad = float(_median(np.abs(e - _median(e))))
    return max(1.345 * 1.4826 * mad, 1e-6 * max_d)


#: the coarse stage runs when its subset (:func:`coarse_size`) has at least this many
#: points: on smaller clouds a full iteration costs little more than a subset's
COARSE_MIN_POINTS = 2000


def coarse_size(n: int, coarse_points: int | None) -> int:
    """Points in the coarse stage's subset of an ``n``-point source: a quarter of it, at
    most ``coarse_points``; 0 (no coarse stage) below ``COARSE_MIN_POINTS`` (or below
    ``coarse_points`` when that is smaller) or when ``coarse_points`` is None."""
    if not coarse_points:
        return 0
    m = min(coarse_points, n // 4)
    return m if m >= min(COARSE_MIN_POINTS, coarse_points) else 0


def _median(x: np.ndarray) -> float:
    """``np.median`` of a finite 1-D array, the same value from a partition at the middle
    (without np.median's overhead: 1.4x faster at 10k values)."""
    n = len(x)
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return float((p[k - 1] + p[k]) / 2)


def _coarse_stage(T, step, src, sn, nn, tgt, tn, opts, d_s, loss_name, radius, history
                  ) -> tuple[np.ndarray, int]:
    """ICP on every ``step``-th source point (the source is in Morton order: an even
    subset) until a step moves less than ``opts.coarse_tolerance`` (rad, and times the
    cloud radius); the full cloud then starts close to its optimum and the cached search
    re-queries few points. Returns the pose and iterations run."""
    sub = np.ascontiguousarray(src[::step])
    ssub = None if sn is None else np.ascontiguousarray(sn[::step])
    its = 0
    for it in range(opts.max_iterations):
        m = match(nn, transform_points(T, sub), d_s, _rotate(T, ssub), tn,
                  opts.max_normal_angle_deg, opts.mutual)
        if len(m.source_index) < MIN_CORRESPONDENCES:
            break  # the full cloud decides (and raises if it also finds too few)
        its += 1
        history.append({"scale": "coarse", "iteration": it,
                        "fitness": len(m.source_index) / len(sub),
                        "rmse": float(np.sqrt(np.mean(m.distance ** 2))),
                        "correspondences": len(m.source_index), "queried": nn.queried})
        fam = _pairs(opts.method, sub, tgt, tn, m)
        T_new, _ = _solve_pose(fam, T, _loss(loss_name, fam, T, d_s, opts),
                               opts.inner_iterations)
        dT = T_new @ se3.inverse(T)
        T = T_new
        if _small_step(dT, opts.coarse_tolerance, radius):
            break
    return T, its


def _loss(loss_name: str | None, fam, T: np.ndarray, d_s: float, opts: ICPOptions):
    """The robust loss of one pose solve: ``loss_name`` at ``opts.loss_scale``, or at the
    scale :func:`_auto_scale` estimates from the pairs ``fam`` at ``T``; None: least squares."""
    if not loss_name:
        return None
    return make_loss(loss_name, opts.loss_scale or _auto_scale(fam, T, d_s))


def _small_step(dT: np.ndarray, tolerance: float, radius: float) -> bool:
    """Does the step ``dT`` rotate by at most ``tolerance`` rad and translate by at most
    ``tolerance * radius``?"""
    return so3.angle(dT[:3, :3]) <= tolerance and \
        float(np.linalg.norm(dT[:3, 3])) <= tolerance * radius


def _rotate(T: np.ndarray, normals: np.ndarray | None) -> np.ndarray | None:
    if normals is None:
        return None
    R = np.eye(4)
    R[:3, :3] = T[:3, :3]
    return transform_points(R, normals)


def _same(a, b) -> bool:
    return len(a.source_index) == len(b.source_index) and \
        np.array_equal(a.source_index, b.source_index) and \
        np.array_equal(a.target_index, b.target_index)


def _pairs(method, src, tgt, tn, m):
    """The residual family of matches ``m`` (row gathers with ``np.take``: several times
    faster than fancy indexing of ``(N, 3)`` arrays)."""
    return _family(method, np.take(src, m.source_index, axis=0),
                   np.take(tgt, m.target_index, axis=0),
                   None if tn is None else np.take(tn, m.target_index, axis=0))


def _family(method, p, q, n):
    return PointToPlane(p, q, n) if method == "point-to-plane" else PointToPoint(p, q)


def _solve_pose(fam, T, loss, iterations: int) -> np.ndarray:
    prob = Problem()
    prob.add_parameter("pose", T[None], SE3Manifold())
    prob.add_residuals(fam, [("pose", np.zeros(len(fam.source), np.int64))], loss=loss)
    res = solve(prob, SolverOptions(max_iterations=iterations, function_tolerance=1e-12))
    if res.summary.termination == "failure":
        raise NotConvergedError(f"pose solve failed: {res.summary.message}")
    return res.values["pose"][0], _step_sigma(res.summary)


def _step_sigma(summary) -> float:
    """Mahalanobis size of a solve's pose step ``dx`` under the pose's statistical
    covariance ``sigma^2 H^-1`` (``H``: the Gauss-Newton information of the solve's fixed
    correspondences, robust weights included; ``sigma^2 = 2 cost / (n - 6)`` from its
    residuals at the new pose): ``sqrt(dx^T H dx) / sigma``. The step minimises the
    Gauss-Newton model, so ``dx^T H dx`` is twice the model's predicted cost decrease
    (``cost_change / gain_ratio`` of each accepted iteration): no extra evaluation.
    ``inf`` when no step was accepted or the residuals vanish (size unknown)."""
    predicted = sum(r.cost_change / r.gain_ratio for r in summary.iterations if r.accepted)
    var = 2.0 * summary.final_cost / max(summary.num_residual_scalars - 6, 1)
    if not (predicted > 0 and var > 0):
        return float("inf")
    return float(np.sqrt(2.0 * predicted / var))


def _information(fam, T, n) -> np.ndarray:
    """Information ``J^T J`` (6x6) of the pose residuals ``fam`` at ``T`` (centred frame):
    one BLAS product of the ``(n m, 6)`` rows (7x faster than ``einsum`` at 20k rows)."""
    _, jac = fam.evaluate([T[None]], [np.zeros(n, np.int64)], jacobians=True)
    rows = jac[0].reshape(-1, 6)
    return rows.T @ rows


def _deferred_covariance(fam, T, n, src, clouds: _Clouds):
    """A function computing the covariance of :mod:`calib.registration.covariance` at
    ``T``, for the result to call on first read (cluster-robust, residuals correlated within
    a spatial cell count as one piece of evidence; scaled up where nearest-neighbour
    residuals understate the noise of the clouds ``src`` and ``clouds.tgt``, whose k-d tree
    is reused). It holds only what it needs (the pairs, both clouds, the target's tree).

    The twist is a left perturbation in the centred target frame; its rotation part is the
    same in the original frame and the translation part differs by the centring shift,
    which leaves the eigen-analysis unchanged in meaning for motions about the centroid.
    """
    tgt, tree = clouds.tgt, clouds.nn.tree

    def covariance() -> np.ndarray:
        r, jac = fam.evaluate([T[None]], [np.zeros(n, np.int64)], jacobians=True)
        cov = sandwich_covariance(jac[0], r, cluster_cells(fam.target))
        return cov * noise_inflation(r, src, tgt, tree, ordered=True)

    return covariance
