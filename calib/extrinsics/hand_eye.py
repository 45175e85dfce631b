"""Hand-eye calibration: a closed-form start, then one joint refinement on the engine.

Unknowns: ``X`` (``T_gripper_camera`` eye-in-hand, ``T_base_camera`` eye-to-hand) and ``Y``
(``T_base_target`` / ``T_gripper_target``), plus every robot pose ``B_i = T_base_gripper``
as a parameter tied to its measurement by a prior (:class:`calib.residuals.pose_prior.
PosePrior`: isotropic position noise ``robot_sigma_mm`` and rotation noise
``robot_sigma_deg``). The data term is the reprojection error of the board corners
themselves (``T_cam_target = X^-1 B^s Y``, :class:`calib.residuals.chain_projection.
ChainReprojection`) weighted by the corner noise estimated from per-view PnP; given only
target poses, it is the 3-D error of virtual board points at those poses. σ: the engine's
covariance of ``X`` scaled by the residual variance factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..errors import InputError
from ..lie import se3
from ..solver import Euclidean, Problem, SE3Manifold, SolverOptions, solve
from .closed_form import check_axes, check_scale, park_martin, relative_motions
from .pnp import views_poses
from .poses import check_rigid, duplicate_pairs
from .result import HandEyeResult
from .uncertainty import pose_std, solved_covariance

SETUPS = ("eye-in-hand", "eye-to-hand")
MIN_STATIONS = 3
#: Virtual board points (m, target frame) standing in for a given target pose.
VIRTUAL = np.array([[x, y, 0.0] for x in (-0.1, 0.0, 0.1) for y in (-0.1, 0.0, 0.1)])


@dataclass(frozen=True)
class HandEyeOptions:
    """Noise model and solver settings.

    ``robot_sigma_mm`` / ``robot_sigma_deg``: standard deviation of each robot pose's
    position (per axis, base frame) and rotation (per axis); ``refine_intrinsics`` frees the
    camera parameters; ``estimate_robot_noise`` re-estimates the robot σ (and the
    observation σ) from the residuals by variance component estimation (the stated values
    are the start); ``outlier_factor``: see :func:`_outliers`.
    """

    robot_sigma_mm: float = 0.2
    robot_sigma_deg: float = 0.02
    refine_intrinsics: bool = False
    estimate_robot_noise: bool = False
    outlier_factor: float = 3.0
    max_iterations: int = 100

    def __post_init__(self) -> None:
        for name in ("robot_sigma_mm", "robot_sigma_deg", "outlier_factor"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number, got {v}")


@dataclass(frozen=True)
class _Data:
    """Observations prepared for the solve: ``pts (N, 3)`` target points, ``obs (N, 2|3)``,
    ``station (N,)``, ``C (S, 4, 4)`` T_cam_target per station, ``sigma`` of ``obs``."""

    pts: np.ndarray
    obs: np.ndarray
    station: np.ndarray
    C: np.ndarray
    sigma: float


def _check_stations(robot_poses, names, n_views) -> np.ndarray:
    B = check_rigid(robot_poses, "robot poses")
    if len(B) < MIN_STATIONS:
        raise InputError(f"robot poses: {len(B)} station(s); hand-eye needs at least "
                         f"{MIN_STATIONS} (15 or more for a useful σ)")
    if n_views != len(B):
        raise InputError(f"{len(B)} robot poses but {n_views} camera views: one view per "
                         "station, in station order")
    dup = duplicate_pairs(B)
    if dup:
        i, j = dup[0]
        raise InputError(f"robot poses: stations {names[i]} and {names[j]} are identical "
                         f"({len(dup)} identical pair(s)); each station must be a new pose")
    return B


def _corner_data(model, params, board_points, image_points, names) -> _Data:
    pts = np.asarray(board_points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise InputError(f"board points: expected (P, 3), got shape {pts.shape}")
    try:
        views = [np.asarray(v, dtype=float).reshape(len(pts), 2) for v in image_points]
    except ValueError:
        raise InputError(f"image points: each station needs ({len(pts)}, 2) pixels, one row "
                         "per board point (NaN where not seen)") from None
    for v, name in zip(views, names, strict=True):
        k = int(np.isfinite(v).all(axis=1).sum())
        if k < 6:
            raise InputError(f"station {name}: {k} board point(s) seen; need at least 6 "
                             "(drop the station or its robot pose)")
    C, sigma, _ = views_poses(model, params, pts, views, names)
    keep = [np.isfinite(v).all(axis=1) for v in views]
    station = np.concatenate([np.full(k.sum(), i) for i, k in enumerate(keep)])
    return _Data(np.concatenate([pts[k] for k in keep]),
                 np.concatenate([v[k] for v, k in zip(views, keep, strict=True)]),
                 station, C, max(sigma, 1e-3))


def _pose_data(target_poses) -> _Data:
    C = check_rigid(target_poses, "target poses")
    S, P = len(C), len(VIRTUAL)
    obs = np.concatenate([se3.act(c, VIRTUAL) for c in C])
    return _Data(np.tile(VIRTUAL, (S, 1)), obs, np.repeat(np.arange(S), P), C, 1e-3)


def _problem(data, B, X0, Y0, sign, model, params, opts, sig) -> Problem:
    sigma, st, sr = sig
    pb = Problem()
    n = len(data.station)
    zeros = np.zeros(n, int)
    slots = [("X", zeros), ("Y", zeros), ("B", data.station)]
    if model is not None:
        pb.add_parameter("theta", np.asarray(params, float)[None], Euclidean(len(params)))
        if not opts.refine_intrinsics:
            pb.set_constant("theta")
        slots.insert(0, ("theta", zeros))
    pb.add_parameter("X", X0[None], SE3Manifold())
    pb.add_parameter("Y", Y0[None], SE3Manifold())
    pb.add_parameter("B", B.copy(), SE3Manifold(), eliminate=True)
    from ..residuals.chain_projection import ChainReprojection
    from ..residuals.pose_prior import PosePrior

    pb.add_residuals(ChainReprojection(model, data.pts, data.obs, sign, 1.0 / sigma), slots)
    pb.add_residuals(PosePrior(B, st, sr),
                     [("B", np.arange(len(B)))])
    return pb


def _station_rms(data, values, model, sign) -> np.ndarray:
    """Unweighted RMS residual per station at the solution (px, or m for 3-D data)."""
    from ..residuals.chain_projection import ChainReprojection

    fam = ChainReprojection(model, data.pts, data.obs, sign)
    vals = [values["X"], values["Y"], values["B"]]
    if model is not None:
        vals.insert(0, values["theta"])
    z = np.zeros(len(data.station), int)
    r, _ = fam.evaluate(vals, [z] * (len(vals) - 1) + [data.station], jacobians=False)
    sq = np.bincount(data.station, np.sum(r ** 2, axis=1), minlength=len(data.C))
    cnt = np.bincount(data.station, minlength=len(data.C))
    return np.sqrt(sq / np.maximum(cnt, 1))


def _outliers(rms, sigma, corr_mm, corr_deg, opts, names) -> tuple[str, ...]:
    """Stations that do not fit: a residual RMS above ``outlier_factor`` times the median
    (and 2 σ of the observations), or a robot pose the fit had to move more than 4 stated
    σ (and ``outlier_factor`` times the median move) in position or rotation."""
    f = opts.outlier_factor
    bad = (rms > f * np.median(rms)) & (rms > 2.0 * sigma)
    for corr, sig in ((corr_mm, opts.robot_sigma_mm), (corr_deg, opts.robot_sigma_deg)):
        bad |= (corr > 4.0 * sig) & (corr > f * np.median(corr))
    return tuple(names[i] for i in np.flatnonzero(bad))


def _components(res, data, B, sign, model, sig, nfree):
    """One step of variance component estimation (Förstner): each group's noise σ scaled by
    sqrt(sum of its squared whitened residuals / its redundancy), the redundancy of a
    residual row being 1 minus its share of the fit (``J Cov J^T`` diagonal, from the
    engine's marginal covariances of the robot poses). Returns the new ``(sigma_obs,
    sigma_t, sigma_r)``."""
    from ..residuals.pose_prior import PosePrior

    sigma, st, sr = sig
    S = len(B)
    covB = res.covariance.get("B")
    if covB is None or not np.isfinite(covB).all():
        return sig  # no marginals (a failed or rank-deficient solve): keep the noise model
    r, (j,) = PosePrior(B, st, sr).evaluate([res.values["B"]], [np.arange(S)])
    share = np.einsum("sij,sjk,sik->si", j, covB, j)
    red_t, red_r = 3 * S - share[:, :3].sum(), 3 * S - share[:, 3:].sum()
    rms = _station_rms(data, res.values, model, sign)
    cnt = np.bincount(data.station, minlength=S)
    red_o = data.obs.size + 6 * S - nfree - red_t - red_r
    out = []
    for s_, sq, red in ((sigma, np.sum(rms ** 2 * cnt) / sigma ** 2, red_o),
                        (st, np.sum(r[:, :3] ** 2), red_t), (sr, np.sum(r[:, 3:] ** 2), red_r)):
        out.append(s_ * np.sqrt(sq / red) if red > 0.5 else s_)
    return max(out[0], 1e-7), max(out[1], 1e-7), max(out[2], 1e-9)


def _refine(data, B, X0, Y0, sign, model, params, opts):
    """Solve; with 3-D data or ``estimate_robot_noise`` re-solve with the noise σ of the
    observations (and of the robot) estimated from the previous solve. Returns
    ``(result, sigma_obs, variance factor, robot sigma_t m, robot sigma_r rad)``."""
    sig = (data.sigma, opts.robot_sigma_mm * 1e-3, np.radians(opts.robot_sigma_deg))
    nfree = 12 + 6 * len(B) + (len(params) if model is not None and opts.refine_intrinsics
                               else 0)
    passes = 12 if opts.estimate_robot_noise else (1 if model is not None else 2)
    k = 0
    while True:
        pb = _problem(data, B, X0, Y0, sign, model, params, opts, sig)
        res = solve(pb, SolverOptions(max_iterations=opts.max_iterations,
                                      covariance=("X", "Y", "B")))
        k += 1
        if k >= passes:
            break
        X0, Y0 = res.values["X"][0], res.values["Y"][0]
        new = _components(res, data, B, sign, model, sig, nfree)
        new = new if opts.estimate_robot_noise else (new[0], sig[1], sig[2])
        if np.allclose(new, sig, rtol=0.01, atol=0):
            passes = k + 1  # the estimates settled (within 1 %): one last solve with them
        sig = new
    factor = 2.0 * res.summary.final_cost / max(data.obs.size + 6 * len(B) - nfree, 1)
    return res, sig[0], factor, sig[1], sig[2]


def calibrate_hand_eye(robot_poses: np.ndarray, setup: str, *,
                       board_points: np.ndarray | None = None,
                       image_points: list[np.ndarray] | np.ndarray | None = None,
                       params: np.ndarray | None = None, model: str = "pinhole",
                       target_poses: np.ndarray | None = None,
                       options: HandEyeOptions | None = None,
                       station_names: list[str] | None = None) -> HandEyeResult:
    """Hand-eye calibration from robot poses and board observations.

    Args:
        robot_poses: ``(S, 4, 4)`` measured ``T_base_gripper`` (metres).
        setup: ``"eye-in-hand"`` (camera on the gripper) or ``"eye-to-hand"`` (camera fixed,
            board on the gripper).
        board_points: ``(P, 3)`` target points (metres, target frame), with ``image_points``:
            ``S`` arrays ``(P, 2)`` of pixels (NaN rows: not seen) and the camera's ``params``
            ``(P_model,)`` for lens ``model``.
        target_poses: instead of corners, ``(S, 4, 4)`` measured ``T_camera_target``.
        options: noise model and solver settings (:class:`HandEyeOptions`).
        station_names: names used in messages and the report (default ``0..S-1``).

    Raises:
        InputError: bad or inconsistent input; DegenerateError: the stations' rotations
        share one axis (the translation along it is undetermined).
    """
    opts = options or HandEyeOptions()
    if setup not in SETUPS:
        raise InputError(f"setup {setup!r}: choose one of {', '.join(SETUPS)}")
    n_in = len(robot_poses) if hasattr(robot_poses, "__len__") else 0
    names = list(station_names) if station_names is not None else [str(i) for i in range(n_in)]
    if (target_poses is None) == (image_points is None):
        raise InputError("give either board corners (image points) or target poses")
    n_views = len(image_points) if image_points is not None else len(target_poses)
    B = _check_stations(robot_poses, names, n_views)
    lens = get_model(model) if image_points is not None else None
    if lens is not None:
        if params is None or board_points is None:
            raise InputError("corners need the camera parameters and the board points")
        params = np.asarray(params, dtype=float).ravel()
        data = _corner_data(lens, params, board_points, image_points, names)
    else:
        data = _pose_data(target_poses)
    sign = -1 if setup == "eye-in-hand" else 1
    M = B if sign < 0 else se3.inverse(B)
    x_name = "T_gripper_camera" if sign < 0 else "T_base_camera"
    A, Bc = relative_motions(M, data.C)
    check_axes(A, "gripper" if sign < 0 else "base", x_name)
    X0, Y0 = park_martin(M, data.C)
    check_scale(A, Bc, X0[:3, :3], "T_base_gripper")
    res, sigma, factor, st, sr = _refine(data, B, X0, Y0, sign, lens, params, opts)
    if opts.estimate_robot_noise:
        from dataclasses import replace

        opts = replace(opts, robot_sigma_mm=st * 1e3, robot_sigma_deg=float(np.degrees(sr)))
    return _result(setup, res, data, B, X0, sigma, factor, lens, sign, opts, names)


def _result(setup, res, data, B, X0, sigma, factor, lens, sign, opts, names) -> HandEyeResult:
    X, Y = res.values["X"][0], res.values["Y"][0]
    x_name = "T_gripper_camera" if sign < 0 else "T_base_camera"
    cov_X = solved_covariance(res, "X", x_name) * factor
    y_name = "T_base_target" if sign < 0 else "T_gripper_target"
    cov_Y = solved_covariance(res, "Y", y_name) * factor
    sx = pose_std(X, cov_X)
    rms = _station_rms(data, res.values, lens, sign)
    Bf = res.values["B"]
    corr_mm = np.linalg.norm(Bf[:, :3, 3] - B[:, :3, 3], axis=1) * 1e3
    from ..lie import so3

    corr_deg = np.degrees(np.linalg.norm(
        so3.log(Bf[:, :3, :3] @ np.swapaxes(B[:, :3, :3], 1, 2)).reshape(-1, 3), axis=1))
    s = res.summary
    return HandEyeResult(
        setup=setup, X=X, Y=Y, cov_X=cov_X, cov_Y=cov_Y, std_rot_deg=sx["rot_deg_total"],
        std_trans_m=sx["trans_m_total"], std_rot_deg_xyz=sx["rot_deg"],
        std_trans_m_xyz=sx["trans_m"], X_closed_form=X0,
        params=res.values["theta"][0] if lens is not None else None,
        residual_unit="px" if lens is not None else "m", sigma_observation=sigma,
        station_names=tuple(names), station_rms=rms,
        outlier_stations=_outliers(rms, sigma, corr_mm, corr_deg, opts, names),
        robot_correction_mm=corr_mm, robot_correction_deg=corr_deg,
        robot_sigma_mm=opts.robot_sigma_mm, robot_sigma_deg=opts.robot_sigma_deg,
        converged=s.termination == "converged", iterations=len(s.iterations),
        message=s.message, robot_noise_estimated=opts.estimate_robot_noise)
