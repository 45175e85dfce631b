"""Intrinsics and distortion from board observations: the rig of one camera.

One pipeline for 1..N cameras: the problem, its solve and σ are the board-camera core
(:mod:`calib.intrinsics.problem`, shared with :func:`calib.rig.fit_rig`). The camera
parameters (``param_names`` of the lens model: ``fx, fy, cx, cy`` then its distortion, e.g.
``k1, k2, p1, p2, k3`` for pinhole) are one Euclidean block and every view's board pose is an
SE3 block eliminated by the Schur complement, so a solve costs time linear in the number of
views (OpenCV's calibrateCamera solves dense normal equations over all views, cubic in their
number). Around that core this module adds what a single camera's fit offers: input checks,
the starts, the wide-lens multi-start, robust loss from a least-squares start, outlier
rejection, the model advice, trust and the wrong-model checks.

Starts (no guess needed): pinhole and rational from Zhang's homographies
(:func:`~calib.intrinsics.initialize.zhang_intrinsics`); fisheye and double-sphere, whose
fields of view break Zhang's pinhole start beyond about 120 deg, from a 1-D search over the
focal length with the principal point at the image centre and each view's pose in closed
form from the unprojected rays (:func:`~calib.intrinsics.initialize.focal_search`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from ..camera.base import LensModel, get_model, model_names
from ..camera.camera import Camera
from ..camera.rational import cancelling_pair
from ..errors import DegenerateError, InputError, NotConvergedError
from ..io.validate import as_array
from ..solver import make_loss
from ..solver.threads import blas_policy
from .diagnostics import (
    RICHER,
    ModelAdvice,
    board_checks,
    check_distortion,
    compare_models,
    radial_pattern,
    verdict,
)
from .initialize import (
    WIDE_MODELS,
    homographies,
    poses_from_homographies,
    wide_starts,
    zhang_intrinsics,
)
from .problem import BoardRows, BoardSettings, BoardSolve, rms_px, solve_boards
from .result import IntrinsicsResult
from .trust import SolvedViews, Trust, assess

log = logging.getLogger(__name__)

MIN_VIEWS = 3
MIN_CORNERS_PER_VIEW = 4
#: The error of views that leave a camera parameter undetermined.
UNDETERMINED = ("the board views do not determine every camera parameter (the normal equations "
                "are singular); add views with the board tilted in different directions")
#: Board normals must differ by at least this much across views (parallel boards leave the
#: focal length undetermined: Zhang 2000, section 3.3).
MIN_TILT_SPREAD_DEG = 3.0


@dataclass(frozen=True)
class FitOptions:
    """Model and robustness options (OpenCV flag equivalents in brackets).

    Attributes:
        model: lens model name (``pinhole``, ``rational``, ``fisheye``, ``double-sphere``;
            :func:`calib.camera.model_names`) [CALIB_RATIONAL_MODEL; cv2.fisheye].
        fix: further parameters (by name, e.g. ``("k4", "k5", "k6")``) held at their start:
            0 for distortion coefficients, the model's neutral value for ``xi``/``alpha``
            [CALIB_FIX_K1..K6, cv2.fisheye.CALIB_FIX_K1..K4].
        fix_k3: hold k3 at 0 (models with a k3) [CALIB_FIX_K3].
        fix_aspect: tie ``fx = aspect_ratio * fy`` [CALIB_FIX_ASPECT_RATIO]; square pixels
            (``aspect_ratio = 1``) by default.
        zero_tangent: hold p1 = p2 = 0 (pinhole, rational) [CALIB_ZERO_TANGENT_DIST].
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
        advise: when the residuals keep a radial pattern, the RMS exceeds 1 px or the
            distortion check fails, also fit the next richer models
            (:data:`~calib.intrinsics.diagnostics.RICHER`) and name one that explains the
            corners far better (:class:`~calib.intrinsics.diagnostics.ModelAdvice`).
        function_tolerance: stop when a step lowers the cost by less than this fraction;
            None: 1e-6 for pinhole (5e-7 relative on the RMS; one iteration fewer than 1e-8
            on 13/100 views, parameters within 1e-3 std) and fisheye (within 1e-5 std of
            cv2.fisheye.calibrate), 1e-8 for rational and double-sphere, whose long curved
            valleys (numerator against denominator, fx against xi) make early steps that
            small while far from the minimum; the rational fit also waits until the
            decrease still to come is a tenth of it (:mod:`~calib.intrinsics.settle`).
        trust: also compute the projection uncertainty over the image and cross-validate
            the two halves of the views (:mod:`calib.intrinsics.trust`).
    """

    model: str = "pinhole"
    fix: tuple[str, ...] = ()
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
    advise: bool = True
    function_tolerance: float | None = None
    trust: bool = True


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


def _check_board(name: str, o: np.ndarray, i: np.ndarray, image_name: str | None = None
                 ) -> None:
    """Board points ``o (N, 3)`` and pixels ``i (N, 2)`` of a view; errors start with
    ``name`` (with ``image_name``, when given, for the pixels' own)."""
    if len(o) < MIN_CORNERS_PER_VIEW:
        raise InputError(f"{name}: {len(o)} corners, need at least {MIN_CORNERS_PER_VIEW}")
    if np.abs(i).max() > 1e7:
        raise InputError(f"{image_name or name}: pixel coordinates are implausibly large "
                         "(above 1e7; corrupt input?)")
    if np.abs(o).max() > 1e6:
        raise InputError(f"{name}: board coordinates are implausibly large (above 1e6; "
                         "corrupt input?)")
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
        _check_board("object_points", o, img, "image_points")
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
    """Fit a camera (any registered lens model, ``options.model``) to board corners seen in
    several views.

    Args:
        object_points: board corners ``(N, 3)`` (metres, z = 0) shared by all views, or a
            list with one ``(N_i, 3)`` array per view.
        image_points: ``(V, N, 2)`` pixels, or a list with one ``(N_i, 2)`` per view.
        image_size: ``(width, height)`` in pixels.
        options: :class:`FitOptions` (or pass its fields as keyword arguments, e.g.
            ``model="fisheye"``).
        view_names: a label per view for reports (image file names).

    The start needs no guess (see the module docstring: Zhang for pinhole and rational, a
    focal-length search for fisheye and double-sphere). After the fit, when the residuals
    keep a radial pattern or the distortion check fails, the next richer model is fitted
    too and the result names it when it explains the corners far better
    (:func:`~calib.intrinsics.diagnostics.model_advice`).

    Raises:
        InputError: shapes, NaN/inf, unknown model or option, fewer than 3 views or 4
            corners in a view, fewer corners than the model's parameters need.
        DegenerateError: the views do not determine the camera.
        NotConvergedError: the solver failed (non-finite values) or diverged.
    """
    opts = _options(options, kwargs)
    model, (w, h), views, names = _prepare(object_points, image_points, image_size, opts,
                                           view_names)
    try:
        starts, init_method = _start(views, names, (w, h), model, opts)
        result, used, rej_corners, rej_views, first_pass = _best_refine(views, starts, model,
                                                                        opts)
        _check_weights(result, views, used, names, opts)
        return _make_result(result, used, names, (w, h), init_method, rej_corners, rej_views,
                            opts, first_pass, model, views)
    except (DegenerateError, NotConvergedError) as exc:
        raise _wrong_model_error(exc, views, names, (w, h), model, opts) from None


def _prepare(object_points, image_points, image_size, opts: FitOptions, view_names):
    """``(model, (w, h), views, names)`` of checked inputs."""
    model = get_model(opts.model)
    w, h = _image_size(image_size)
    views = _as_views(object_points, image_points, view_names)
    names = list(view_names) if view_names is not None else [f"view{k}"
                                                             for k in range(views.n_views)]
    _check_inputs(views, names, (w, h), model, opts)
    return model, (w, h), views, names


@blas_policy
def solve_camera(object_points, image_points, image_size, options: FitOptions,
                 view_names: Sequence[str] | None = None, refine: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The solve of :func:`fit_intrinsics` (same checks, start and refinement) without
    its diagnostics or trust: ``(params (P,), T_cam_board (V, 4, 4))``, for callers that
    refine further (the rig's per-camera start). ``refine=False``: the closed-form start
    only (one start: Zhang for pinhole and rational). Raises as fit_intrinsics;
    DegenerateError when the views leave a parameter undetermined."""
    out = _solve_camera(object_points, image_points, image_size, options, view_names, refine)
    return out if isinstance(out, tuple) else (out["theta"], out["poses"])


@blas_policy
def camera_solution(object_points, image_points, image_size, options: FitOptions,
                    view_names: Sequence[str] | None = None) -> BoardSolve:
    """The solve of :func:`fit_intrinsics` (checks, start, the wide-lens multi-start, the
    board-camera core) as the core's :class:`~calib.intrinsics.problem.BoardSolve`, σ
    scaled, rows in view order: the rig of one camera (:func:`calib.rig.fit_rig`). Raises
    as :func:`solve_camera`; ``options.reject_outliers`` must be off."""
    if options.reject_outliers:
        raise InputError("camera_solution: outlier rejection drops views; fit_intrinsics "
                         "reports them")
    return _solve_camera(object_points, image_points, image_size, options, view_names,
                         True)["solution"]


def _solve_camera(object_points, image_points, image_size, options: FitOptions, view_names,
                  refine: bool) -> tuple | dict:
    """The closed-form start ``(params, T_cam_board)`` (``refine=False``, one start) or the
    best refined solve dict (:func:`_solve`)."""
    model, size, views, names = _prepare(object_points, image_points, image_size, options,
                                         view_names)
    try:
        starts, _ = _start(views, names, size, model, options)
        if not refine and len(starts) == 1:
            return starts[0]
        res, used, *_ = _best_refine(views, starts, model, options)
        _check_weights(res, views, used, names, options)
        if res["undetermined"] and model.name == "pinhole":  # as _make_result
            raise DegenerateError(UNDETERMINED)
    except (DegenerateError, NotConvergedError) as exc:
        raise _wrong_model_error(exc, views, names, size, model, options) from None
    return res


def _options(options: FitOptions | None, kwargs: dict) -> FitOptions:
    if options is not None and kwargs:
        raise InputError("pass either options or keyword options, not both")
    if options is None:
        unknown = sorted(set(kwargs) - {f.name for f in fields(FitOptions)})
        if unknown:
            raise InputError(f"unknown option(s) {', '.join(unknown)}; FitOptions has "
                             f"{', '.join(f.name for f in fields(FitOptions))}")
    return options if options is not None else FitOptions(**kwargs)


def _image_size(image_size) -> tuple[int, int]:
    w, h = (int(v) for v in as_array("image_size", image_size, (2,)))
    if w <= 0 or h <= 0:
        raise InputError(f"image_size must be positive, got {(w, h)}")
    return w, h


def _check_inputs(views: _Views, names: list[str], size: tuple[int, int], model: LensModel,
                  opts: FitOptions) -> None:
    """Corners inside the image, enough views, and more equations than unknowns."""
    w, h = size
    nv = views.n_views
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
    n_free = model.num_params - len(_constant_coords(opts, model))
    unknowns = n_free + 6 * nv
    if 2 * len(px) <= unknowns:
        raise InputError(
            f"{len(px)} corners in {nv} views give {2 * len(px)} equations for {n_free} "
            f"{model.name} camera parameters and {6 * nv} pose parameters; need more than "
            f"{unknowns} (more corners per view, more views, or hold parameters fixed)")


def _start(views: _Views, names: list[str], size: tuple[int, int], model: LensModel,
           opts: FitOptions) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """``([(params (P,), T_cam_board (V, 4, 4))], method)`` without a guess (module
    docstring; one start, or the two best for double-sphere); fails when every board is seen
    from one direction."""
    w, h = size
    if model.name in WIDE_MODELS:
        starts = wide_starts(model, views.board[:, :2], views.pixels, views.offsets, (w, h))
        method = "focal-search"
    else:
        H = _homographies(views, names)
        K0, method = zhang_intrinsics(H, (w, h))
        if opts.fix_principal_point:
            K0[0, 2], K0[1, 2] = (w - 1) / 2.0, (h - 1) / 2.0
        starts = [(model.initial_params(K0), poses_from_homographies(K0, H))]
    if opts.fix_principal_point:
        for theta0, _ in starts:
            theta0[2:4] = (w - 1) / 2.0, (h - 1) / 2.0
    _check_tilt(starts[0][1])
    return starts, method


def _check_tilt(T0: np.ndarray) -> None:
    normals = T0[:, :3, 2]
    spread = np.degrees(np.arccos(np.clip(np.min(normals @ normals.T), -1.0, 1.0)))
    if spread < MIN_TILT_SPREAD_DEG:
        raise DegenerateError(
            f"all {len(T0)} views see the board from the same direction (board normals "
            f"within {spread:.1f} deg): the focal length is not determined; tilt the board "
            "between views")


def _homographies(views: _Views, names: list[str]) -> np.ndarray:
    nv, px, counts = views.n_views, views.pixels, views.counts
    try:
        if np.all(counts == counts[0]):
            return homographies(views.board[:, :2].reshape(nv, -1, 2), px.reshape(nv, -1, 2))
        o = views.offsets
        return homographies([views.board[o[k]:o[k + 1], :2] for k in range(nv)],
                            [px[o[k]:o[k + 1]] for k in range(nv)])
    except DegenerateError as exc:
        k = getattr(exc, "view", None)
        if k is None:
            raise
        raise DegenerateError(f"{names[k]}: the board homography is degenerate (corners "
                              "collinear or repeated)") from None


def _best_refine(views: _Views, starts: list, model: LensModel, opts: FitOptions):
    """:func:`_refine` from each start; the one with the lowest final cost."""
    best, error = None, None
    for theta0, T0 in starts:
        try:
            with np.errstate(all="ignore"):  # trial steps outside the model's domain: NaN
                out = _refine(views, theta0, T0, model, opts)
        except (DegenerateError, NotConvergedError) as exc:
            error = error or exc
            continue
        if best is None or out[0]["summary"].final_cost < best[0]["summary"].final_cost:
            best = out
    if best is None:
        raise error
    return best


def _refine(views: _Views, theta0: np.ndarray, T0: np.ndarray, model: LensModel,
            opts: FitOptions):
    """LM from the start (least squares first under a robust loss), then optional outlier
    rejection and a second fit. Returns ``(solve dict, used views, rejected corner count,
    rejected view indices, first-pass per-view RMS)``."""
    nv = views.n_views
    keep = np.ones(len(views.pixels), bool)
    used = np.ones(nv, bool)
    if opts.loss not in (None, "none"):
        make_loss(opts.loss, opts.loss_scale)  # an unknown loss fails before any work
        # a robust loss from the closed-form start (several px off) down-weights or, for
        # redescending losses (Tukey), ignores whole views before their poses are refined:
        # plain least squares first, then the robust loss from there
        start = _solve(views, keep, used, theta0, T0, replace(opts, loss=None), model)
        theta0, T0 = start["theta"], start["poses"]
    result = _solve(views, keep, used, theta0, T0, opts, model)
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
            result = _solve(views, keep, used, result["theta"], result["poses"], opts, model)
    return result, used, rejected_corners, rejected_views, first_pass_rms


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
           opts: FitOptions, model: LensModel) -> dict:
    """Refine on the rows ``keep`` (R,) of the views ``used`` (V,): the board-camera core
    (:func:`calib.intrinsics.problem.solve_boards`) with one camera; σ scaled."""
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
    settings = BoardSettings(
        held={model.name: tuple(_constant_coords(opts, model))}, aspect=aspect,
        loss=opts.loss, loss_scale=opts.loss_scale, max_iterations=opts.max_iterations,
        initial_damping=opts.initial_damping, function_tolerance=opts.function_tolerance)
    sol = solve_boards(BoardRows(bp, uv, np.zeros(len(uv), np.int64), vidx, 1, len(vlist)),
                       (model,), (theta0,), np.eye(4)[None], T0[vlist], settings)
    poses = T0.copy()
    poses[vlist] = sol.T_rig_board
    per_view = np.full(views.n_views, np.nan)
    per_view[vlist] = sol.per_view_rms[0]
    return dict(cov=sol.covariance[0], undetermined=list(sol.undetermined[0]),
                theta=sol.params[0], poses=poses,
                residuals=sol.residuals, uv=uv, view_index=view_of, per_view_rms=per_view,
                summary=sol.summary, n_free=sol.n_free, aspect=aspect, board=bp, solution=sol,
                products=sol.frame_products)


def _constant_coords(opts: FitOptions, model: LensModel) -> list[int]:
    """Camera coordinates (indices into ``model.param_names``) the options hold constant;
    fx (0) when it is tied to fy. Names the model does not have are an InputError."""
    names = model.param_names
    held = list(opts.fix)
    if opts.fix_k3:
        held.append("k3")
    if opts.zero_tangent:
        held += ["p1", "p2"]
    missing = [n for n in held if n not in names]
    if missing:
        raise InputError(f"options: the {model.name} model has no parameter(s) "
                         f"{', '.join(missing)} to hold fixed (it has {', '.join(names)})")
    const = [0] if opts.fix_aspect else []
    if opts.fix_principal_point:
        const += [2, 3]
    return sorted(set(const) | {names.index(n) for n in held})


def _fixed_names(opts: FitOptions, model: LensModel) -> tuple[str, ...]:
    """Parameters held fixed (a tied fx is estimated through fy: not fixed)."""
    return tuple(model.param_names[i] for i in _constant_coords(opts, model) if i != 0)


def _make_result(res, used, names, size, init_method, rejected_corners, rejected_views,
                 opts: FitOptions, first_pass_rms: np.ndarray, model: LensModel,
                 views: _Views) -> IntrinsicsResult:
    theta = res["theta"]
    r = res["residuals"]
    rms = rms_px(r)  # OpenCV's definition: per corner, not per axis
    cov = res["cov"]  # scaled by the residual variance (calib.intrinsics.problem)
    std = {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(model.param_names)}
    loose = [model.param_names[i] for i in res["undetermined"]]
    if loose:
        err = DegenerateError(UNDETERMINED)
        note = _wider_model(views, names, size, model, opts, rms)
        if note is not None:
            raise DegenerateError(f"{err}; {note}") from None
        if model.name == "pinhole":
            raise err from None
        std.update({k: float("nan") for k in loose})
    camera = Camera(theta, size, model.name)
    dist, cover = board_checks(model, theta, size, res["uv"])
    s = res["summary"]
    advice = _advice(res, model, size, opts, dist, views, used, names)
    trust = _trust(res, used, model, size, opts, advice) if opts.trust else None
    v, reasons = verdict(rms, res["per_view_rms"], used, std, theta, dist, cover,
                         s.termination == "converged", names, advice, trust)
    fixed = _fixed_names(opts, model)
    if s.termination != "converged" and model.name == "rational":
        ring = _cancelling_ring(res, theta)
        why = _why_not_converged(ring, theta)
        reasons = [why if r == "the solver did not converge" else r for r in reasons]
        if ring is not None:  # the drift moves every free radial term
            radial = [k for k in model.param_names if k[0] == "k" and k not in fixed]
            loose = [k for k in model.param_names if k in loose or k in radial]
            std.update({k: float("nan") for k in radial})
    if loose:  # a valley of equal cost: the projection is determined, these values are not
        v = "WARN" if v == "PASS" else v
        reasons.append(f"{', '.join(loose)} are not separately determined at this solution "
                       f"(the {model.name} model's cost is flat along a combination of them; "
                       "std reported as null): the projection is, the values are not")
    rejected_rms = {names[k]: float(first_pass_rms[k]) for k in rejected_views}
    return IntrinsicsResult(
        camera=camera, std=std, covariance=cov, rms_px=rms,
        per_view_rms_px=res["per_view_rms"], view_names=tuple(names), views_used=used.copy(),
        poses=res["poses"], residuals=r, points_px=res["uv"], view_index=res["view_index"],
        rejected_corners=rejected_corners,
        rejected_views=tuple(names[k] for k in rejected_views), distortion_check=dist,
        coverage=cover, verdict=v, reasons=tuple(reasons), init_method=init_method,
        solver_summary=s, options=opts, fixed=fixed,
        rejected_view_rms_px=rejected_rms, model_advice=advice, trust=trust)


def _cancelling_ring(res: dict, theta: np.ndarray) -> float | None:
    """The squared normalized radius of a pole-zero pair of a rational fit inside the
    corners (:func:`~calib.camera.rational.cancelling_pair`), or None."""
    T = res["poses"][res["view_index"]]
    p = np.einsum("rij,rj->ri", T[:, :3, :3], res["board"]) + T[:, :3, 3]
    return cancelling_pair(theta, float(np.max((p[:, 0] ** 2 + p[:, 1] ** 2) / p[:, 2] ** 2)))


def _why_not_converged(s2: float | None, theta: np.ndarray) -> str:
    """The reason for a rational fit that hit the iteration cap: a pole-zero pair inside the
    corners (``s2``, its squared radius from :func:`_cancelling_ring`) means the views leave
    the coefficients to a slow drift along it (on OpenCV's left-camera corners it never
    ends; OpenCV drifts the same way), so none of k1..k6 has a σ; otherwise the plain one."""
    if s2 is None:
        return "the solver did not converge"
    return (f"the solver did not converge: the rational model is not determined by these "
            f"views (its numerator and denominator nearly share a root at normalized radius "
            f"{np.sqrt(s2):.3f}, about {np.sqrt(s2) * theta[0]:.0f} px from the centre, inside "
            "the corners: a pole-zero pair that bends the distortion on a thin ring to chase "
            "noise, along which the cost keeps drifting down); use the pinhole model, or more "
            "and better-spread views")


def _solved(res: dict, used: np.ndarray, ids: np.ndarray) -> SolvedViews:
    """The solve dict ``res`` over the views ``used`` as :class:`SolvedViews` (``ids``: the
    board point id of each of its rows)."""
    return SolvedViews(res["theta"], res["poses"][used], res["board"],
                       (np.cumsum(used) - 1)[res["view_index"]], res["uv"], res["residuals"],
                       ids, res["n_free"])


def _trust(res: dict, used: np.ndarray, model: LensModel, size, opts: FitOptions,
           advice: ModelAdvice) -> Trust:
    """Projection uncertainty and cross-validation of the fit ``res`` over the views
    ``used`` (:func:`calib.intrinsics.trust.assess`)."""
    ids = _point_ids(res["board"])
    free = np.setdiff1d(np.arange(model.num_params), _constant_coords(opts, model))
    return assess(model, _solved(res, used, ids), free, res["aspect"], size,
                  bool(advice is not None and advice.radial.significant), int(ids.max()) + 1,
                  res["products"])


def _point_ids(board: np.ndarray) -> np.ndarray:
    """``(R,)`` id of each row's board point ``board (R, 3)`` (rows at the same point, to
    1e-9 m, share an id; ids in sorted point order). Board points lie on z = 0 (checked on
    input). When the rows repeat one board's points view after view (the full-board case),
    only the first view's are sorted."""
    b = np.ascontiguousarray(board)
    again = np.flatnonzero(b[1:, 0] == b[0, 0]) + 1  # rows where point 0 may recur
    again = again[(b[again, 1] == b[0, 1]) & (b[again, 2] == b[0, 2])]
    n = int(again[0]) if len(again) else len(b)
    if len(b) % n == 0 and (b.reshape(-1, n, 3) == b[:n]).all():
        b = b[:n]
    _, ids = np.unique(np.round(b[:, 0] + 1j * b[:, 1], 9), return_inverse=True)
    return np.tile(ids, len(board) // len(b)) if len(b) < len(board) else ids


def _quick_fit(views: _Views, names: list[str], size: tuple[int, int], model: LensModel,
               opts: FitOptions) -> dict | None:
    """A plain fit of ``model`` (no fixed parameters, no rejection, no advice) for the model
    comparison: its solve dict plus ``ok`` (distortion check passed), or None on failure."""
    sub = replace(opts, model=model.name, fix=(), fix_k3=False, zero_tangent=False,
                  reject_outliers=False, advise=False, trust=False)
    try:
        with np.errstate(all="ignore"):  # a model that does not fit at all: NaN on the way
            starts, _ = _start(views, names, size, model, sub)
        res = _best_refine(views, starts, model, sub)[0]
    except (DegenerateError, NotConvergedError, InputError):
        return None
    dist = check_distortion(res["theta"], size, model=model, corners_px=res["uv"])
    return dict(res, ok=dist.usable, model=model.name)


def _advice(res: dict, model: LensModel, size, opts: FitOptions, dist, views: _Views,
            used: np.ndarray, names: list[str]) -> ModelAdvice:
    """The radial-pattern test and, when it (or a bad RMS or distortion check) calls for it,
    the comparison with the next richer models."""
    pattern = radial_pattern(res["residuals"], res["uv"], res["theta"][2:4], res["n_free"])
    res = dict(res, dist_ok=dist.usable)
    rms = rms_px(res["residuals"])
    trigger = pattern.significant or rms > 1.0 or not dist.usable
    if not (opts.advise and trigger):
        return compare_models(model.name, res, pattern, [])
    sub = _Views(views.board, views.pixels, views.view, views.offsets)
    if not used.all():
        rows = used[views.view]
        counts = views.counts[used]
        sub = _Views(views.board[rows], views.pixels[rows],
                     np.repeat(np.arange(len(counts)), counts), np.r_[0, np.cumsum(counts)])
        names = [n for n, u in zip(names, used, strict=True) if u]
    fits = [_quick_fit(sub, names, size, get_model(m), opts) for m in RICHER.get(model.name, ())
            if m in model_names()]
    return compare_models(model.name, res, pattern, [f for f in fits if f is not None])


def _wider_model(views: _Views, names: list[str], size, model: LensModel, opts: FitOptions,
                 rms: float | None = None) -> str | None:
    """A sentence naming a wide model that fits the same corners well (below 2 px RMS and,
    if this model's fit got as far as an ``rms``, below half of it), or None."""
    if not opts.advise or model.name in WIDE_MODELS:
        return None
    for name in RICHER.get(model.name, ()):
        if name not in WIDE_MODELS or name not in model_names():
            continue
        alt = _quick_fit(views, names, size, get_model(name), opts)
        if alt is None or not alt["ok"]:
            continue
        r = alt["residuals"]
        alt_rms = rms_px(r)
        if alt_rms < 2.0 and (rms is None or alt_rms < 0.5 * rms):
            vs = "" if rms is None else f" (vs {rms:.2f} px)"
            return (f"the {name} model fits these corners at {alt_rms:.2f} px RMS{vs}: the "
                    f"{model.name} model is wrong for this lens (use model {name!r})")
    return None


def _wrong_model_error(exc: Exception, views: _Views, names: list[str], size, model: LensModel,
                       opts: FitOptions, rms: float | None = None) -> Exception:
    """``exc`` with :func:`_wider_model`'s sentence when there is one (a fisheye lens given
    to the pinhole model fails to start, converge or determine its parameters)."""
    note = _wider_model(views, names, size, model, opts, rms)
    return exc if note is None else type(exc)(f"{exc}; {note}")
