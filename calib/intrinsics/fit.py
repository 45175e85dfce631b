"""Intrinsics and distortion from board observations, on the shared LM engine.

The camera parameters ``(fx, fy, cx, cy, k1, k2, p1, p2, k3)`` are one Euclidean block and
every view's board pose ``T_cam_board`` is an SE3 block eliminated by the Schur complement,
so a solve costs time linear in the number of views (OpenCV's calibrateCamera solves dense
normal equations over all views, cubic in their number).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from ..camera.pinhole import PARAM_NAMES, CameraModel
from ..errors import DegenerateError, InputError, NotConvergedError
from ..io.validate import as_array
from ..residuals.reprojection import BoardReprojection
from ..solver import Euclidean, Problem, SE3Manifold, SolverOptions, make_loss, solve
from ..solver.threads import blas_policy
from .diagnostics import check_distortion, coverage, verdict
from .initialize import homographies, poses_from_homographies, zhang_intrinsics
from .result import IntrinsicsResult

log = logging.getLogger(__name__)

MIN_VIEWS = 3
MIN_CORNERS_PER_VIEW = 4
#: Board normals must differ by at least this much across views (parallel boards leave the
#: focal length undetermined: Zhang 2000, section 3.3).
MIN_TILT_SPREAD_DEG = 3.0


@dataclass(frozen=True)
class FitOptions:
    """Model and robustness options (OpenCV flag equivalents in brackets).

    Attributes:
        fix_k3: hold k3 at 0 [CALIB_FIX_K3].
        fix_aspect: tie ``fx = aspect_ratio * fy`` [CALIB_FIX_ASPECT_RATIO]; square pixels
            (``aspect_ratio = 1``) by default.
        zero_tangent: hold p1 = p2 = 0 [CALIB_ZERO_TANGENT_DIST].
        fix_principal_point: hold cx, cy at their initial value, by default the image centre
            [CALIB_FIX_PRINCIPAL_POINT].
        loss, loss_scale: robust loss on each corner's pixel error (scale in pixels).
        reject_outliers: after a first fit, drop corners whose error exceeds
            ``max(outlier_sigmas * 1.4826 * MAD, 1 px)`` and views whose RMS exceeds
            ``max(3 x median view RMS, 1 px)``, then fit again; both are reported.
        max_iterations: LM iteration cap.
        initial_damping: the first LM damping, relative to ``diag(J^T J)``. 1e-6 rather than
            the engine's 1e-4: focal length against board distance and principal point
            against board rotation make the joint problem ill-conditioned, and 1e-4 slows
            every early step along those directions (500 views: 7 -> 4 iterations); a
            rejected first step costs one residual evaluation. Measured over random
            cameras, boards and view counts by ``bench/study_intrinsics_damping.py``.
    """

    fix_k3: bool = False
    fix_aspect: bool = False
    aspect_ratio: float = 1.0
    zero_tangent: bool = False
    fix_principal_point: bool = False
    loss: str | None = None
    loss_scale: float = 1.0
    reject_outliers: bool = False
    outlier_sigmas: float = 5.0
    max_iterations: int = 100
    initial_damping: float = 1e-6


@dataclass(frozen=True)
class _Views:
    """Every view's corners as flat rows: view ``k`` is rows ``offsets[k]:offsets[k + 1]``."""

    board: np.ndarray  # (R, 3) board points (metres, z = 0)
    pixels: np.ndarray  # (R, 2)
    view: np.ndarray  # (R,) view of each row
    offsets: np.ndarray  # (V + 1,)

    @property
    def n_views(self) -> int:
        return len(self.offsets) - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _check_board(name: str, o: np.ndarray, i: np.ndarray) -> None:
    if len(o) < MIN_CORNERS_PER_VIEW:
        raise InputError(f"{name}: {len(o)} corners, need at least {MIN_CORNERS_PER_VIEW}")
    if np.abs(i).max() > 1e7 or np.abs(o).max() > 1e6:
        raise InputError(f"{name}: coordinates are implausibly large (corrupt input?)")
    if np.abs(o[:, 2]).max() > 1e-9 * max(1.0, np.abs(o).max()):
        raise InputError(f"{name}: board points must lie on z = 0")


def _as_views(object_points, image_points, view_names=None) -> _Views:
    """Validate and flatten the views; errors name a view by ``view_names[k]`` if given."""
    def label(k: int, what: str = "image_points") -> str:
        return str(view_names[k]) if view_names is not None else f"{what}[{k}]"

    n_given = (image_points.shape[0] if isinstance(image_points, np.ndarray)
               and image_points.ndim == 3 else len(image_points))
    if view_names is not None and len(view_names) != n_given:
        raise InputError(f"view_names has {len(view_names)} names for {n_given} views")
    if (isinstance(image_points, np.ndarray) and image_points.ndim == 3
            and isinstance(object_points, np.ndarray) and object_points.ndim == 2):
        # the common full-board case: validate the whole (V, N, 2) array at once
        img = as_array("image_points", image_points, (-1, -1, 2), finite=False)
        o = as_array("object_points", object_points, (-1, 3))
        if len(img) == 0:
            raise InputError("image_points: no views given")
        bad = ~np.isfinite(img).all(axis=(1, 2))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InputError(f"{label(k)}: {int((~np.isfinite(img[k])).sum())} value(s) "
                             f"are NaN or inf ({int(bad.sum())} view(s) affected)")
        if img.shape[1] != len(o):
            raise InputError(f"object_points has {len(o)} points, image_points "
                             f"{img.shape[1]} per view")
        _check_board("object_points", o, img)
        v, n = img.shape[:2]
        return _Views(np.tile(o, (v, 1)), np.ascontiguousarray(img.reshape(-1, 2)),
                      np.repeat(np.arange(v), n), np.arange(v + 1) * n)
    if isinstance(image_points, np.ndarray) and image_points.ndim == 3:
        img = [image_points[i] for i in range(image_points.shape[0])]
    else:
        img = list(image_points)
    if len(img) == 0:
        raise InputError("image_points: no views given")
    obj_arr = object_points if isinstance(object_points, np.ndarray) else None
    if obj_arr is not None and obj_arr.ndim == 2:
        obj = [obj_arr] * len(img)
    else:
        obj = list(object_points)
    if len(obj) != len(img):
        raise InputError(f"object_points has {len(obj)} views, image_points {len(img)}")
    out_o, out_i = [], []
    for k, (o, i) in enumerate(zip(obj, img, strict=True)):
        o = as_array(label(k, "object_points"), o, (-1, 3))
        i = as_array(label(k), i, (-1, 2))
        if len(o) != len(i):
            raise InputError(f"{label(k)}: {len(o)} object points but {len(i)} image points")
        _check_board(label(k), o, i)
        out_o.append(o)
        out_i.append(i)
    counts = np.array([len(o) for o in out_o])
    return _Views(np.concatenate(out_o), np.concatenate(out_i),
                  np.repeat(np.arange(len(counts)), counts), np.r_[0, np.cumsum(counts)])


@blas_policy
def fit_intrinsics(
    object_points: np.ndarray | Sequence[np.ndarray],
    image_points: np.ndarray | Sequence[np.ndarray],
    image_size: tuple[int, int],
    options: FitOptions | None = None,
    view_names: Sequence[str] | None = None,
    **kwargs,
) -> IntrinsicsResult:
    """Fit a pinhole + Brown-Conrady camera to board corners seen in several views.

    Args:
        object_points: board corners ``(N, 3)`` (metres, z = 0) shared by all views, or a
            list with one ``(N_i, 3)`` array per view.
        image_points: ``(V, N, 2)`` pixels, or a list with one ``(N_i, 2)`` per view.
        image_size: ``(width, height)`` in pixels.
        options: :class:`FitOptions` (or pass its fields as keyword arguments).
        view_names: a label per view for reports (image file names).

    Raises:
        InputError: shapes, NaN/inf, fewer than 3 views or 4 corners in a view.
        DegenerateError: the views do not determine the camera.
        NotConvergedError: the solver failed (non-finite values) or diverged.
    """
    if options is not None and kwargs:
        raise InputError("pass either options or keyword options, not both")
    if options is None:
        unknown = sorted(set(kwargs) - {f.name for f in fields(FitOptions)})
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; FitOptions has "
                             f"{', '.join(f.name for f in fields(FitOptions))}")
    opts = options if options is not None else FitOptions(**kwargs)
    w, h = (int(v) for v in as_array("image_size", image_size, (2,)))
    if w <= 0 or h <= 0:
        raise InputError(f"image_size must be positive, got {(w, h)}")
    views = _as_views(object_points, image_points, view_names)
    nv = views.n_views
    names = list(view_names) if view_names is not None else [f"view{k}" for k in range(nv)]
    margin = 0.1 * max(w, h)
    px = views.pixels
    out = (px[:, 0] < -margin) | (px[:, 0] > w + margin) | (px[:, 1] < -margin) | \
        (px[:, 1] > h + margin)
    if out.any():
        per_view = np.bincount(views.view[out], minlength=nv)
        k = int(np.flatnonzero(per_view)[0])
        raise InputError(f"{names[k]}: {int(per_view[k])} corner(s) lie outside the "
                         f"{w}x{h} image (wrong image_size or corners?)")
    if nv < MIN_VIEWS:
        raise InputError(f"{nv} usable view(s); need at least {MIN_VIEWS} board views")

    counts = views.counts
    try:
        if np.all(counts == counts[0]):
            H = homographies(views.board[:, :2].reshape(nv, -1, 2), px.reshape(nv, -1, 2))
        else:
            o = views.offsets
            H = homographies([views.board[o[k]:o[k + 1], :2] for k in range(nv)],
                             [px[o[k]:o[k + 1]] for k in range(nv)])
    except DegenerateError as exc:
        k = getattr(exc, "view", None)
        if k is None:
            raise
        raise DegenerateError(f"{names[k]}: the board homography is degenerate (corners "
                              "collinear or repeated)") from None
    K0, init_method = zhang_intrinsics(H, (w, h))
    if opts.fix_principal_point:
        K0[0, 2], K0[1, 2] = (w - 1) / 2.0, (h - 1) / 2.0
    T0 = poses_from_homographies(K0, H)
    normals = T0[:, :3, 2]
    spread = np.degrees(np.arccos(np.clip(np.min(normals @ normals.T), -1.0, 1.0)))
    if spread < MIN_TILT_SPREAD_DEG:
        raise DegenerateError(
            f"all {nv} views see the board from the same direction (board normals within "
            f"{spread:.1f} deg): the focal length is not determined; tilt the board between "
            "views")
    theta0 = np.r_[K0[0, 0], K0[1, 1], K0[0, 2], K0[1, 2], np.zeros(5)]

    keep = np.ones(len(px), bool)
    used = np.ones(nv, bool)
    if opts.loss not in (None, "none"):
        # a robust loss from the closed-form start (several px off) down-weights or, for
        # redescending losses (Tukey), ignores whole views before their poses are refined:
        # plain least squares first, then the robust loss from there
        make_loss(opts.loss, opts.loss_scale)  # an unknown loss fails before any work
        start = _solve(views, keep, used, theta0, T0, replace(opts, loss=None))
        theta0, T0 = start["theta"], start["poses"]
    result = _solve(views, keep, used, theta0, T0, opts)
    rejected_corners = 0
    rejected_views: list[int] = []
    first_pass_rms = result["per_view_rms"]
    if opts.reject_outliers:
        err = np.linalg.norm(result["residuals"], axis=1)  # every row: all views, all corners
        mad = 1.4826 * np.median(np.abs(err - np.median(err)))
        thr = max(opts.outlier_sigmas * max(mad, 1e-3), 1.0)
        pv = result["per_view_rms"]
        med = float(np.median(pv[used]))
        for k in range(nv):
            if pv[k] > max(3 * med, 1.0) and used.sum() > MIN_VIEWS:
                used[k] = False
                rejected_views.append(k)
        keep = err <= thr
        rejected_corners = int((~keep & used[views.view]).sum())
        if rejected_corners or rejected_views:
            result = _solve(views, keep, used, result["theta"], result["poses"], opts)
    _check_weights(result, views, used, names, opts)
    return _make_result(result, used, names, (w, h), init_method, rejected_corners,
                        rejected_views, opts, first_pass_rms)


def _check_weights(result: dict, views: _Views, used: np.ndarray, names: list[str],
                   opts: FitOptions) -> None:
    """A robust loss that gives every corner of a view zero weight leaves its pose
    undetermined: say so (with the scale to change) instead of a singular-matrix error."""
    if opts.loss in (None, "none"):
        return
    r = result["residuals"]
    _, w, _ = make_loss(opts.loss, opts.loss_scale)(np.sum(r * r, axis=1))
    vi = result["view_index"]
    weight = np.bincount(vi, w, views.n_views)
    dead = np.flatnonzero(used & (weight <= 1e-12 * max(float(weight.max()), 1e-300)))
    if dead.size:
        shown = ", ".join(names[k] for k in dead[:5]) + (" ..." if dead.size > 5 else "")
        raise DegenerateError(
            f"{shown}: every corner lies beyond the {opts.loss} loss scale "
            f"({opts.loss_scale:g} px) and gets no weight, so the view's pose is "
            "undetermined; raise the loss scale or use huber/cauchy")


def _solve(views: _Views, keep: np.ndarray, used: np.ndarray, theta0, T0,
           opts: FitOptions) -> dict:
    """Refine on the rows ``keep`` (R,) of the views ``used`` (V,)."""
    rows = keep & used[views.view]
    if rows.all():
        bp, uv, view_of = views.board, views.pixels, views.view
    else:
        bp, uv, view_of = views.board[rows], views.pixels[rows], views.view[rows]
    vlist = np.flatnonzero(used)
    vidx = (np.cumsum(used) - 1)[view_of]
    if np.bincount(vidx, minlength=len(vlist)).min() < MIN_CORNERS_PER_VIEW:
        raise DegenerateError("a view has fewer than 4 corners left after outlier rejection")
    aspect = opts.aspect_ratio if opts.fix_aspect else None
    fam = BoardReprojection(bp, uv, aspect)
    p = Problem()
    p.add_parameter("camera", theta0[None], Euclidean(9))
    p.add_parameter("poses", T0[vlist], SE3Manifold(), eliminate=True)
    loss = make_loss(opts.loss, opts.loss_scale) if opts.loss not in (None, "none") else None
    p.add_residuals(fam, [("camera", np.zeros(len(uv), np.int64)), ("poses", vidx)], loss=loss)
    const = _constant_coords(opts)
    if const:
        p.set_constant("camera", coords=const)
    theta_start = theta0.copy()
    theta_start[[i for i in const if i >= 4]] = 0.0  # held distortion terms are zero
    p.groups["camera"].value[0] = theta_start
    # function_tolerance 1e-6 on the cost = 5e-7 relative on the RMS (2e-7 px at 0.4 px);
    # measured against 1e-8: one iteration fewer on 13/100 views, parameters within 1e-3 std
    res = solve(p, SolverOptions(max_iterations=opts.max_iterations, covariance=("camera",),
                                 function_tolerance=1e-6, parameter_tolerance=1e-10,
                                 initial_damping=opts.initial_damping))
    s = res.summary
    if s.termination == "failure":
        raise NotConvergedError(f"intrinsics solve failed: {s.message}")
    theta = fam.theta(res.values["camera"])[0]
    r, _ = fam.evaluate([res.values["camera"], res.values["poses"]],
                        [np.zeros(len(uv), np.int64), vidx], jacobians=False)
    poses = T0.copy()
    poses[vlist] = res.values["poses"]
    sq = np.sum(r * r, axis=1)
    per_view = np.full(views.n_views, np.nan)
    per_view[vlist] = np.sqrt(np.bincount(vidx, sq, len(vlist)) / np.bincount(vidx, None,
                                                                              len(vlist)))
    return dict(theta=theta, poses=poses, residuals=r, uv=uv, view_index=view_of,
                per_view_rms=per_view, summary=s, cov=res.covariance["camera"],
                deficient="camera" in res.covariance_rank_deficient, n_free=s.num_parameters,
                aspect=aspect)


def _constant_coords(opts: FitOptions) -> list[int]:
    """Camera coordinates (indices into PARAM_NAMES) the options hold constant; fx (0)
    when it is tied to fy."""
    const = [0] if opts.fix_aspect else []
    if opts.fix_principal_point:
        const += [2, 3]
    if opts.zero_tangent:
        const += [6, 7]
    if opts.fix_k3:
        const.append(8)
    return const


def _fixed_names(opts: FitOptions) -> tuple[str, ...]:
    """Parameters held fixed (a tied fx is estimated through fy: not fixed)."""
    return tuple(PARAM_NAMES[i] for i in sorted(_constant_coords(opts)) if i != 0)


def _make_result(res, used, names, size, init_method, rejected_corners, rejected_views,
                 opts: FitOptions, first_pass_rms: np.ndarray) -> IntrinsicsResult:
    theta = res["theta"]
    r = res["residuals"]
    n = len(r)
    rms = float(np.sqrt(np.sum(r * r) / n))  # OpenCV's definition: per corner, not per axis
    dof = max(2 * n - res["n_free"], 1)
    sigma2 = float(np.sum(r * r) / dof)
    cov = res["cov"] * sigma2
    if res["aspect"] is not None:  # fx = aspect * fy
        cov[0, :] = res["aspect"] * cov[1, :]
        cov[:, 0] = res["aspect"] * cov[:, 1]
    std = {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(PARAM_NAMES)}
    if res["deficient"]:
        raise DegenerateError("the board views do not determine every camera parameter "
                              "(the normal equations are singular); add views with the board "
                              "tilted in different directions")
    camera = CameraModel(theta, size)
    dist = check_distortion(theta, size)
    cover = coverage(res["uv"], size)
    s = res["summary"]
    v, reasons = verdict(rms, res["per_view_rms"], used, std, theta, dist, cover,
                         s.termination == "converged", names)
    rejected_rms = {names[k]: float(first_pass_rms[k]) for k in rejected_views}
    return IntrinsicsResult(
        camera=camera, std=std, covariance=cov, rms_px=rms,
        per_view_rms_px=res["per_view_rms"], view_names=tuple(names), views_used=used.copy(),
        poses=res["poses"], residuals=r, points_px=res["uv"], view_index=res["view_index"],
        rejected_corners=rejected_corners,
        rejected_views=tuple(names[k] for k in rejected_views), distortion_check=dist,
        coverage=cover, verdict=v, reasons=tuple(reasons), init_method=init_method,
        solver_summary=s, options=opts, fixed=_fixed_names(opts),
        rejected_view_rms_px=rejected_rms)
