"""The board's edges in a spinning LiDAR's scan: where each scan ring leaves the board.

A ring (one beam, one elevation) crosses the board between its last return on the board
and the next ray along the ring. That next ray's return must lie behind the board (or be
missing): otherwise the board continues (a return lost to noise) or something in front
hides the edge, and the edge is not resolved there. The crossing ray is taken halfway
between the two rays (the edge lies uniformly between them), so its in-plane error is
uniform over one ray step: σ = step across the edge / sqrt(12). Assumes every ray leaves
the LiDAR frame's origin (a spinning LiDAR's own frame) and points that keep their beam's
elevation (range noise along the ray); a group of points spread over more than
:data:`RING_GAP` in elevation is not a ring and gives no crossings (non-repetitive
scanners have no rings, so no edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Elevation gap (rad) that separates two rings.
RING_GAP = np.radians(0.1)
#: A return this much farther than the ring's last board point counts as background (m).
BACKGROUND = 0.1


@dataclass(frozen=True, eq=False)
class RingEnds:
    """Edge-crossing rays of one frame: ``rays (E, 3)`` unit (LiDAR frame), ``steps (E, 3)``
    the in-plane step from the last board hit to the next ray's hit on the board plane
    (LiDAR frame, m: outward along the ring)."""

    rays: np.ndarray
    steps: np.ndarray


def _spherical(p: np.ndarray, az0: float) -> tuple[np.ndarray, np.ndarray]:
    """Elevation and azimuth (relative to ``az0``, wrapped to (-pi, pi]) of ``p (N, 3)``."""
    el = np.arctan2(p[:, 2], np.hypot(p[:, 0], p[:, 1]))
    az = np.angle(np.exp(1j * (np.arctan2(p[:, 1], p[:, 0]) - az0)))
    return el, az


def _rings(el: np.ndarray) -> list[np.ndarray]:
    """Index groups of equal elevation (gaps above :data:`RING_GAP` separate rings)."""
    order = np.argsort(el)
    cuts = np.flatnonzero(np.diff(el[order]) > RING_GAP) + 1
    return np.split(order, cuts)


def _turn(u: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Directions ``u (N, 3)`` turned by ``angle (N,)`` about the LiDAR's z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.c_[c * u[:, 0] - s * u[:, 1], s * u[:, 0] + c * u[:, 1], u[:, 2]]


def _on_plane(u: np.ndarray, normal: np.ndarray, offset: float) -> np.ndarray:
    """Hits of rays ``u (N, 3)`` from the origin on the plane ``normal . x = offset``."""
    return u * (offset / (u @ normal))[:, None]


def ring_ends(board: np.ndarray, cloud: np.ndarray, normal: np.ndarray, offset: float,
              min_points: int = 5) -> RingEnds:
    """Edge-crossing rays of the board points ``board (K, 3)`` (LiDAR frame) whose next ray
    along the ring returns behind the board or not at all in ``cloud (N, 3)``; ``normal``,
    ``offset``: the board's plane in the LiDAR frame (for the steps)."""
    c = board.mean(axis=0)
    az0 = float(np.arctan2(c[1], c[0]))
    el, az = _spherical(board, az0)
    cel, caz = _spherical(cloud, az0)
    pad = 0.1  # rad: the window around the board that holds the next rays
    keep = (caz > az.min() - pad) & (caz < az.max() + pad) & (cel > el.min() - RING_GAP) & \
        (cel < el.max() + RING_GAP)
    cel, caz, crange = cel[keep], caz[keep], np.linalg.norm(cloud[keep], axis=1)
    rays, steps = [], []
    for ring in _rings(el):
        if len(ring) < min_points or np.ptp(el[ring]) > RING_GAP:
            continue  # too short, or not one beam (a non-repetitive scan has no rings)
        ring = ring[np.argsort(az[ring])]
        step = float(np.median(np.diff(az[ring])))
        if step <= 1e-9:
            continue  # repeated directions: no ray step to place the edge within
        e = float(np.median(el[ring]))
        near = np.abs(cel - e) < RING_GAP / 2
        for k, sgn in ((ring[0], -1.0), (ring[-1], 1.0)):
            nxt = near & (sgn * (caz - az[k]) > 0.5 * step) & (sgn * (caz - az[k]) < 1.5 * step)
            r = float(np.linalg.norm(board[k]))
            if np.any(crange[nxt] < r + BACKGROUND):
                continue  # the board goes on (a lost return) or something hides the edge
            u = board[k] / r
            pair = _on_plane(np.stack([u, _turn(u[None], np.array([sgn * step]))[0]]),
                             normal, offset)
            rays.append(_turn(u[None], np.array([sgn * step / 2]))[0])
            steps.append(pair[1] - pair[0])
    return RingEnds(np.reshape(rays, (-1, 3)), np.reshape(steps, (-1, 3)))


def board_extent(board_points: np.ndarray, size: tuple[float, float]
                 ) -> tuple[float, float, float, float]:
    """``(x0, x1, y0, y1)`` (m, board frame) of a board of outer ``size`` (along the board's
    x, then y) centred on the pattern ``board_points (P, 3)``."""
    c = (board_points[:, :2].min(axis=0) + board_points[:, :2].max(axis=0)) / 2
    return (c[0] - size[0] / 2, c[0] + size[0] / 2, c[1] - size[1] / 2, c[1] + size[1] / 2)


@dataclass(frozen=True, eq=False)
class EdgeRays:
    """Crossings matched to the board's edges: ``rays (E, 3)``, ``frame (E,)``,
    ``normals (E, 2)``, ``offsets (E,)`` (:class:`calib.residuals.board_edge.
    BoardEdgeCrossing`'s arguments) and ``sigma (E,)`` (m)."""

    rays: np.ndarray
    frame: np.ndarray
    normals: np.ndarray
    offsets: np.ndarray
    sigma: np.ndarray


def match_edges(ends: list[RingEnds], T: np.ndarray, boards: np.ndarray,
                extent: tuple[float, float, float, float], floor_m: float = 0.0,
                tol_m: float = 0.05) -> EdgeRays:
    """Each crossing ray of each frame matched, at ``T_camera_lidar (4, 4)`` and the board
    poses ``boards (F, 4, 4)``, to the edge of the rectangle ``extent`` it leaves through:
    the nearest edge the ring crosses outward at 30 deg or more, within ``tol_m`` plus one
    step, and at least one step plus 2 cm from the board's corners. ``sigma``: the step
    across the edge / sqrt(12), with ``floor_m`` added in quadrature."""
    from ..residuals.board_edge import BoardEdgeCrossing

    x0, x1, y0, y1 = extent
    A = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    C = np.array([x1, -x0, y1, -y0])
    out = {k: [] for k in ("rays", "frame", "normals", "offsets", "sigma")}
    for f, e in enumerate(ends):
        if not len(e.rays):
            continue
        B = np.repeat(boards[f][None], len(e.rays), axis=0)
        n = len(e.rays)
        h = BoardEdgeCrossing(e.rays, np.zeros((n, 2)), np.zeros(n)).hits(T, B)[0][:, :2]
        s = (e.steps @ T[:3, :3].T) @ boards[f][:3, :3]  # steps in the board frame
        s_len = np.linalg.norm(s[:, :2], axis=1)
        cross = (s[:, :2] @ A.T) / np.maximum(s_len, 1e-12)[:, None]  # (E, 4)
        dist = np.abs(h @ A.T - C)
        dist[cross < 0.5] = np.inf
        k = np.argmin(dist, axis=1)
        i = np.arange(len(k))
        along = np.where(k < 2, h[:, 1], h[:, 0])
        lo, hi = np.where(k < 2, y0, x0), np.where(k < 2, y1, x1)
        margin = 0.02 + s_len
        w = cross[i, k] * s_len
        ok = (dist[i, k] < tol_m + s_len) & (along > lo + margin) & (along < hi - margin) & \
            (w > 1e-6)
        out["rays"].append(e.rays[ok])
        out["frame"].append(np.full(ok.sum(), f))
        out["normals"].append(A[k[ok]])
        out["offsets"].append(C[k[ok]])
        out["sigma"].append(np.sqrt(w[ok] ** 2 / 12 + floor_m ** 2))
    if not out["rays"]:
        return EdgeRays(np.zeros((0, 3)), np.zeros(0, int), np.zeros((0, 2)), np.zeros(0),
                        np.zeros(0))
    return EdgeRays(*(np.concatenate(out[k]) for k in ("rays", "frame", "normals", "offsets",
                                                       "sigma")))
