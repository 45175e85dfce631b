"""Find the calibration board in a LiDAR cloud: planes peeled off by RANSAC (largest first),
each split into connected pieces, and the piece whose in-plane size best matches the board.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True, eq=False)
class BoardPlane:
    """The board's points ``(K, 3)`` (LiDAR frame), plane ``normal . x = offset`` (unit
    normal pointing away from the sensor, ``offset > 0``), RMS distance of the points to the
    plane (m), and the cluster's in-plane size ``(long, short)`` (m)."""

    points: np.ndarray
    normal: np.ndarray
    offset: float
    rms: float
    size: tuple[float, float]


def fit_plane(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares plane of ``points (K, 3)``: ``(unit normal, offset, rms)``, the normal
    pointing away from the origin (the sensor)."""
    c = points.mean(axis=0)
    _, s, vt = np.linalg.svd(points - c, full_matrices=False)
    n = vt[2] if n_dot(vt[2], c) >= 0 else -vt[2]
    rms = float(s[2] / np.sqrt(max(len(points) - 3, 1)))
    return n, float(n @ c), rms


def n_dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def _box(points: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-plane principal axes ``(2, 3)``, centre ``(2,)`` and size ``(2,)`` of ``points``:
    robust to a few stragglers (the 5-95 % spread of a uniformly covered rectangle is 90 %
    of its side)."""
    c = points - points.mean(axis=0)
    c = c - np.outer(c @ normal, normal)
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    q = c @ vt[:2].T
    lo, hi = np.percentile(q, [5, 95], axis=0)
    return vt[:2], (lo + hi) / 2, (hi - lo) / 0.9


def _size(points: np.ndarray, normal: np.ndarray) -> tuple[float, float]:
    """In-plane size (long, short) of ``points`` (m), see :func:`_box`."""
    ext = np.sort(_box(points, normal)[2])[::-1]
    return float(ext[0]), float(ext[1])


def _trim(points: np.ndarray, normal: np.ndarray, slack: float = 0.03) -> np.ndarray:
    """``points`` inside the rectangle :func:`_box` finds (plus ``slack`` metres): drops the
    stand and other stragglers that touch the board's plane."""
    axes, centre, size = _box(points, normal)
    q = (points - points.mean(axis=0)) @ axes.T - centre
    return points[np.all(np.abs(q) <= size / 2 + slack, axis=1)]


#: Planes peeled off a scan before the search gives up. At 3 cm range noise (a VLP-16's) a
#: wall or floor comes off in several slabs: 10 planes missed the board in 27 of 90
#: synthetic frames at 2-5 cm noise, 20 in none (and took about as long).
MAX_PLANES = 20
#: A scan whose points lie a median of more than this from the sensor is taken for one in
#: millimetres when no board is found (LiDAR ranges are at most a few hundred metres).
MAX_MEDIAN_RANGE_M = 500.0


def _clusters(points: np.ndarray, normal: np.ndarray, eps: float) -> list[np.ndarray]:
    """Connected pieces of a plane's inliers: the points projected into the plane, binned on
    a grid of ``eps / 2`` cells, occupied cells joined when their one-cell dilations touch
    (8-connected: cells at most 3 apart along each axis); returns each piece's point
    indices, pieces in raster order of their first cell (as labelling the dilated grid
    would number them). Only occupied cells are stored, so memory follows the points, not
    the plane's extent (a cloud in millimetres spans a million cells a side)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    axes = np.linalg.svd(np.eye(3) - np.outer(normal, normal))[0][:, :2]
    q = points @ axes
    cell = np.floor((q - q.min(axis=0)) / (eps / 2)).astype(np.int64) + 3
    width = int(cell[:, 1].max()) + 4  # keys of cells and of their neighbours never collide
    keys, inverse = np.unique(cell[:, 0] * width + cell[:, 1], return_inverse=True)
    rows, cols = [], []
    for dx in range(-3, 4):
        for dy in range(-3, 4):
            if (dx, dy) <= (0, 0):  # each pair once; the graph is symmetric
                continue
            nb = keys + dx * width + dy
            at = np.minimum(np.searchsorted(keys, nb), len(keys) - 1)
            hit = np.flatnonzero(keys[at] == nb)
            rows.append(hit)
            cols.append(at[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), bool), (r, c)), shape=(len(keys),) * 2)
    n, comp = connected_components(graph, directed=False)
    first = np.full(n, len(keys))
    np.minimum.at(first, comp, np.arange(len(keys)))  # keys sort in raster order
    rank = np.empty(n, np.int64)
    rank[np.argsort(first)] = np.arange(n)
    pl = rank[comp][inverse.ravel()]
    order = np.argsort(pl, kind="stable")
    cuts = np.searchsorted(pl[order], np.arange(n + 1))
    return [order[cuts[k]:cuts[k + 1]] for k in range(n)]


def ransac_plane(points: np.ndarray, threshold: float, rng: np.random.Generator,
                 trials: int = 200, sample: int = 2000) -> np.ndarray:
    """The plane ``(n (3,), d)`` (``n . x + d = 0``) with the most points within
    ``threshold``: ``trials`` random triples scored together on a random subset of
    ``sample`` points (vectorized), the winner refitted by least squares to its inliers."""
    sub = points if len(points) <= sample else points[rng.choice(len(points), sample, False)]
    tri = sub[rng.integers(0, len(sub), (trials, 3))]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1)
    ok = norm > 1e-9
    n = n[ok] / norm[ok, None]
    d = -np.einsum("ti,ti->t", n, tri[ok, 0])
    score = (np.abs(sub @ n.T + d) <= threshold).sum(axis=0)
    k = int(np.argmax(score))
    inl = points[np.abs(points @ n[k] + d[k]) <= threshold]
    if len(inl) < 3:
        return np.r_[n[k], d[k]]
    nn, off, _ = fit_plane(inl)
    return np.r_[nn, -off]


def find_board(cloud: np.ndarray, board_size: tuple[float, float], *, roi=None,
               threshold: float = 0.04, max_planes: int = MAX_PLANES, name: str = "cloud",
               seed: int = 0) -> BoardPlane:
    """The board's plane in ``cloud (N, 3)`` (metres, LiDAR frame).

    ``board_size``: (long, short) outer size of the board (m); ``roi``: optional
    ``(xmin, xmax, ymin, ymax, zmin, zmax)`` box; ``threshold``: RANSAC inlier distance (m).
    Planes are peeled off the cloud largest first; each plane's inliers are split into
    clusters (DBSCAN), and the cluster whose size best matches ``board_size`` (within 40 %
    in both directions, 30 points at least) wins. :class:`InputError` names the cloud when
    none does.
    """
    pts = np.asarray(cloud, dtype=float)
    if roi is not None:
        b = np.asarray(roi, dtype=float).reshape(3, 2)
        pts = pts[np.all((pts >= b[:, 0]) & (pts <= b[:, 1]), axis=1)]
    rng = np.random.default_rng(seed)
    best, best_score = None, np.inf
    want = np.array(sorted(board_size, reverse=True))
    eps = max(0.2, 0.05 * np.hypot(*want))
    rest = pts
    for _ in range(max_planes):
        if len(rest) < 30 or (best is not None and len(rest) < len(best)):
            break  # no plane left can be larger than the best candidate
        model = ransac_plane(rest, threshold, rng)
        idx = np.flatnonzero(np.abs(rest @ np.asarray(model[:3]) + model[3]) <= threshold)
        if len(idx) < 30:
            break
        inl = rest[idx]
        rest = np.delete(rest, idx, axis=0)
        for cl in _clusters(inl, fit_plane(inl)[0], eps):
            if len(cl) < 30:
                continue
            n = fit_plane(inl[cl])[0]
            p = _trim(_trim(inl[cl], n), n)
            if len(p) < 30:
                continue
            size = np.array(_size(p, n))
            ratio = size / want
            if np.all((ratio > 0.6) & (ratio < 1.4)):
                score = float(np.sum(np.log(ratio) ** 2))
                if score < best_score:
                    best, best_score = p, score
    if best is None:
        far = float(np.median(np.linalg.norm(pts, axis=1))) if len(pts) else 0.0
        why = (f"the points lie a median {far:.0f} m from the sensor: is the cloud in "
               "millimetres? calib expects metres" if far > MAX_MEDIAN_RANGE_M else
               "board not in the scan, or wrong --board/--square?")
        raise InputError(f"{name}: no plane of the board's size ({want[0]:.2f} x {want[1]:.2f} m)"
                         " found" + (" inside --roi" if roi is not None else "") + f" ({why})")
    n, d, rms = fit_plane(best)
    return BoardPlane(best, n, d, rms, _size(best, n))
