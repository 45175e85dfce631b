"""Calibrate a rig of 1..N cameras in one joint least-squares problem on the LM engine.

Unknowns (``calib/solver`` groups): ``intrinsics/<model>`` ``(C_m, P_m)`` Euclidean, one
group per lens model present; ``T_cam_rig`` ``(C, 4, 4)`` SE3 with camera 0 held constant
at the identity (camera 0's frame is the rig frame, so ``T_cam_rig`` is ``T_cam_ref``);
``T_rig_board`` ``(F, 4, 4)`` SE3, one per frame, shared by every camera that sees the
board in it, eliminated by the Schur complement (time linear in frames). Residuals:
:class:`calib.residuals.rig_reprojection.RigReprojection`, one family per model, and the
reference camera's rows in fit_intrinsics's own family (:func:`build_problem`). The start
is :mod:`calib.rig.initialize`, first with each camera's closed-form start (the joint
refinement then does the single-camera fits' work in one problem), else with refined
single-camera fits (:func:`_start_and_refine`); σ is the engine's covariance scaled by the
residual variance ``sum|e|^2 / (2N - p)``, as in :mod:`calib.intrinsics.fit`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..errors import InputError, NotConvergedError
from ..intrinsics.initialize import WIDE_MODELS
from ..io.validate import as_array
from ..residuals.reprojection import BoardReprojection
from ..residuals.rig_reprojection import RigReprojection
from ..solver import Euclidean, Problem, SE3Manifold, SolverOptions, make_loss, solve
from ..targets.base import Observation
from .initialize import initialize
from .observations import RigObservations, collect
from .options import RigOptions, held_names
from .result import RigResult, make_result


@dataclass(frozen=True, eq=False)
class _Layout:
    """Which group and block holds each camera's intrinsics, and each model's rows."""

    models: tuple[str, ...]  # per camera
    group: tuple[str, ...]  # per camera: "intrinsics/<model>"
    block: np.ndarray  # (C,) block of the camera in its group
    groups: dict  # group name -> camera indices


def _layout(models: tuple[str, ...]) -> _Layout:
    groups: dict[str, list[int]] = {}
    for c, m in enumerate(models):
        groups.setdefault(f"intrinsics/{m}", []).append(c)
    block = np.zeros(len(models), np.int64)
    for cams in groups.values():
        block[cams] = np.arange(len(cams))
    return _Layout(models, tuple(f"intrinsics/{m}" for m in models), block, groups)


def _models(obs: RigObservations, opts: RigOptions) -> tuple[str, ...]:
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
    models = tuple(get_model(opts.models.get(n, "pinhole")).name for n in obs.cameras)
    plain = {n for m in models for n in get_model(m).param_names}
    bad = sorted(set(opts.fix) - plain - {f"{m}:{n}" for m in models
                                          for n in get_model(m).param_names})
    if bad:
        raise InputError(f"fix: no camera's model has {', '.join(bad)} (models "
                         f"{', '.join(sorted(set(models)))}; parameters "
                         f"{', '.join(sorted(plain))})")
    return models


def build_problem(obs: RigObservations, board: np.ndarray, lay: _Layout, params,
                  T_cam_rig: np.ndarray, T_rig_board: np.ndarray, opts: RigOptions):
    """``(Problem, [(family, rows, slots)])`` of the joint refinement: per lens model, the
    reference camera's rows in :class:`~calib.residuals.reprojection.BoardReprojection`
    (the family of :func:`calib.intrinsics.fit_intrinsics`: ``T_cam_rig[0]`` is the
    identity, so a rig of one is the single-camera problem) and the other cameras' rows in
    :class:`~calib.residuals.rig_reprojection.RigReprojection`."""
    p = Problem()
    for g, cams in lay.groups.items():
        model = get_model(lay.models[cams[0]])
        p.add_parameter(g, np.stack([params[c] for c in cams]), Euclidean(model.num_params))
        names = held_names(opts.fix, model)
        held = [i for i, n in enumerate(model.param_names) if n in names]
        if opts.fix_intrinsics:
            p.set_constant(g)
        elif held:
            p.set_constant(g, coords=held)
    p.add_parameter("T_cam_rig", T_cam_rig, SE3Manifold())
    p.set_constant("T_cam_rig", blocks=[0])
    p.add_parameter("T_rig_board", T_rig_board, SE3Manifold(), eliminate=True)
    loss = make_loss(opts.loss, opts.loss_scale) if opts.loss not in (None, "none") else None
    fams = []
    for g, cams in lay.groups.items():
        model = get_model(lay.models[cams[0]])
        for ref in (True, False):  # the reference camera's rows need no T_cam_rig slot
            rows = np.flatnonzero(np.isin(obs.cam, cams) & ((obs.cam == 0) == ref))
            if not len(rows):
                continue
            cam, frame = obs.cam[rows], obs.frame[rows]
            if ref:  # T_cam_rig[0] is the identity: the single-camera family
                fam = BoardReprojection(board[obs.ids[rows]], obs.uv[rows], None, model)
                slots = [(g, lay.block[cam]), ("T_rig_board", frame)]
            else:
                fam = RigReprojection(model, board[obs.ids[rows]], obs.uv[rows])
                slots = [(g, lay.block[cam]), ("T_cam_rig", cam), ("T_rig_board", frame)]
            p.add_residuals(fam, slots, loss=loss)
            fams.append((fam, rows, slots))
    return p, fams


def refine(obs: RigObservations, board: np.ndarray, lay: _Layout, start, opts: RigOptions):
    """Solve; ``(solver result, residuals (R, 2) in obs row order)``."""
    p, fams = build_problem(obs, board, lay, start.params, start.T_cam_rig, start.T_rig_board,
                            opts)
    cov = ("T_cam_rig",) + (() if opts.fix_intrinsics else tuple(lay.groups))
    # function_tolerance as in calib.intrinsics.fit: 5e-7 relative on the RMS
    res = solve(p, SolverOptions(max_iterations=opts.max_iterations, covariance=cov,
                                 function_tolerance=1e-6, parameter_tolerance=1e-10,
                                 initial_damping=opts.initial_damping))
    if res.summary.termination == "failure":
        raise NotConvergedError(f"rig solve failed: {res.summary.message}")
    r = np.empty((len(obs.cam), 2))
    for fam, rows, slots in fams:
        vals = [res.values[g] for g, _ in slots]
        r[rows] = fam.evaluate(vals, [i for _, i in slots], jacobians=False)[0]
    return res, r


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
    lay = _layout(_models(obs, opts))
    start, res, r = _start_and_refine(obs, board, lay, opts)
    return make_result(obs, lay, start, res, r, opts, board)


#: The joint refinement from closed-form starts is accepted when it converges below this
#: RMS (pixels); otherwise the rig starts again from refined single-camera fits.
FAST_START_MAX_RMS = 1.0


def _start_and_refine(obs: RigObservations, board: np.ndarray, lay: _Layout,
                      opts: RigOptions):
    """``(start, solver result, residuals)``. First from each camera's closed-form start
    (Zhang's homographies: no per-camera LM, the joint refinement does that work in one
    problem); when that fails, stops short or ends above :data:`FAST_START_MAX_RMS`, and
    always for wide lenses (several focal-search starts) and robust losses (which need a
    least-squares start), from the single-camera fits, as the module docstring says."""
    fast = opts.loss in (None, "none") and not set(lay.models) & set(WIDE_MODELS)
    if fast:
        start = initialize(obs, board, lay.models, opts.intrinsics, opts.fix, refine=False)
        try:
            res, r = refine(obs, board, lay, start, opts)
        except NotConvergedError:
            res = None
        if res is not None and res.summary.termination == "converged" and \
                np.sqrt(np.mean(np.sum(r * r, axis=1))) <= FAST_START_MAX_RMS:
            return start, res, r
    start = initialize(obs, board, lay.models, opts.intrinsics, opts.fix)
    res, r = refine(obs, board, lay, start, opts)
    return start, res, r
