"""Camera-LiDAR extrinsics from frames of one board seen by both sensors.

Per frame: the board pose from the camera (PnP on the detected corners), the board's points
in the LiDAR cloud (:func:`calib.extrinsics.cloud_plane.find_board`). Start: the closed-form
plane correspondence (normals ``n_c = R n_l`` by orthogonal Procrustes, then
``n_c . t = d_c - d_l`` by least squares). Refinement, on the engine, jointly over all
frames: the LiDAR board points' distances to the camera's board plane
(:class:`calib.residuals.board_plane.BoardPlaneDistance`, weighted by the LiDAR range noise
estimated from the plane fits, Huber beyond 3 σ) together with the board corners'
reprojection errors (which hold each board pose to what the camera saw, weighted by the
corner noise estimated by PnP). With ``edges`` (the board's exact outer size known), a
second solve adds where the scan rings cross the board's edges
(:mod:`calib.extrinsics.cloud_edges`, :class:`calib.residuals.board_edge.
BoardEdgeCrossing`): the board's in-plane position, which the plane alone leaves to the
other frames. σ: the engine's covariance of ``T_camera_lidar`` times the residual variance
factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..errors import DegenerateError, InputError
from ..lie import se3
from ..solver import Euclidean, HuberLoss, Problem, SE3Manifold, SolverOptions, solve
from .cloud_plane import BoardPlane, find_board
from .pnp import views_poses
from .result import CameraLidarResult
from .uncertainty import pose_std, solved_covariance

MIN_FRAMES = 3
#: Largest RMS (in σ) of the edge crossings at the solution before the board's size given
#: for the edges is called wrong.
EDGE_RMS_LIMIT = 1.5


@dataclass(frozen=True)
class CameraLidarOptions:
    """``roi``: ``(xmin, xmax, ymin, ymax, zmin, zmax)`` box (LiDAR frame, m) the board is
    searched in; ``plane_threshold_m``: RANSAC inlier distance; ``min_normal_spread_deg``:
    the board normals must spread wider than this cone (half-angle) or the result is
    called degenerate; ``huber``: robust loss scale of the plane (and edge) residuals, in
    σ; ``edges``: ``board_size`` is the board's exact outer size (either order; the
    pattern centred on the board) and the scan rings' crossings of its edges join the fit
    (:mod:`calib.extrinsics.cloud_edges`), each with its ray step's σ and ``edge_floor_m``
    (beam footprint, edge wear) added in quadrature."""

    roi: tuple[float, ...] | None = None
    plane_threshold_m: float = 0.04
    min_normal_spread_deg: float = 5.0
    huber: float = 3.0
    max_iterations: int = 100
    edges: bool = False
    edge_floor_m: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.edge_floor_m) and self.edge_floor_m >= 0):
            raise InputError(f"edge_floor_m must be a number >= 0, got {self.edge_floor_m}")


def camera_planes(T_cam_board: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Board planes ``n . x = d`` in the camera frame, ``n (F, 3)`` pointing away from the
    camera, ``d (F,) > 0``."""
    n = T_cam_board[:, :3, 2].copy()
    d = np.einsum("fi,fi->f", n, T_cam_board[:, :3, 3])
    s = np.where(d < 0, -1.0, 1.0)
    return n * s[:, None], d * s


def check_spread(normals: np.ndarray, min_deg: float) -> float:
    """Half-angle (deg) of the cone holding the unit ``normals (F, 3)``;
    :class:`DegenerateError` when it is narrower than ``min_deg``."""
    axis = normals.sum(axis=0)
    axis /= np.linalg.norm(axis)
    spread = float(np.degrees(np.arccos(np.clip(normals @ axis, -1, 1))).max())
    if spread < min_deg:
        ax = ", ".join(f"{v:.3f}" for v in axis)
        raise DegenerateError(
            f"all board normals lie within {spread:.1f} deg of camera axis [{ax}] (need "
            f"> {min_deg:g} deg): T_camera_lidar's translation across it and rotation about "
            "it are undetermined; turn and tilt the board differently between frames")
    return spread


def plane_closed_form(n_c, d_c, n_l, d_l) -> np.ndarray:
    """``T_camera_lidar`` from plane pairs: ``n_c = R n_l`` and ``n_c . t = d_c - d_l``."""
    u, _, vt = np.linalg.svd(n_c.T @ n_l)
    R = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    t = np.linalg.lstsq(n_c, d_c - d_l, rcond=None)[0]
    return se3.from_rt(R, t)


def _problem(T0, C, boards: list[BoardPlane], pts, uv, lens, params, sig_px, sig_r, opts,
             edges=None):
    from ..residuals.board_plane import BoardPlaneDistance
    from ..residuals.chain_projection import ChainReprojection

    F = len(C)
    pb = Problem()
    pb.add_parameter("T", T0[None], SE3Manifold())
    pb.add_parameter("boards", C.copy(), SE3Manifold(), eliminate=True)
    pb.add_parameter("theta", np.asarray(params, float)[None], Euclidean(len(params)))
    for g in ("I1", "I2"):
        pb.add_parameter(g, np.eye(4)[None], SE3Manifold())
        pb.set_constant(g)
    pb.set_constant("theta")
    ok = [np.isfinite(v).all(axis=1) for v in uv]
    view = np.concatenate([np.full(k.sum(), f) for f, k in enumerate(ok)])
    fam = ChainReprojection(lens, np.concatenate([pts[k] for k in ok]),
                            np.concatenate([v[k] for v, k in zip(uv, ok, strict=True)]),
                            1, 1.0 / sig_px)
    z = np.zeros(len(view), int)
    pb.add_residuals(fam, [("theta", z), ("I1", z), ("I2", z), ("boards", view)])
    lp = np.concatenate([b.points for b in boards])
    frame = np.concatenate([np.full(len(b.points), f) for f, b in enumerate(boards)])
    pb.add_residuals(BoardPlaneDistance(lp, 1.0 / sig_r[frame]),
                     [("T", np.zeros(len(lp), int)), ("boards", frame)],
                     loss=HuberLoss(opts.huber))
    if edges is not None and len(edges.rays):
        from ..residuals.board_edge import BoardEdgeCrossing

        pb.add_residuals(BoardEdgeCrossing(edges.rays, edges.normals, edges.offsets,
                                           1.0 / edges.sigma),
                         [("T", np.zeros(len(edges.rays), int)), ("boards", edges.frame)],
                         loss=HuberLoss(opts.huber))
    return pb, lp, frame, F


def _outlier_frames(plane_rms, sig_r, cnt, corner_rms, sig_px, n_corners, names
                    ) -> tuple[str, ...]:
    """Frames that do not fit (a wrong piece of the cloud, a board that moved between image
    and scan, a bad detection): LiDAR board points farther from the camera's plane than
    their own plane-fit noise allows (RMS ratio above ``max(1.15, 1 + 5 / sqrt(2 N))``), or
    corners above ``max(1.8, 1 + 5 / sqrt(4 K))`` times their expected RMS."""
    bad = plane_rms / sig_r > np.maximum(1.15, 1 + 5 / np.sqrt(2 * cnt))
    ratio = corner_rms / (np.sqrt(2) * sig_px)
    bad |= ratio > np.maximum(1.8, 1 + 5 / np.sqrt(4 * n_corners))
    return tuple(names[i] for i in np.flatnonzero(bad))


def _check_inputs(clouds, image_points, names):
    if len(clouds) != len(image_points):
        raise InputError(f"{len(image_points)} camera views but {len(clouds)} clouds: one of "
                         "each per frame")
    if len(clouds) < MIN_FRAMES:
        raise InputError(f"{len(clouds)} frame(s); camera-LiDAR needs at least {MIN_FRAMES} "
                         "(8 or more with varied board poses for a useful σ)")
    for c, n in zip(clouds, names, strict=True):
        a = np.asarray(c)
        if a.ndim != 2 or a.shape[1] != 3 or len(a) < 30:
            raise InputError(f"{n}: expected an (N, 3) cloud with at least 30 points, got "
                             f"shape {a.shape}")


def _edges(clouds, boards: list[BoardPlane], board_size, pts, res, opts):
    """The scan rings' board-edge crossings of every frame, matched to the edges at the
    plane-only solution ``res`` (:func:`calib.extrinsics.cloud_edges.match_edges`), with
    ``board_size`` in the order (along the pattern's x, y or y, x) whose edges fit there
    better (ten crossings at least)."""
    from .cloud_edges import board_extent, match_edges, ring_ends

    ends = [ring_ends(b.points, np.asarray(c, float), b.normal, b.offset)
            for b, c in zip(boards, clouds, strict=True)]
    T, Cf = res.values["T"], res.values["boards"]
    found = [match_edges(ends, T[0], Cf, board_extent(pts, size), opts.edge_floor_m)
             for size in (tuple(board_size), tuple(board_size)[::-1])]
    fit = [_edge_rms(e, T, Cf) if len(e.rays) >= 10 else np.inf for e in found]
    return found[int(np.argmin(fit))]


def _edge_rms(edges, T: np.ndarray, boards: np.ndarray) -> float:
    """RMS of the edge crossings in units of their σ at ``T (1, 4, 4)``, ``boards``."""
    from ..residuals.board_edge import BoardEdgeCrossing

    fam = BoardEdgeCrossing(edges.rays, edges.normals, edges.offsets, 1.0 / edges.sigma)
    r, _ = fam.evaluate([T, boards], [np.zeros(len(edges.rays), int), edges.frame],
                        jacobians=False)
    return float(np.sqrt(np.mean(r ** 2)))


def _solve(T0, C, boards, clouds, board_size, pts, uv, lens, params, sig_px, sig_r, opts):
    """The refinement: planes and corners; with ``opts.edges`` then again from there with
    the edge crossings matched at that solution. Returns ``(solver result, LiDAR board
    points, their frames, F, edge rays per frame (empty without edges), their RMS in σ
    (None without))``."""
    pb, lp, frame, F = _problem(T0, C, boards, pts, uv, lens, params, sig_px, sig_r, opts)
    cov = () if opts.edges else ("T",)  # with edges, the second solve's is the answer's
    res = solve(pb, SolverOptions(max_iterations=opts.max_iterations, covariance=cov))
    if not opts.edges:
        return res, lp, frame, F, (), None
    edges = _edges(clouds, boards, board_size, pts, res, opts)
    pb, lp, frame, F = _problem(res.values["T"][0], res.values["boards"], boards, pts, uv,
                                lens, params, sig_px, sig_r, opts, edges)
    res = solve(pb, SolverOptions(max_iterations=opts.max_iterations, covariance=("T",)))
    rms = _check_edges(edges, res)
    return res, lp, frame, F, tuple(np.bincount(edges.frame, minlength=F).tolist()), rms


def _check_edges(edges, res) -> float | None:
    """The edge crossings' RMS at the solution in units of their σ; :class:`InputError`
    when it exceeds :data:`EDGE_RMS_LIMIT` (about 1 when the board's size is right;
    measured 1.4 / 2.3 / 5.7 with the size 1 / 2 / 5 cm too large, which biases the result
    by 1-5 σ)."""
    if not len(edges.rays):
        return None
    rms = _edge_rms(edges, res.values["T"], res.values["boards"])
    if rms > EDGE_RMS_LIMIT:
        raise InputError(f"the board's edges do not fit the scans ({rms:.1f} σ RMS, expected "
                         "about 1): is the board size the exact outer size, with the pattern "
                         "centred? (or leave the edges out)")
    return rms


def calibrate_camera_lidar(clouds: list[np.ndarray], board_points: np.ndarray,
                           image_points: list[np.ndarray] | np.ndarray, params: np.ndarray,
                           board_size: tuple[float, float], *, model: str = "pinhole",
                           options: CameraLidarOptions | None = None,
                           frame_names: list[str] | None = None) -> CameraLidarResult:
    """``T_camera_lidar`` (maps LiDAR points into the camera frame) from ``F`` frames.

    Args:
        clouds: ``F`` LiDAR clouds ``(N_f, 3)`` (metres, LiDAR frame).
        board_points: ``(P, 3)`` board points (metres, board frame, board plane ``z = 0``).
        image_points: ``F`` arrays ``(P, 2)`` of the corners' pixels (NaN rows: not seen).
        params: camera parameters of lens ``model``.
        board_size: the board's outer size (m, either order), to recognise it in the clouds.
        options: :class:`CameraLidarOptions`.
        frame_names: names used in messages and the report.

    Raises:
        InputError: bad input, or a cloud without a plane of the board's size;
        DegenerateError: the board normals lie within a narrow cone.
    """
    opts = options or CameraLidarOptions()
    names = list(frame_names) if frame_names is not None else \
        [f"frame {i}" for i in range(len(clouds))]
    _check_inputs(clouds, image_points, names)
    lens = get_model(model)
    params = np.asarray(params, dtype=float).ravel()
    pts = np.asarray(board_points, dtype=float)
    uv = [np.asarray(v, dtype=float).reshape(len(pts), 2) for v in image_points]
    C, sig_px, _ = views_poses(lens, params, pts, uv, names)
    boards = [find_board(np.asarray(c, float), board_size, roi=opts.roi,
                         threshold=opts.plane_threshold_m, name=n)
              for c, n in zip(clouds, names, strict=True)]
    n_c, d_c = camera_planes(C)
    spread = check_spread(n_c, opts.min_normal_spread_deg)
    n_l = np.stack([b.normal for b in boards])
    d_l = np.array([b.offset for b in boards])
    T0 = plane_closed_form(n_c, d_c, n_l, d_l)
    cnt = np.array([len(b.points) for b in boards])
    # per-frame range noise along the board normal (it shrinks with the incidence angle)
    sig_r = np.maximum(np.array([b.rms for b in boards]), 1e-5)
    sig_px = max(sig_px, 1e-3)
    res, lp, frame, F, per_frame, edge_rms = _solve(T0, C, boards, clouds, board_size, pts,
                                                    uv, lens, params, sig_px, sig_r, opts)
    n_edges = sum(per_frame)
    T = res.values["T"][0]
    nobs = sum(int(np.isfinite(v).all(axis=1).sum()) for v in uv)
    m = 2 * nobs + len(lp) + n_edges
    factor = 2.0 * res.summary.final_cost / max(m - 6 - 6 * F, 1)
    cov = solved_covariance(res, "T", "T_camera_lidar") * factor
    sd = pose_std(T, cov)
    Cf = res.values["boards"]
    q = lp @ T[:3, :3].T + T[:3, 3]
    dist = np.einsum("ni,ni->n", q - Cf[frame, :3, 3], Cf[frame, :3, 2])
    plane_rms = np.sqrt(np.bincount(frame, dist ** 2, F) / np.maximum(cnt, 1))
    corner_rms = np.array([np.sqrt(np.nanmean(np.sum(
        (lens.project(se3.act(c, pts), params)[0] - v) ** 2, axis=1))) for c, v in zip(Cf, uv,
                                                                                     strict=True)])
    s = res.summary
    n_corners = np.array([np.isfinite(v).all(axis=1).sum() for v in uv])
    outl = _outlier_frames(plane_rms, sig_r, cnt, corner_rms, sig_px, n_corners, names)
    return CameraLidarResult(
        T_camera_lidar=T, cov=cov, std_rot_deg=sd["rot_deg_total"],
        std_trans_m=sd["trans_m_total"], std_rot_deg_xyz=sd["rot_deg"],
        std_trans_m_xyz=sd["trans_m"], T_closed_form=T0, board_poses=Cf,
        frame_names=tuple(names), frame_plane_rms_m=plane_rms, frame_corner_rms_px=corner_rms,
        frame_points=cnt, sigma_range_m=float(np.sqrt(np.mean(sig_r ** 2))), sigma_px=sig_px,
        normal_spread_deg=spread, outlier_frames=outl, frame_edge_rays=per_frame,
        edge_rms_sigma=edge_rms,
        converged=s.termination == "converged", iterations=len(s.iterations),
        message=s.message)
