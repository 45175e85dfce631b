"""Closed-form initialisation: board homographies, Zhang's intrinsics, poses.

Zhang (2000), "A flexible new technique for camera calibration": each view's homography
``H ~ K [r1 r2 t]`` gives two linear constraints on ``B = K^-T K^-1``; three or more views
determine ``B`` (zero skew is imposed as an extra constraint). When that system is
ill-conditioned (near-parallel views) the principal point is fixed at the image centre and
only the focal lengths are solved (the fallback OpenCV also uses).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..errors import DegenerateError
from ..targets.homography import dlt_homographies

log = logging.getLogger(__name__)


def _collinear(p: np.ndarray) -> np.ndarray:
    """``(V,)``: are a view's points ``(V, N, 2)`` on one line (or one point)? The spread
    across the best-fitting line is below 1e-6 of the spread along it."""
    x, y = p[..., 0], p[..., 1]  # (V, N) columns: reductions over N, not the middle axis
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    return _flat_line((x * x).sum(axis=1), (x * y).sum(axis=1), (y * y).sum(axis=1))


def _collinear_views(views: list[np.ndarray]) -> np.ndarray:
    """:func:`_collinear` of views ``(N_i, 2)`` with different numbers of points, all at
    once (segment sums over the stacked points: 100 partial views in 0.3 ms instead of 6
    one by one)."""
    n = np.array([len(v) for v in views])
    start = np.r_[0, np.cumsum(n)[:-1]]
    p = np.concatenate(views)
    x, y = p[:, 0], p[:, 1]
    x = x - np.repeat(np.add.reduceat(x, start) / n, n)
    y = y - np.repeat(np.add.reduceat(y, start) / n, n)
    return _flat_line(np.add.reduceat(x * x, start), np.add.reduceat(x * y, start),
                      np.add.reduceat(y * y, start))


def _flat_line(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Is the smaller eigenvalue of each ``[[a, b], [b, c]]`` (a scatter matrix) below 1e-12
    of the larger?"""
    half_tr = 0.5 * (a + c)
    root = np.sqrt(np.maximum(half_tr * half_tr - (a * c - b * b), 0.0))
    lo, hi = half_tr - root, half_tr + root  # eigenvalues of [[a, b], [b, c]]
    return lo <= 1e-12 * np.maximum(hi, 1e-300)


def _view_error(k: int) -> DegenerateError:
    """The error for view ``k`` (its index kept as ``.view`` so callers can name it)."""
    err = DegenerateError(f"view {k}: the board homography is degenerate (corners collinear "
                          "or repeated)")
    err.view = k
    return err


def homographies(board_xy: np.ndarray | list[np.ndarray],
                 pixels: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Homography ``(V, 3, 3)`` from board plane ``(x, y)`` (metres) to pixels, per view:
    ``(V, N, 2)`` arrays or lists of ``(N_i, 2)`` (one batched normalized DLT when every view
    has the same number of points)."""
    if isinstance(board_xy, np.ndarray) or len({len(b) for b in board_xy}) == 1:
        with np.errstate(all="ignore"):
            try:
                H = dlt_homographies(np.asarray(board_xy, dtype=float),
                               np.asarray(pixels, dtype=float))
            except np.linalg.LinAlgError:
                raise DegenerateError("a board homography is degenerate (corners collinear "
                                      "or repeated)") from None
        finite = np.isfinite(H).all(axis=(1, 2))
        bad = ~finite
        bad[finite] = np.abs(np.linalg.det(H[finite])) < 1e-300  # no NaN reaches det
        bad |= _collinear(np.asarray(pixels, dtype=float)) | \
            _collinear(np.asarray(board_xy, dtype=float))
        if not bad.any():
            return H
        raise _view_error(int(np.flatnonzero(bad)[0]))
    out = []
    board_xy = [np.asarray(b, np.float64) for b in board_xy]
    pixels = [np.asarray(p, np.float64) for p in pixels]
    line = _collinear_views(pixels) | _collinear_views(board_xy)
    for i, (b, p) in enumerate(zip(board_xy, pixels, strict=True)):
        h, _ = cv2.findHomography(b, p, 0)
        if h is None or not np.isfinite(h).all() or line[i]:
            raise _view_error(i)
        out.append(h / h[2, 2] if abs(h[2, 2]) > 1e-12 else h)
    return np.stack(out)


def _v(h: np.ndarray, i: int, j: int) -> np.ndarray:
    hi, hj = h[:, :, i], h[:, :, j]
    return np.stack([hi[:, 0] * hj[:, 0], hi[:, 0] * hj[:, 1] + hi[:, 1] * hj[:, 0],
                     hi[:, 1] * hj[:, 1], hi[:, 2] * hj[:, 0] + hi[:, 0] * hj[:, 2],
                     hi[:, 2] * hj[:, 1] + hi[:, 1] * hj[:, 2], hi[:, 2] * hj[:, 2]], axis=1)


def zhang_intrinsics(H: np.ndarray, image_size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """``(K (3, 3), method)`` from homographies ``(V, 3, 3)``; method ``zhang`` or
    ``focal-only`` (principal point at the image centre)."""
    w, h = image_size
    s = float(max(w, h))
    N = np.array([[1 / s, 0, -0.5 * w / s], [0, 1 / s, -0.5 * h / s], [0, 0, 1]])
    Hn = N @ H
    Hn /= np.linalg.norm(Hn[:, :, 0], axis=1)[:, None, None]
    if len(H) >= 3:
        V = np.concatenate([_v(Hn, 0, 1), _v(Hn, 0, 0) - _v(Hn, 1, 1),
                            np.array([[0, 1.0, 0, 0, 0, 0]]) * len(H)])
        _, sv, vt = np.linalg.svd(V, full_matrices=False)  # (2V+1, 6): skip the big U
        b = vt[-1]
        b11, b12, b22, b13, b23, b33 = b
        den = b11 * b22 - b12 * b12
        ok = sv[-2] > 1e-9 * sv[0] and abs(den) > 1e-15 and b11 != 0
        if ok:
            v0 = (b12 * b13 - b11 * b23) / den
            lam = b33 - (b13 * b13 + v0 * (b12 * b13 - b11 * b23)) / b11
            a2, bb2 = lam / b11, lam * b11 / den
            if a2 > 0 and bb2 > 0:
                alpha, beta = np.sqrt(a2), np.sqrt(bb2)
                u0 = -b13 * alpha * alpha / lam
                K = np.linalg.inv(N) @ np.array([[alpha, 0, u0], [0, beta, v0], [0, 0, 1]])
                fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
                if 0.2 < fx / fy < 5 and -0.25 * w < cx < 1.25 * w and -0.25 * h < cy < 1.25 * h:
                    return K, "zhang"
        log.info("Zhang's closed form is ill-conditioned; fixing the principal point")
    return _focal_only(Hn, N), "focal-only"


def _focal_only(Hn: np.ndarray, N: np.ndarray) -> np.ndarray:
    """Focal lengths with the principal point at the (normalized) origin = image centre."""
    h1, h2 = Hn[:, :, 0], Hn[:, :, 1]
    A = np.concatenate([np.stack([h1[:, 0] * h2[:, 0], h1[:, 1] * h2[:, 1]], axis=1),
                        np.stack([h1[:, 0] ** 2 - h2[:, 0] ** 2,
                                  h1[:, 1] ** 2 - h2[:, 1] ** 2], axis=1)])
    rhs = -np.concatenate([h1[:, 2] * h2[:, 2], h1[:, 2] ** 2 - h2[:, 2] ** 2])
    ab, *_ = np.linalg.lstsq(A, rhs, rcond=None)
    if np.any(ab <= 0) or not np.isfinite(ab).all():
        # one focal length for both axes
        a = float(np.linalg.lstsq(A.sum(axis=1, keepdims=True), rhs, rcond=None)[0][0])
        if not a > 0:
            raise DegenerateError("cannot initialise the focal length: the board views are "
                                  "too similar (tilt the board between views), or the corners "
                                  "do not match the board's geometry")
        ab = np.array([a, a])
    f = 1.0 / np.sqrt(ab)
    return np.linalg.inv(N) @ np.array([[f[0], 0, 0], [0, f[1], 0], [0, 0, 1]])


def poses_from_homographies(K: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Board poses ``T_cam_board (V, 4, 4)`` from ``H ~ K [r1 r2 t]`` (board in front)."""
    M = np.linalg.inv(K) @ H
    lam = 1.0 / np.linalg.norm(M[:, :, 0], axis=1)
    lam *= np.sign(M[:, 2, 2])  # the board origin must be in front (t_z > 0)
    lam[lam == 0] = 1.0
    r1 = M[:, :, 0] * lam[:, None]
    r2 = M[:, :, 1] * lam[:, None]
    t = M[:, :, 2] * lam[:, None]
    R = np.stack([r1, r2, np.cross(r1, r2)], axis=2)
    u, _, vt = np.linalg.svd(R)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    T = np.zeros((len(H), 4, 4))
    T[:, :3, :3] = u @ vt
    T[:, :3, 3] = t
    T[:, 3, 3] = 1.0
    return T


_SYM = np.array([[0, 1, 2], [1, 3, 4], [2, 4, 5]])
#: Entry (3 i + k, 3 j + l) of the 9x9 ray-DLT matrix is ``C[i, j] * (p p^T)[k, l]``: the
#: indices of those factors among the six distinct entries of each symmetric 3x3.
_C_INDEX = np.repeat(np.repeat(_SYM, 3, axis=0), 3, axis=1)
_P_INDEX = np.tile(_SYM, (3, 3))


def ray_homographies(board_xy: np.ndarray, rays: np.ndarray, offsets: np.ndarray,
                     weight: np.ndarray | None = None) -> np.ndarray:
    """Homography ``H (V, 3, 3)`` per view with ``rays ~ H (x, y, 1)``: board plane points
    ``board_xy (R, 2)`` (metres) against unit rays ``rays (R, 3)`` in the camera frame, view
    ``k`` being rows ``offsets[k]:offsets[k + 1]``.

    The constraint is ``rays x (H p) = 0`` (three rows of rank two per point), so it holds
    for rays at any angle, beyond 90 deg off-axis included (a homography to the image plane
    ``z = 1`` does not). Rows with ``weight`` 0 are ignored. Board points are normalized per
    view (Hartley) before the null vector of the stacked system is taken.
    """
    nv = len(offsets) - 1
    view = np.repeat(np.arange(nv), np.diff(offsets))
    cnt = np.maximum(np.bincount(view, weight, nv), 1e-300)
    wt = np.ones(len(view)) if weight is None else np.asarray(weight, float)
    c = np.stack([np.bincount(view, wt * board_xy[:, i], nv) for i in (0, 1)], 1) / cnt[:, None]
    d = board_xy - c[view]
    s = np.sqrt(2) / np.maximum(np.bincount(view, wt * np.hypot(d[:, 0], d[:, 1]), nv)
                                / cnt, 1e-300)
    x, y = d[:, 0] * s[view], d[:, 1] * s[view]  # normalized board points
    # sum over a point's three rows of A^T A = (I - r r^T) (x) (p p^T), p = (x, y, 1): six
    # distinct entries each, so every view's 9x9 matrix is one (6 x 6) sum of products
    rx, ry, rz = rays[:, 0], rays[:, 1], rays[:, 2]
    cr = np.stack([1 - rx * rx, -rx * ry, -rx * rz, 1 - ry * ry, -ry * rz, 1 - rz * rz], 1)
    mono = np.stack([x * x, x * y, x, y * y, y, np.ones_like(x)], axis=1)
    prod = (cr * wt[:, None])[:, :, None] * mono[:, None, :]  # (R, 6, 6)
    S = np.add.reduceat(prod.reshape(len(x), 36), offsets[:-1], axis=0).reshape(nv, 6, 6)
    M = S[:, _C_INDEX, _P_INDEX]  # (V, 9, 9), rows are view-sorted
    _, vecs = np.linalg.eigh(M)
    H = vecs[:, :, 0].reshape(nv, 3, 3)
    T = np.zeros((nv, 3, 3))
    T[:, 0, 0] = T[:, 1, 1] = s
    T[:, :2, 2] = -s[:, None] * c
    T[:, 2, 2] = 1.0
    return H @ T


def poses_from_ray_homographies(H: np.ndarray, board_xy: np.ndarray, rays: np.ndarray,
                                view: np.ndarray) -> np.ndarray:
    """Board poses ``T_cam_board (V, 4, 4)`` from ``H ~ [r1 r2 t]`` (rays already
    normalized), the sign chosen so that the board points lie along their rays
    (``rays . (H p) > 0`` on average), the rotation projected onto SO(3)."""
    hp = np.einsum("rij,rj->ri", H[view], np.c_[board_xy, np.ones(len(board_xy))])
    sign = np.sign(np.bincount(view, np.sum(hp * rays, axis=1), len(H)))
    sign[sign == 0] = 1.0
    lam = sign / np.maximum(np.linalg.norm(H[:, :, 0], axis=1), 1e-300)
    M = H * lam[:, None, None]
    R = np.stack([M[:, :, 0], M[:, :, 1], np.cross(M[:, :, 0], M[:, :, 1])], axis=2)
    u, _, vt = np.linalg.svd(R)
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    T = np.zeros((len(H), 4, 4))
    T[:, :3, :3] = u @ vt
    T[:, :3, 3] = M[:, :, 2]
    T[:, 3, 3] = 1.0
    return T


#: Models started by :func:`focal_search` rather than Zhang's homographies, whose pinhole
#: start breaks down beyond about 120 deg of field of view.
WIDE_MODELS = ("fisheye", "double-sphere")
#: Distortion starts tried per wide model (besides the model's neutral one): the
#: double-sphere focal length trades against xi and alpha along a long valley with two
#: minima of nearly equal cost on 190 deg test lenses (fx 152 vs 258 px, RMS 0.4065 vs
#: 0.4071 px); the fit runs from the best two of these and keeps the lower cost.
WIDE_STARTS = {"double-sphere": ((0.0, 0.5), (-0.2, 0.6), (0.3, 0.7))}


def _with_focal(model, template: np.ndarray, f: float, c) -> np.ndarray:
    p = np.array(template, dtype=float)
    p[:4] = f, f, c[0], c[1]
    return p


def _rays_and_poses(model, params: np.ndarray, board_xy: np.ndarray, pixels: np.ndarray,
                    offsets: np.ndarray):
    """``(rays (R, 3), ok (R,), view (R,), T_cam_board (V, 4, 4))``: the corners unprojected
    under ``params`` (``(P,)`` or one row per corner ``(R, P)``) and each view's pose from
    rays against the board (:func:`_poses_of_rays`)."""
    rays, ok = model.unproject(pixels, params)
    return _poses_of_rays(board_xy, rays, ok, offsets)


def _poses_of_rays(board_xy: np.ndarray, rays: np.ndarray, ok: np.ndarray,
                   offsets: np.ndarray):
    """``(rays (R, 3), ok (R,), view (R,), T_cam_board (V, 4, 4))`` of unprojected corners
    ``rays`` (valid where ``ok``; views from ``offsets (V+1,)``): each view's pose from rays
    against the board (:func:`ray_homographies`); rays that do not unproject get no
    weight (and come back as zeros)."""
    rays = np.where(ok[:, None], rays, 0.0)
    view = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    H = ray_homographies(board_xy, rays, offsets, ok.astype(float))
    return rays, ok, view, poses_from_ray_homographies(H, board_xy, rays, view)


def _search_costs(model, fs: np.ndarray, data: tuple, template: np.ndarray) -> np.ndarray:
    """Mean squared reprojection error (px^2) ``(K,)`` of the views in ``data`` under
    ``model`` with the distortion of ``template`` at each focal length of ``fs (K,)`` and the
    principal point ``c``, each pose from :func:`ray_homographies`; inf where fewer than 90%
    of the corners unproject or reproject. All candidates are one batch: the views are
    repeated once per candidate, with one parameter row per corner."""
    board_xy, pixels, offsets, c = data
    n, k = len(pixels), len(fs)
    base = _with_focal(model, template, 1.0, c)
    params = np.repeat(base[None], k, axis=0)
    params[:, 0] = params[:, 1] = fs
    rows = np.repeat(params, n, axis=0)  # (K n, P)
    tiled = np.tile(pixels, (k, 1))
    rays, ok = model.unproject(tiled, rows)  # row-wise: the live rows are kept as they are
    live = np.flatnonzero(ok.reshape(k, n).mean(axis=1) >= 0.9)
    costs = np.full(k, np.inf)
    if live.size == 0:
        return costs
    keep = (n * live[:, None] + np.arange(n)).ravel()
    rows, px = rows[keep], tiled[keep]
    offs = np.r_[(offsets[:-1][None] + n * np.arange(live.size)[:, None]).ravel(),
                 n * live.size]
    bxy = np.tile(board_xy, (live.size, 1))
    _, ok, view, T = _poses_of_rays(bxy, rays[keep], ok[keep], offs)
    p_cam = np.einsum("rij,rj->ri", T[view, :3, :2], bxy) + T[view, :3, 3]
    uv, valid = model.project(p_cam, rows)
    err = np.sum((uv - px) ** 2, axis=1).reshape(live.size, n)
    good = (ok & valid).reshape(live.size, n) & np.isfinite(err)
    frac = good.mean(axis=1)
    mean = np.sum(np.where(good, err, 0.0), axis=1) / np.maximum(good.sum(axis=1), 1)
    costs[live] = np.where(frac >= 0.9, mean + 1e6 * (1 - frac), np.inf)
    return costs


def _subset(board_xy: np.ndarray, pixels: np.ndarray, offsets: np.ndarray, views: np.ndarray,
            max_corners: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(board_xy, pixels, offsets)`` of ``views`` with at most ``max_corners`` corners of
    each, spread evenly over it (every corner of a view that has no more)."""
    views = np.asarray(views)
    start, count = offsets[views], offsets[views + 1] - offsets[views]
    take = np.minimum(count, max_corners)
    # np.linspace(0, n - 1, m).round() for n > m (distinct indices), arange(n) otherwise
    j = np.arange(max_corners)[None, :]
    step = np.where(count > max_corners, (count - 1) / max(max_corners - 1, 1), 1.0)
    idx = start[:, None] + np.round(j * step[:, None]).astype(np.int64)
    rows = idx[j < take[:, None]]
    return board_xy[rows], pixels[rows], np.r_[0, np.cumsum(take)]


def _parabola_min(x: np.ndarray, y: np.ndarray) -> float:
    """The abscissa of the smallest of the equally spaced samples ``y (n,)`` at ``x (n,)``,
    moved to the vertex of the parabola through it and its neighbours when that lies
    between them."""
    i = int(np.argmin(y))
    if 0 < i < len(y) - 1 and np.isfinite(y[i - 1:i + 2]).all():
        den = y[i - 1] - 2 * y[i] + y[i + 1]
        if den > 0:
            h = x[i + 1] - x[i]
            return float(x[i] + np.clip(0.5 * h * (y[i - 1] - y[i + 1]) / den, -h, h))
    return float(x[i])


def focal_search(model, board_xy: np.ndarray, pixels: np.ndarray, offsets: np.ndarray,
                 image_size: tuple[int, int], max_views: int = 6, max_corners: int = 30,
                 template: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """A start for wide-angle models that needs no guess: ``(params (P,), T_cam_board (V, 4,
    4))``.

    The principal point is put at the image centre and the distortion at the model's neutral
    value (:meth:`~calib.camera.LensModel.initial_params`: equidistant for fisheye); for each
    focal length ``f`` the corners are unprojected to rays, each view's pose is solved in
    closed form from rays against the board (:func:`ray_homographies`) and the corners are
    reprojected. The ``f`` with the smallest error wins: a log-spaced scan of 9 values over
    ``[0.1, 10] x`` the half-diagonal, a second scan of 9 over the two grid steps around the
    best, and the vertex of the parabola through the best three of those (each scan one
    batch), on at most ``max_views`` views spread over the set and ``max_corners`` corners of
    each; every view's pose then comes from that ``f`` (from ``max_corners`` of its
    corners). ``template``: the distortion to hold (default the model's neutral one).
    Returns ``(params, poses, mean squared error px^2 on the searched corners)``.
    """
    w, h = image_size
    c = ((w - 1) / 2.0, (h - 1) / 2.0)
    if template is None:
        template = model.initial_params(np.eye(3))
    nv = len(offsets) - 1
    pick = np.unique(np.linspace(0, nv - 1, min(nv, max_views)).round().astype(int))
    sub = _subset(board_xy, pixels, offsets, pick, max_corners) + (c,)
    grid = np.log(0.5 * np.hypot(w, h)) + np.linspace(np.log(0.1), np.log(10.0), 9)
    costs = _search_costs(model, np.exp(grid), sub, template)
    if not np.isfinite(costs).any():
        raise DegenerateError(f"cannot initialise the {model.name} model: no focal length "
                              "places the board views consistently (are the corners from "
                              "this board?)")
    i = int(np.argmin(costs))
    fine = np.linspace(grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)], 9)
    fine_costs = _search_costs(model, np.exp(fine), sub, template)
    f = float(np.exp(_parabola_min(fine, fine_costs)))
    cost = float(min(costs.min(), fine_costs.min()))
    every = _subset(board_xy, pixels, offsets, np.arange(nv), max_corners)
    params = _with_focal(model, template, f, c)
    _, ok, _, T = _rays_and_poses(model, params, *every)  # LM refines them
    if ok.mean() < 0.9:
        raise DegenerateError(f"cannot initialise the {model.name} model: the corners of "
                              "some views do not unproject at the best focal length")
    return params, T, cost


def wide_starts(model, board_xy: np.ndarray, pixels: np.ndarray, offsets: np.ndarray,
                image_size: tuple[int, int], keep: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    """Starts ``[(params, poses)]`` for a wide model: :func:`focal_search` from the model's
    neutral distortion and, for models in :data:`WIDE_STARTS`, from each listed one; the
    ``keep`` with the smallest search error, best first."""
    templates = [None]
    neutral = model.initial_params(np.eye(3))
    for extra in WIDE_STARTS.get(model.name, ()):
        t = neutral.copy()
        t[4:4 + len(extra)] = extra
        templates.append(t)
    found = []
    for t in templates:
        try:
            found.append(focal_search(model, board_xy, pixels, offsets, image_size,
                                      template=t))
        except DegenerateError:
            if len(templates) == 1:
                raise
    if not found:
        raise DegenerateError(f"cannot initialise the {model.name} model: no start places "
                              "the board views consistently")
    found.sort(key=lambda x: x[2])
    return [(p, T) for p, T, _ in found[:keep]]
