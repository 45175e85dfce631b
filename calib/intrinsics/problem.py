"""The board-camera least-squares problem of 1..C cameras, its solve and its σ: the one core
of :func:`calib.intrinsics.fit_intrinsics` (a single camera is the rig of one, C = 1) and
:func:`calib.rig.fit_rig`.

Unknowns (``calib/solver`` groups): ``intrinsics/<model>`` ``(C_m, P_m)`` Euclidean, one
group per lens model present (the model's ``param_names``: ``fx, fy, cx, cy`` then its
distortion); ``T_cam_rig`` ``(C, 4, 4)`` SE3 with camera 0 held at the identity (camera 0's
frame is the rig frame; the group exists only for C > 1); ``T_rig_board`` ``(F, 4, 4)``
SE3, one per frame, shared by every camera that sees the board in it and eliminated by the
Schur complement, so a solve costs time linear in the frames. Residuals (pixels): camera
0's rows in :class:`~calib.residuals.reprojection.BoardReprojection` (``T_cam_rig[0]`` is
the identity), the other cameras' in
:class:`~calib.residuals.rig_reprojection.RigReprojection`, one family per lens model.

Held coordinates (:class:`BoardSettings`) are constant; held distortion terms start at the
model's neutral value (0, or ``xi``/``alpha``'s neutral value). σ: the joint information of
the intrinsics and ``T_cam_rig`` (the Schur complement over the board poses), inverted with
Jacobi scaling (:func:`covariance_from_information`, which also names the coordinates it
cannot determine), times the residual variance ``sum|e|^2 / (2N - p)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..camera.base import LensModel
from ..errors import NotConvergedError
from ..residuals.reprojection import BoardReprojection
from ..residuals.rig_reprojection import RigReprojection
from ..solver import Euclidean, Problem, SE3Manifold, SolverOptions, make_loss, solve
from ..solver.summary import SolverResult, Summary
from .settle import SETTLED_MODELS, solve_settled

#: Smallest eigenvalue, relative to the largest, of the scaled marginal information matrix
#: (unit diagonal) below which a direction counts as undetermined. The scaling makes the
#: test independent of units (fx in pixels, k6 per radius^12, metres of a baseline): the
#: rational model's numerator and denominator terms are strongly correlated and its
#: unscaled matrix reaches 1e-16 on well-posed sets.
RANK_TOL = 1e-12


@dataclass(frozen=True, eq=False)
class BoardRows:
    """Board corners seen by ``n_cameras`` cameras in ``n_frames`` frames, as flat rows:
    ``board (R, 3)`` board points (metres, z = 0), ``uv (R, 2)`` observed pixels, ``cam``
    and ``frame`` ``(R,)`` the camera (0 is the reference) and frame of each row."""

    board: np.ndarray
    uv: np.ndarray
    cam: np.ndarray
    frame: np.ndarray
    n_cameras: int
    n_frames: int


@dataclass(frozen=True)
class BoardSettings:
    """How to solve.

    Attributes:
        held: lens model name -> coordinates (indices into its ``param_names``) held
            constant in every camera of that model.
        fixed_cameras: hold every camera's intrinsics at its start (CALIB_FIX_INTRINSIC).
        aspect: tie ``fx = aspect * fy`` (one camera only; hold coordinate 0 too).
        loss, loss_scale: robust loss on each corner's pixel error (scale in pixels).
        max_iterations, initial_damping: LM settings (damping relative to ``diag(J^T J)``).
        function_tolerance: stop when a step lowers the cost by less than this fraction;
            None: :func:`default_function_tolerance` of the models. A problem with a
            rational camera also waits until the decrease still to come is a tenth of it
            (:mod:`calib.intrinsics.settle`).
    """

    held: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    fixed_cameras: bool = False
    aspect: float | None = None
    loss: str | None = None
    loss_scale: float = 1.0
    max_iterations: int = 100
    initial_damping: float = 1e-6
    function_tolerance: float | None = None


@dataclass(frozen=True, eq=False)
class BoardSolve:
    """The solution.

    Attributes:
        params: per camera its effective parameters ``(P_c,)`` (``fx = aspect * fy`` when
            tied); T_cam_rig ``(C, 4, 4)``; T_rig_board ``(F, 4, 4)``.
        residuals: ``(R, 2)`` pixels, in row order; per_view_rms ``(C, F)`` RMS of each
            camera's rows in each frame (NaN where it does not see the board).
        covariance: per camera ``(P_c, P_c)``, scaled by ``sigma2``; held coordinates 0.
        extrinsic_covariance: ``(6C, 6C)`` of the ``T_cam_rig`` twists (left perturbation
            ``(rho, phi)``), scaled; camera 0's block 0.
        undetermined: per camera the parameter coordinates the views leave undetermined;
            full_rank: no undetermined direction in the whole reduced problem.
        sigma2: residual variance ``sum|e|^2 / max(2N - p, 1)``; n_free: ``p``, every free
            coordinate (board poses included).
        frame_products: ``(F, w, w)`` per frame ``[J | r]^T [J | r]`` at the solution over
            the columns ``[params (P), T_rig_board twist (6), residual]`` (unweighted), when
            the engine's stacked path gave them (one camera, no robust loss, rows in frame
            order: :mod:`calib.solver.stacked`), else None.
    """

    params: tuple[np.ndarray, ...]
    T_cam_rig: np.ndarray
    T_rig_board: np.ndarray
    residuals: np.ndarray
    per_view_rms: np.ndarray
    covariance: tuple[np.ndarray, ...]
    extrinsic_covariance: np.ndarray
    undetermined: tuple[tuple[int, ...], ...]
    full_rank: bool
    sigma2: float
    summary: Summary
    n_free: int
    frame_products: np.ndarray | None = None


def default_function_tolerance(models: Sequence[LensModel]) -> float:
    """1e-6 when every model is pinhole or fisheye (5e-7 relative on the RMS), else 1e-8:
    the rational and double-sphere models' long curved valleys (numerator against
    denominator, fx against xi) make early steps that small far from the minimum
    (:class:`calib.intrinsics.FitOptions` gives the measurements)."""
    return 1e-6 if all(m.name in ("pinhole", "fisheye") for m in models) else 1e-8


def _groups(models: Sequence[LensModel]) -> tuple[dict[str, list[int]], np.ndarray]:
    """``({"intrinsics/<model>": cameras}, block (C,) of each camera in its group)``."""
    groups: dict[str, list[int]] = {}
    for c, m in enumerate(models):
        groups.setdefault(f"intrinsics/{m.name}", []).append(c)
    block = np.zeros(len(models), np.int64)
    for cams in groups.values():
        block[cams] = np.arange(len(cams))
    return groups, block


def _start_params(model: LensModel, p: np.ndarray, held: Sequence[int]) -> np.ndarray:
    """``p`` with its held distortion terms at the model's neutral value."""
    out = np.array(p, dtype=float)
    idx = [i for i in held if i >= 4]
    out[idx] = model.initial_params(np.eye(3))[idx]
    return out


def build_problem(rows: BoardRows, models: Sequence[LensModel], params: Sequence[np.ndarray],
                  T_cam_rig: np.ndarray, T_rig_board: np.ndarray, st: BoardSettings):
    """``(Problem, [(family, row indices, slots)], groups, block)`` (module docstring)."""
    groups, block = _groups(models)
    p = Problem()
    for g, cams in groups.items():
        model = models[cams[0]]
        held = list(st.held.get(model.name, ()))
        p.add_parameter(g, np.stack([params[c] if st.fixed_cameras else
                                     _start_params(model, params[c], held) for c in cams]),
                        Euclidean(model.num_params))
        if st.fixed_cameras:
            p.set_constant(g)
        elif held:
            p.set_constant(g, coords=held)
    if rows.n_cameras > 1:
        p.add_parameter("T_cam_rig", T_cam_rig, SE3Manifold())
        p.set_constant("T_cam_rig", blocks=[0])
    p.add_parameter("T_rig_board", T_rig_board, SE3Manifold(), eliminate=True)
    loss = make_loss(st.loss, st.loss_scale) if st.loss not in (None, "none") else None
    fams = []
    for g, cams in groups.items():
        for ref in (True, False):  # the reference camera's rows need no T_cam_rig slot
            sel = _rows_of(rows, cams, ref)
            if sel is not None and not len(sel):
                continue
            fam, slots = _family(rows, sel, models[cams[0]], g, block, ref, st.aspect)
            p.add_residuals(fam, slots, loss=loss)
            fams.append((fam, sel, slots))
    return p, fams, groups, block


def _rows_of(rows: BoardRows, cams: list[int], ref: bool) -> np.ndarray | None:
    """Rows of the cameras ``cams`` that are (``ref``) or are not camera 0; None: all."""
    if rows.n_cameras == 1:
        return None if ref else np.zeros(0, np.int64)
    return np.flatnonzero(np.isin(rows.cam, cams) & ((rows.cam == 0) == ref))


def _family(rows: BoardRows, sel, model: LensModel, g: str, block: np.ndarray, ref: bool,
            aspect: float | None):
    """``(family, slots)`` of the rows ``sel`` (None: every row)."""
    pick = (lambda a: a) if sel is None else (lambda a: a[sel])
    cam, frame = pick(rows.cam), pick(rows.frame)
    if ref:  # T_cam_rig[0] is the identity: the single-camera family
        fam = BoardReprojection(pick(rows.board), pick(rows.uv), aspect, model)
        return fam, [(g, block[cam]), ("T_rig_board", frame)]
    fam = RigReprojection(model, pick(rows.board), pick(rows.uv))
    return fam, [(g, block[cam]), ("T_cam_rig", cam), ("T_rig_board", frame)]


def solve_boards(rows: BoardRows, models: Sequence[LensModel], params: Sequence[np.ndarray],
                 T_cam_rig: np.ndarray, T_rig_board: np.ndarray,
                 settings: BoardSettings) -> BoardSolve:
    """Refine every camera's intrinsics, ``T_cam_rig`` and the board poses from a start
    (``params`` per camera, ``T_cam_rig (C, 4, 4)`` with the identity first,
    ``T_rig_board (F, 4, 4)``); σ scaled by the residual variance.

    Raises:
        NotConvergedError: the solver failed (non-finite values).
    """
    if settings.aspect is not None and rows.n_cameras != 1:
        raise ValueError("a tied aspect ratio needs a single camera")
    p, fams, groups, block = build_problem(rows, models, params, T_cam_rig, T_rig_board,
                                           settings)
    joint = tuple(groups) + (("T_cam_rig",) if rows.n_cameras > 1 else ())
    ftol = settings.function_tolerance
    if ftol is None:
        ftol = default_function_tolerance(models)
    run = solve_settled if any(m.name in SETTLED_MODELS for m in models) else solve
    # closed-form starts: the first step was accepted in every fit measured (pinhole,
    # rational, fisheye, double-sphere; 13 real to 500 synthetic views), so its point is
    # linearized at once (the steps are the same either way)
    res = run(p, SolverOptions(max_iterations=settings.max_iterations, information=(joint,),
                               function_tolerance=ftol, parameter_tolerance=1e-10,
                               initial_damping=settings.initial_damping,
                               products=("T_rig_board",), trust_first_step=True))
    if res.summary.termination == "failure":
        names = sorted({m.name for m in models})
        what = (f"intrinsics solve ({names[0]} model)" if rows.n_cameras == 1 else
                f"rig solve ({', '.join(names)})")
        raise NotConvergedError(f"{what} failed: {res.summary.message}")
    return _solution(rows, models, res, fams, groups, block, joint, settings)


def _solution(rows: BoardRows, models, res: SolverResult, fams, groups, block, joint,
              st: BoardSettings) -> BoardSolve:
    r = np.empty((len(rows.uv), 2))
    for k, (fam, sel, slots) in enumerate(fams):  # one residual block per family, in order
        out = res.residuals.get(k)  # from the solve's last linearization, when it kept them
        if out is None:
            out = fam.evaluate([res.values[g] for g, _ in slots], [i for _, i in slots],
                               jacobians=False)[0]
        if sel is None:
            r = out
        else:
            r[sel] = out
    n_free = res.summary.num_parameters
    sigma2 = float(np.sum(r * r) / max(2 * len(r) - n_free, 1))
    const = _held_coords(models, groups, st, rows.n_cameras)
    cov, loose, full = covariance_from_information(res.information[joint], const)
    params, covs, undetermined = [], [], []
    start = 0
    for g, cams in groups.items():
        P = models[cams[0]].num_params
        fam = next(f for f, _, slots in fams if slots[0][0] == g)
        theta = fam.theta(res.values[g]) if isinstance(fam, BoardReprojection) else \
            res.values[g]
        for b, c in enumerate(cams):
            lo = start + b * P
            params.append((c, theta[b]))
            covs.append((c, _camera_covariance(cov[lo:lo + P, lo:lo + P] * sigma2, st)))
            undetermined.append((c, tuple(i - lo for i in loose if lo <= i < lo + P)))
        start += len(cams) * P
    T = res.values["T_cam_rig"] if rows.n_cameras > 1 else np.eye(4)[None]
    return BoardSolve(
        tuple(v for _, v in sorted(params, key=lambda x: x[0])), T, res.values["T_rig_board"],
        r, per_view_rms(rows, r), tuple(v for _, v in sorted(covs, key=lambda x: x[0])),
        cov[start:, start:] * sigma2 if rows.n_cameras > 1 else np.zeros((6, 6)),
        tuple(v for _, v in sorted(undetermined, key=lambda x: x[0])), full, sigma2,
        res.summary, n_free, res.products.get("T_rig_board"))


def _camera_covariance(cov: np.ndarray, st: BoardSettings) -> np.ndarray:
    """A camera's scaled covariance with a tied ``fx = aspect * fy`` carried into fx."""
    if st.aspect is not None:
        cov[0, :] = st.aspect * cov[1, :]
        cov[:, 0] = st.aspect * cov[:, 1]
    return cov


def _held_coords(models, groups, st: BoardSettings, n_cameras: int) -> list[int]:
    """Coordinates of the joint information (intrinsics groups, then ``T_cam_rig``) that
    are held constant."""
    const, start = [], 0
    for cams in groups.values():
        model = models[cams[0]]
        P = model.num_params
        held = range(P) if st.fixed_cameras else st.held.get(model.name, ())
        const += [start + b * P + i for b in range(len(cams)) for i in held]
        start += len(cams) * P
    return const + list(range(start, start + 6)) if n_cameras > 1 else const


def per_view_rms(rows: BoardRows, r: np.ndarray) -> np.ndarray:
    """``(C, F)`` RMS of each camera's residuals ``r (R, 2)`` in each frame (NaN where the
    camera does not see the board)."""
    key = rows.cam * rows.n_frames + rows.frame if rows.n_cameras > 1 else rows.frame
    n = rows.n_cameras * rows.n_frames
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(np.bincount(key, np.sum(r * r, axis=1), n) / np.bincount(key, None, n))
    return out.reshape(rows.n_cameras, rows.n_frames)


def covariance_from_information(info: np.ndarray, const: Sequence[int]
                                ) -> tuple[np.ndarray, list[int], bool]:
    """``(covariance (n, n), undetermined coordinates, full rank)`` from an information
    matrix ``info (n, n)`` with the coordinates ``const`` held (rows and columns 0):
    ``D (D^-1 info D^-1)^+ D`` with ``D = sqrt(diag(info))`` (Jacobi scaling). A
    coordinate is undetermined when it has no effect (zero column) or takes part (scaled
    component above 0.1) in an eigenvector whose eigenvalue is below :data:`RANK_TOL` of the
    largest."""
    n = info.shape[0]
    free = np.setdiff1d(np.arange(n), const)
    sub = info[np.ix_(free, free)]
    d = np.sqrt(np.maximum(np.diag(sub), 0.0))
    cov = np.zeros((n, n))
    if free.size == 0:
        return cov, [], True
    if np.any(d <= 0):
        return cov, [int(i) for i in free[d <= 0]], False
    w, v = np.linalg.eigh(sub / d[:, None] / d[None, :])
    ok = w > RANK_TOL * max(w.max(), 1e-300)
    inv = (v * np.where(ok, 1.0 / np.where(ok, w, 1.0), 0.0)) @ v.T
    cov[np.ix_(free, free)] = inv / d[:, None] / d[None, :]
    null = np.abs(v[:, ~ok]).max(axis=1) > 0.1 if (~ok).any() else np.zeros(len(free), bool)
    return cov, [int(i) for i in free[null]], bool(ok.all())


def rms_px(r: np.ndarray) -> float:
    """``sqrt(sum|e|^2 / N)`` of residuals ``r (N, 2)``: per corner, not per axis (OpenCV's
    definition)."""
    return float(np.sqrt(np.sum(r * r) / len(r)))
