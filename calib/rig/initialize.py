"""A start for the rig refinement that needs no guess.

1. Each camera alone: intrinsics and one board pose ``T_cam_board`` per view, from the
   single-camera solve (:func:`calib.intrinsics.fit.solve_camera`: fit_intrinsics's
   checks, start and refinement without its diagnostics) or only its closed-form start
   (Zhang, plus Zhang's linear k1, k2 step: :func:`_radial_start`), or, when the
   intrinsics are given, the poses in closed form from the unprojected rays.
2. Each pair of cameras ``(i, j)`` that see the board in the same frames: one estimate
   ``T_j_i = T_j_board T_i_board^-1`` per shared frame, averaged robustly
   (:func:`robust_mean_pose`: the medoid, its inliers, their chordal mean).
3. The covisibility graph (edge weight = inlier frames): a maximum spanning tree from the
   reference camera, composing ``T_cam_ref`` along it, so cameras that never see the board
   with the reference are reached through others. A camera the tree cannot reach is an
   error that names it.
4. Each frame's board pose ``T_rig_board = T_cam_rig^-1 T_cam_board`` from the camera that
   sees most of the board in it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..camera.base import get_model
from ..errors import CalibError, DegenerateError, InputError
from ..intrinsics import FitOptions
from ..intrinsics.fit import solve_camera
from ..intrinsics.initialize import poses_from_ray_homographies, ray_homographies
from ..lie import se3
from .observations import RigObservations
from .options import held_names

log = logging.getLogger(__name__)

#: A shared frame's relative pose is an outlier when it is further from the medoid than
#: this many times the median distance (and than the floors below): a board pose flipped by
#: the planar ambiguity lands tens of degrees away, noise within a fraction of a degree.
OUTLIER_FACTOR = 4.0
MIN_ROT_DEG, MIN_TRANS_FRAC = 0.5, 0.02


@dataclass(frozen=True, eq=False)
class RigStart:
    """``params`` per camera, ``T_cam_rig (C, 4, 4)``, ``T_rig_board (F, 4, 4)`` and the
    tree edges ``(parent, child, inlier frames, frames)`` used to place the cameras."""

    params: tuple[np.ndarray, ...]
    T_cam_rig: np.ndarray
    T_rig_board: np.ndarray
    edges: tuple[tuple[int, int, int, int], ...]


def camera_views(obs: RigObservations, c: int, board: np.ndarray):
    """``(frames (V,), object points [(K_v, 3)], pixels [(K_v, 2)], names)`` of camera ``c``."""
    frames = obs.views(c)
    sel = obs.cam == c
    fr, ids, uv = obs.frame[sel], obs.ids[sel], obs.uv[sel]
    order = np.argsort(fr, kind="stable")
    fr, ids, uv = fr[order], ids[order], uv[order]
    cuts = np.searchsorted(fr, frames[1:])
    return (frames, np.split(board[ids], cuts), np.split(uv, cuts),
            [obs.view_names[(c, int(f))] for f in frames])


def _poses_given(model, params, obj, pix) -> np.ndarray:
    """``T_cam_board (V, 4, 4)`` of views with known intrinsics (closed form from rays)."""
    counts = np.array([len(p) for p in pix])
    offsets = np.r_[0, np.cumsum(counts)]
    board_xy = np.concatenate(obj)[:, :2]
    rays, ok = model.unproject(np.concatenate(pix), params)
    rays = np.where(ok[:, None], rays, 0.0)
    H = ray_homographies(board_xy, rays, offsets, ok.astype(float))
    view = np.repeat(np.arange(len(counts)), counts)
    return poses_from_ray_homographies(H, board_xy, rays, view)


def _own_start(obs, c, board, model, given, fix, refine: bool):
    """``(params, T_cam_board (V, 4, 4))`` of camera ``c`` from its own views (``refine``:
    refined by the single-camera solve, else its closed-form start)."""
    frames, obj, pix, names = camera_views(obs, c, board)
    name = obs.cameras[c]
    if name in given:
        p = np.asarray(given[name], float)
        if p.shape != (model.num_params,):
            raise InputError(f"intrinsics[{name!r}]: {p.size} values, the {model.name} "
                             f"model has {model.num_params} ({', '.join(model.param_names)})")
        return p, _poses_given(model, p, obj, pix)
    held = tuple(n for n in held_names(fix, model) if n in model.param_names[4:])
    try:
        p, T = solve_camera(obj, pix, obs.image_sizes[c],
                            FitOptions(model=model.name, fix=held), view_names=names,
                            refine=refine)
    except CalibError as exc:
        raise type(exc)(f"camera {name!r}: {exc}") from None
    if refine or model.param_names[4:6] != ("k1", "k2") or {"k1", "k2"} & set(held):
        return p, T
    return _radial_start(model, p, T, obj, pix)


def _radial_start(model, p, T, obj, pix):
    """Zhang's linear radial step (Zhang 2000, section 3.3) on a closed-form pinhole start
    ``p`` (zero distortion) and its poses ``T (V, 4, 4)``: ``k1, k2`` by least squares on
    ``uv_obs - uv = (uv - c) (k1 r^2 + k2 r^4)``; the poses stay Zhang's."""
    counts = [len(q) for q in pix]
    Tn = np.repeat(T, counts, axis=0)
    pc = np.einsum("nij,nj->ni", Tn[:, :3, :3], np.concatenate(obj)) + Tn[:, :3, 3]
    xy = pc[:, :2] / pc[:, 2:3]
    r2 = np.sum(xy * xy, axis=1)
    d = xy * p[:2]  # uv - c
    A = np.stack([d * r2[:, None], d * (r2 * r2)[:, None]], axis=2).reshape(-1, 2)
    b = (np.concatenate(pix) - d - p[2:4]).ravel()
    k, *_ = np.linalg.lstsq(A, b, rcond=None)
    if not np.all(np.isfinite(k)):
        return p, T
    q = p.copy()
    q[4:6] = k
    return q, T


def _borrowed_start(obs, c, board, models, params):
    """Camera ``c``'s start when its own views do not give one (e.g. too little tilt for
    Zhang's closed form): the intrinsics of the camera of the same model that shares most
    frames with it, its poses in closed form from the rays. The joint refinement then
    determines it from board poses the other cameras fix (3-D points spread over frames,
    more than its own planar views give); its rank check refuses what stays undetermined.
    ``None`` when no solved camera of its model shares a frame with it."""
    mine = set(obs.views(c).tolist())
    best, n_best = None, 0
    for d in params:
        n = len(mine & set(obs.views(d).tolist()))
        if models[d] == models[c] and n > n_best:
            best, n_best = d, n
    if best is None:
        return None
    _, obj, pix, _ = camera_views(obs, c, board)
    p = np.array(params[best], float)
    log.info("camera %r: no start from its own views; starting from camera %r's intrinsics",
             obs.cameras[c], obs.cameras[best])
    return p, _poses_given(get_model(models[c]), p, obj, pix)


def single_cameras(obs: RigObservations, board: np.ndarray, models: tuple[str, ...],
                   given: Mapping[str, np.ndarray], fix: tuple[str, ...] = (),
                   refine: bool = True):
    """Step 1: ``(params, {c: {frame: T_cam_board}})``; a camera whose own views give no
    start (DegenerateError) borrows one (:func:`_borrowed_start`)."""
    params, poses, failed = {}, {}, {}
    for c in range(obs.n_cameras):
        try:
            params[c], T = _own_start(obs, c, board, get_model(models[c]), given, fix,
                                      refine)
        except DegenerateError as exc:
            failed[c] = exc
            continue
        poses[c] = dict(zip(obs.views(c).tolist(), T, strict=True))
    for c, exc in failed.items():
        start = _borrowed_start(obs, c, board, models, params)
        if start is None:
            raise exc
        params[c] = start[0]
        poses[c] = dict(zip(obs.views(c).tolist(), start[1], strict=True))
    return tuple(params[c] for c in range(obs.n_cameras)), poses


def robust_mean_pose(T: np.ndarray) -> tuple[np.ndarray, int]:
    """Robust mean of poses ``T (K, 4, 4)`` and the number of inliers (module docstring)."""
    R, t = T[:, :3, :3], T[:, :3, 3]
    cos = (np.einsum("aij,bij->ab", R, R) - 1.0) / 2.0
    ang = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    dt = np.linalg.norm(t[:, None] - t[None], axis=2)
    scale = max(float(np.median(np.linalg.norm(t, axis=1))), 1e-9)
    # medoid: least summed distance, a translation off by the baseline weighing 1 rad
    med = int(np.argmin(ang.sum(axis=1) + np.degrees(dt.sum(axis=1) / scale)))
    a, d = ang[med], dt[med]
    keep = (a <= max(OUTLIER_FACTOR * np.median(a), MIN_ROT_DEG)) & \
        (d <= max(OUTLIER_FACTOR * np.median(d), MIN_TRANS_FRAC * scale))
    u, _, vt = np.linalg.svd(R[keep].sum(axis=0))
    out = np.eye(4)
    out[:3, :3] = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    out[:3, 3] = t[keep].mean(axis=0)
    return out, int(keep.sum())


def pair_poses(poses: dict) -> dict:
    """Step 2: ``{(i, j): (T_j_i, inliers, shared frames)}`` for ``i < j``."""
    out = {}
    cams = sorted(poses)
    for a, i in enumerate(cams):
        for j in cams[a + 1:]:
            shared = sorted(set(poses[i]) & set(poses[j]))
            if not shared:
                continue
            Ti = np.stack([poses[i][f] for f in shared])
            Tj = np.stack([poses[j][f] for f in shared])
            T, n = robust_mean_pose(se3.compose(Tj, se3.inverse(Ti)))
            out[(i, j)] = (T, n, len(shared))
    return out


def spanning_tree(n_cameras: int, pairs: dict, names: tuple[str, ...]):
    """Step 3: ``(T_cam_rig (C, 4, 4), edges)`` by Prim's maximum spanning tree from 0."""
    T = np.tile(np.eye(4), (n_cameras, 1, 1))
    placed, edges = {0}, []
    while len(placed) < n_cameras:
        best = None
        for (i, j), (Tji, n, m) in pairs.items():
            if (i in placed) != (j in placed) and (best is None or n > best[2]):
                best = (i, j, n, m, Tji)
        if best is None:
            lost = [names[c] for c in range(n_cameras) if c not in placed]
            raise DegenerateError(
                f"camera{'s' if len(lost) > 1 else ''} {', '.join(map(repr, lost))} never "
                f"see{'' if len(lost) > 1 else 's'} the board in the same frame as the "
                f"cameras connected to {names[0]!r}: the rig is not connected (frames pair "
                "by the last number in the file name)")
        i, j, n, m, Tji = best
        if i in placed:  # T_j_rig = T_j_i T_i_rig
            T[j] = Tji @ T[i]
            edges.append((i, j, n, m))
            placed.add(j)
        else:
            T[i] = se3.inverse(Tji) @ T[j]
            edges.append((j, i, n, m))
            placed.add(i)
    return T, tuple(edges)


def board_poses(obs: RigObservations, T_cam_rig: np.ndarray, poses: dict) -> np.ndarray:
    """Step 4: ``T_rig_board (F, 4, 4)``."""
    counts = np.zeros((obs.n_cameras, len(obs.frames)), np.int64)
    np.add.at(counts, (obs.cam, obs.frame), 1)
    best = np.argmax(counts, axis=0)
    out = np.empty((len(obs.frames), 4, 4))
    for f, c in enumerate(best):
        out[f] = se3.inverse(T_cam_rig[c]) @ poses[int(c)][f]
    return out


def initialize(obs: RigObservations, board: np.ndarray, models: tuple[str, ...],
               given: Mapping[str, np.ndarray], fix: tuple[str, ...] = (),
               refine: bool = True) -> RigStart:
    """The whole start (module docstring); ``refine=False`` skips the single-camera
    refinement of step 1 (closed-form starts; the joint refinement does that work)."""
    params, poses = single_cameras(obs, board, models, given, fix, refine)
    T_cam_rig, edges = spanning_tree(obs.n_cameras, pair_poses(poses), obs.cameras)
    return RigStart(params, T_cam_rig, board_poses(obs, T_cam_rig, poses), edges)
