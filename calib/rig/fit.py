"""Calibrate a rig of 1..N cameras in one joint least-squares problem on the LM engine.

The problem, its solve and σ are the board-camera core shared with
:func:`calib.intrinsics.fit_intrinsics` (:mod:`calib.intrinsics.problem`: one pipeline for
1..N cameras): per lens model a group of intrinsics, ``T_cam_rig`` ``(C, 4, 4)`` with camera
0 held at the identity (camera 0's frame is the rig frame, so ``T_cam_rig`` is
``T_cam_ref``), one board pose ``T_rig_board`` per frame shared by every camera that sees
the board in it and eliminated by the Schur complement, σ scaled by the residual variance.
This module adds what a rig needs around that core: the start (:mod:`calib.rig.initialize`,
first with each camera's closed-form start, so the joint refinement does the single-camera
fits' work in one problem, else with refined single-camera fits: :func:`_start_and_refine`)
and, for a rig of one, fit_intrinsics's own start and solve (:func:`_one_camera`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ..camera.base import LensModel, get_model
from ..errors import CalibError, InputError, NotConvergedError
from ..intrinsics import FitOptions
from ..intrinsics.fit import camera_solution
from ..intrinsics.initialize import WIDE_MODELS
from ..intrinsics.problem import BoardRows, BoardSettings, BoardSolve, rms_px, solve_boards
from ..io.validate import as_array
from ..lie import se3
from ..targets.base import Observation
from .initialize import RigStart, camera_views, initialize
from .observations import RigObservations, collect
from .options import RigOptions, held_names
from .result import RigResult, make_result


def _models(obs: RigObservations, opts: RigOptions) -> tuple[LensModel, ...]:
    unknown = sorted(set(opts.models) - set(obs.cameras))
    if unknown:
        raise InputError(f"models: no camera named {', '.join(map(repr, unknown))} (cameras: "
                         f"{', '.join(obs.cameras)})")
    unknown = sorted(set(opts.intrinsics) - set(obs.cameras))
    if unknown:
        raise InputError(f"intrinsics: no camera named {', '.join(map(repr, unknown))}")
    if opts.fix_intrinsics:
        missing = [n for n in obs.cameras if n not in opts.intrinsics]
        if missing:
            raise InputError(f"fix_intrinsics needs the intrinsics of {', '.join(missing)}")
    models = tuple(get_model(opts.models.get(n, "pinhole")) for n in obs.cameras)
    plain = {n for m in models for n in m.param_names}
    bad = sorted(set(opts.fix) - plain - {f"{m.name}:{n}" for m in models
                                          for n in m.param_names})
    if bad:
        raise InputError(f"fix: no camera's model has {', '.join(bad)} (models "
                         f"{', '.join(sorted({m.name for m in models}))}; parameters "
                         f"{', '.join(sorted(plain))})")
    return models


def refine(obs: RigObservations, board: np.ndarray, models: tuple[LensModel, ...], start,
           opts: RigOptions) -> BoardSolve:
    """The joint refinement from ``start``: the board-camera core of every camera count
    (:func:`calib.intrinsics.problem.solve_boards`, fit_intrinsics's own). Rows the start
    projects outside a lens model's valid region are left out of a first solve and
    brought back from its solution (a row still outside then fails the solve, named)."""
    rows = BoardRows(board[obs.ids], obs.uv, obs.cam, obs.frame, obs.n_cameras,
                     len(obs.frames))
    held = {m.name: tuple(i for i, n in enumerate(m.param_names)
                          if n in held_names(opts.fix, m)) for m in models}
    settings = BoardSettings(
        held=held, fixed_cameras=opts.fix_intrinsics, loss=opts.loss,
        loss_scale=opts.loss_scale, max_iterations=opts.max_iterations,
        initial_damping=opts.initial_damping, function_tolerance=opts.function_tolerance)
    params, T_cam_rig, T_rig_board = start.params, start.T_cam_rig, start.T_rig_board
    outside = _outside_model(rows, models, params, T_cam_rig, T_rig_board)
    if outside.any():  # the start puts corners where a lens model is not valid: first
        sub = BoardRows(rows.board[~outside], rows.uv[~outside], rows.cam[~outside],
                        rows.frame[~outside], rows.n_cameras, rows.n_frames)
        first = solve_boards(sub, models, params, T_cam_rig, T_rig_board, settings)
        params, T_cam_rig, T_rig_board = first.params, first.T_cam_rig, first.T_rig_board
    return solve_boards(rows, models, params, T_cam_rig, T_rig_board, settings)


def _outside_model(rows: BoardRows, models: tuple[LensModel, ...], params,
                   T_cam_rig: np.ndarray, T_rig_board: np.ndarray) -> np.ndarray:
    """``(R,)`` rows whose board point the given parameters project outside its camera's
    valid region (a wide-lens start's distortion is not monotonic out to every corner of
    the other views: the rows fit the start's own camera fit left out or never saw)."""
    p = se3.act(T_cam_rig[rows.cam], se3.act(T_rig_board[rows.frame], rows.board))
    out = np.zeros(len(p), bool)
    for c, m in enumerate(models):
        sel = rows.cam == c
        uv, ok = m.project(p[sel], params[c])[:2]
        out[sel] = ~(ok & np.all(np.isfinite(uv), axis=1))
    return out


def fit_rig(cameras: Mapping[str, Sequence[Observation] | Mapping],
            board_points: np.ndarray,
            image_sizes: Mapping[str, tuple[int, int]] | None = None,
            options: RigOptions | None = None) -> RigResult:
    """Calibrate a rig: every camera's intrinsics, its pose in the reference camera (the
    first one) and one board pose per frame, jointly.

    Args:
        cameras: per camera name (in order; the first is the reference), its views: a
            sequence of :class:`~calib.targets.base.Observation` (frames pair by the last
            number in ``view``), or a mapping ``frame number -> uv (P, 2)`` (every board
            point, in order) or ``frame number -> (ids (K,), uv (K, 2))``.
        board_points: ``(P, 3)`` board points (metres, z = 0); row ``i`` is id ``i``.
        image_sizes: ``(width, height)`` per camera (required for plain arrays).
        options: :class:`RigOptions`.

    Returns:
        A frozen :class:`RigResult`.

    Raises:
        InputError: shapes, sizes, unknown names, too few views for a camera.
        DegenerateError: a camera not connected to the reference through shared frames,
            views that do not determine a camera.
        NotConvergedError: the solver failed.
    """
    opts = options if options is not None else RigOptions()
    board = as_array("board_points", board_points, (-1, 3))
    obs = collect(cameras, len(board), image_sizes)
    models = _models(obs, opts)
    start, sol = _start_and_refine(obs, board, models, opts)
    return make_result(obs, models, start, sol, opts, board)


#: The joint refinement from closed-form starts is accepted when it converges below this
#: RMS (pixels); otherwise the rig starts again from refined single-camera fits.
FAST_START_MAX_RMS = 1.0


def _start_and_refine(obs: RigObservations, board: np.ndarray, models: tuple[LensModel, ...],
                      opts: RigOptions) -> tuple[RigStart, BoardSolve]:
    """``(start, solution)``. First from each camera's closed-form start (Zhang's
    homographies: no per-camera LM, the joint refinement does that work in one problem);
    when that fails, stops short or ends above :data:`FAST_START_MAX_RMS`, and always for
    wide lenses (several focal-search starts) and robust losses (which need a least-squares
    start), from the single-camera fits, as the module docstring says."""
    if obs.n_cameras == 1 and not opts.intrinsics:
        return _one_camera(obs, board, models[0], opts)
    names = tuple(m.name for m in models)
    fast = opts.loss in (None, "none") and not set(names) & set(WIDE_MODELS)
    if fast:
        start = initialize(obs, board, names, opts.intrinsics, opts.fix, refine=False)
        try:
            sol = refine(obs, board, models, start, opts)
        except NotConvergedError:
            sol = None
        if sol is not None and sol.summary.termination == "converged" and \
                rms_px(sol.residuals) <= FAST_START_MAX_RMS:
            return start, sol
    start = initialize(obs, board, names, opts.intrinsics, opts.fix)
    return start, refine(obs, board, models, start, opts)


def _one_camera(obs: RigObservations, board: np.ndarray, model: LensModel,
                opts: RigOptions) -> tuple[RigStart, BoardSolve]:
    """The rig of one: there is nothing joint to refine, so its start and solve are
    fit_intrinsics's (:func:`calib.intrinsics.fit.camera_solution`: the same start, the
    wide-lens multi-start and the board-camera core), rows back in ``obs`` order."""
    frames, obj, pix, names = camera_views(obs, 0, board)
    fit = FitOptions(model=model.name, fix=held_names(opts.fix, model), loss=opts.loss,
                     loss_scale=opts.loss_scale, max_iterations=opts.max_iterations,
                     initial_damping=opts.initial_damping,
                     function_tolerance=opts.function_tolerance, advise=False, trust=False)
    try:
        sol = camera_solution(obj, pix, obs.image_sizes[0], fit, view_names=names)
    except CalibError as exc:
        raise type(exc)(f"camera {obs.cameras[0]!r}: {exc}") from None
    r = np.empty_like(sol.residuals)
    r[np.argsort(obs.frame, kind="stable")] = sol.residuals  # camera_views' row order
    start = RigStart(sol.params, sol.T_cam_rig, sol.T_rig_board, ())
    return start, replace(sol, residuals=r)
