"""Does a detected chessboard grid continue beyond its outermost rows or columns?

OpenCV's detectors can return a sub-grid when the board is given one row or column too few
(``--board 8x6`` for a 9x6 board): the calibration then silently uses board coordinates
that are off by a square. :func:`grid_extension` scores, one square beyond each of the four
edges of the detected grid of inner corners, whether the chessboard X-corner pattern
continues there, and :func:`board_too_small` names the edges where it does.

Method, for every grid point one square beyond an edge (``c = -1`` for ``first_col``,
``c = cols`` for ``last_col``, likewise rows):

* a homography from board grid coordinates ``(c, r)`` to pixels is fitted to the detected
  corners *near* the point only (the 3 grid lines nearest the edge x the point's line and
  its 2 neighbours), so lens distortion, which bends the grid, does not spoil the
  one-square extrapolation (measured on 200 rendered poses through a wide-angle lens,
  fx = 330 px at 640x480, k1 = -0.32: one homography for the whole grid predicts the next
  corner up to 0.9 square off, the local fits at most 0.11);
* the four quadrants around the predicted point, and around its detected neighbour on the
  edge line for reference, are sampled at grid offsets ``(+-0.3, +-0.3)``, each as the
  mean of a 5x5 patch 0.2 square wide laid out in board coordinates and mapped through the
  local homography, so the patches follow the board's tilt. 0.3 rather than the square
  centres (0.5): many boards (OpenCV's sample among them) print truncated outer squares,
  which the centres of the squares one step out miss;
* the X-corner strength is ``min(light) - max(dark)``, the gap between the two diagonal
  quadrants that should be light and the two that should be dark; which diagonal is light
  follows the chessboard parity of ``(c, r)``, with the sign taken from the detected
  corners. It is positive only where the pattern alternates with the right phase (on the
  real sample images this separates better than the phase-blind "min adjacent difference
  - max diagonal difference", whose worst too-short edge scores 0.89 instead of 1). One
  square beyond the board's last inner corner two of the four quadrants lie on the margin
  or background, which is one colour at that scale (white paper, a dark table, anything
  smooth): one of them is then on the wrong side and the strength is about 0 or negative,
  whatever the margin's colour;
* the strength is divided by the median strength of the detected corners next to the point
  on the edge line (same lighting, blur and foreshortening); the point is an X-corner when
  that ratio is >= :data:`RATIO_THRESHOLD`. An edge's score is the fraction of its points
  that are X-corners, among those whose patches lie inside the image.

Measured (tests/test_grid_check.py): rendered and real grids of the board's true size
score 0 to 0.14 on every edge, grids one square short score 1.0 on the edges the board
continues over. 0.5 to 1 ms for a 9x6 grid in a 640x480 image; detecting it takes 2 to
14 ms.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from ..errors import InputError
from .homography import dlt_homographies

EDGES = ("first_col", "last_col", "first_row", "last_row")

#: A predicted point is an X-corner when its strength is >= this x that of the detected
#: corners next to it (0.4 to 0.5 separate best on the real sample images; from 0.6 on,
#: some points of a too-short edge fall below, and at 0.3 true edges reach 0.29).
RATIO_THRESHOLD = 0.5
#: An edge is flagged (the grid continues) when more than this fraction of its points are
#: X-corners (measured: 0 to 0.14 at a true edge, 1.0 where the grid continues).
SCORE_THRESHOLD = 0.5
#: Fewer predicted points inside the image than this: the edge's score is NaN (unknown).
MIN_POINTS = 2

_PATCH = 5  # samples per side of each quadrant patch
_PATCH_HALF = 0.1  # patch half-width, in squares
_QUAD_OFF = 0.3  # quadrant patch centres at grid offsets (+-_QUAD_OFF, +-_QUAD_OFF)
_QUAD_SIGNS = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)  # mm, pm, pp, mp


def _homographies(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Homographies mapping grid points ``src (P, N, 2)`` to pixels ``dst (P, N, 2)``
    (N >= 4, the normalized DLT of :func:`~calib.targets.homography.dlt_homographies`):
    ``(P, 3, 3)`` and a ``(P,)`` mask of the usable ones. A fit is unusable when it is not
    finite, when it does not reproduce the detected corners to 0.2 of their spread
    (degenerate or garbled corners) or when a corner would be behind the camera."""
    with np.errstate(all="ignore"):
        h = dlt_homographies(src, dst)
        q = np.concatenate([src, np.ones(src.shape[:2] + (1,))], axis=2) @ h.transpose(0, 2, 1)
        md = dst.mean(1, keepdims=True)
        spread = np.maximum(np.sqrt(((dst - md) ** 2).sum(2)).mean(1), 1e-12)
        res = np.abs(q[..., :2] / q[..., 2:] - dst).max(axis=(1, 2)) / spread
        ok = (res < 0.2) & np.all(q[..., 2] > 0, axis=1) & np.all(np.isfinite(h), axis=(1, 2))
    return h, ok


@lru_cache(maxsize=64)
def _edge_geometry(cols: int, rows: int, edge: str):
    """Grid coords ``(P, 2)`` of the edge line's corners and of the points one square
    beyond them, and ``(P, N)`` indices of the detected corners each point's local
    homography is fitted to (the 3 lines nearest the edge x the point's line and its two
    neighbours, fewer on small grids)."""
    col_edge = edge.endswith("col")
    n_along, n_deep = (rows, cols) if col_edge else (cols, rows)
    first = edge.startswith("first")
    c_line = 0 if first else n_deep - 1
    step = -1 if first else 1
    deep = [c_line - step * k for k in range(min(3, n_deep))]
    width = min(3, n_along)
    line, beyond, windows = [], [], []
    for a in range(n_along):
        lo = min(max(a - 1, 0), n_along - width)
        along = range(lo, lo + width)
        if col_edge:
            windows.append([r * cols + c for c in deep for r in along])
            line.append((c_line, a))
            beyond.append((c_line + step, a))
        else:
            windows.append([r * cols + c for r in deep for c in along])
            line.append((a, c_line))
            beyond.append((a, c_line + step))
    return np.array(line, float), np.array(beyond, float), np.array(windows)


@lru_cache(maxsize=8)
def _sample_offsets(patch: int, half: float, quad_off: float) -> tuple[np.ndarray, np.ndarray]:
    """Grid offsets ``(4 * patch**2,)`` in x and y of all patch samples, quadrant-major."""
    t = (np.arange(patch) + 0.5) / patch * 2 * half - half
    tx, ty = np.meshgrid(t, t)
    off = quad_off * _QUAD_SIGNS[:, None, :] + np.stack([tx.ravel(), ty.ravel()], 1)[None]
    return off[..., 0].ravel(), off[..., 1].ravel()


def _quadrants(gray: np.ndarray, h: np.ndarray, grid_pts: np.ndarray) -> np.ndarray:
    """Mean grey ``(Q, 4)`` of the four quadrant patches (order mm, pm, pp, mp) around each
    of ``grid_pts (Q, 2)``, mapped by ``h (Q, 3, 3)``; NaN rows where a patch leaves the
    image or crosses the homography's horizon."""
    dx, dy = _sample_offsets(_PATCH, _PATCH_HALF, _QUAD_OFF)
    x = grid_pts[:, :1] + dx[None]  # (Q, 4 * S)
    y = grid_pts[:, 1:] + dy[None]

    def row(k):
        return h[:, k, :1] * x + h[:, k, 1:2] * y + h[:, k, 2:]

    w = row(2)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u, v = row(0) / w, row(1) / w
    hgt, wid = gray.shape
    # NaN / inf compare False, so they are invalid too
    valid = np.all((w > 0) & (u >= 0) & (u <= wid - 1) & (v >= 0) & (v <= hgt - 1), axis=1)
    u = np.where(valid[:, None], u, 0.0).astype(np.float32)
    v = np.where(valid[:, None], v, 0.0).astype(np.float32)
    vals = cv2.remap(gray, u, v, cv2.INTER_LINEAR)  # (Q, 4 * S) uint8
    means = vals.reshape(len(x), 4, -1).mean(axis=2, dtype=np.float64)
    means[~valid] = np.nan
    return means


def _strength(q: np.ndarray, light_mm: np.ndarray) -> np.ndarray:
    """Gap between the two quadrants that should be light and the two that should be dark,
    ``min(light) - max(dark)`` (positive only for an X-corner of the expected phase)."""
    a_lo, a_hi = np.minimum(q[:, 0], q[:, 2]), np.maximum(q[:, 0], q[:, 2])
    b_lo, b_hi = np.minimum(q[:, 1], q[:, 3]), np.maximum(q[:, 1], q[:, 3])
    return np.where(light_mm, a_lo - b_hi, b_lo - a_hi)


def _median3(v: np.ndarray) -> np.ndarray:
    """Row-wise median of the finite values of ``v (P, 3)`` (NaN if none)."""
    s = np.sort(v, axis=1)  # NaN last
    n = np.isfinite(v).sum(axis=1)
    return np.where(n == 3, s[:, 1], np.where(n == 2, 0.5 * (s[:, 0] + s[:, 1]), s[:, 0]))


def _check_inputs(gray, corners, cols, rows):
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise InputError(f"gray must be an (H, W) uint8 image, got {gray.dtype} {gray.shape}")
    gray = np.ascontiguousarray(gray)  # cv2.remap needs unit-stride rows
    if int(cols) != cols or int(rows) != rows or cols < 2 or rows < 2:
        raise InputError(f"grid must have at least 2x2 inner corners, got {cols}x{rows}")
    corners = np.asarray(corners, dtype=np.float64)
    if corners.size != 2 * cols * rows:
        raise InputError(f"expected {cols * rows} corners for a {cols}x{rows} grid, got "
                         f"array of shape {corners.shape}")
    corners = corners.reshape(-1, 2)
    if not np.all(np.isfinite(corners)):
        raise InputError("corners must be finite")
    return gray, corners, int(cols), int(rows)


def extension_strengths(gray: np.ndarray, corners: np.ndarray, cols: int, rows: int
                        ) -> dict[str, np.ndarray]:
    """Per edge (:data:`EDGES`), the normalised X-corner strength of each grid point one
    square beyond it, in order along the edge: its strength / the median strength of the
    detected corners next to it on the edge line (1 = as strong as the detected corners;
    about 0 or below = no X-corner). NaN where the point's sampling patches leave the
    image or its local fit is degenerate."""
    gray, corners, cols, rows = _check_inputs(gray, corners, cols, rows)
    i = np.arange(cols * rows)
    grid = np.stack([i % cols, i // cols], axis=1).astype(float)
    geo = [_edge_geometry(cols, rows, edge) for edge in EDGES]
    sizes = [len(g[0]) for g in geo]
    n = sum(sizes)
    h_all, ok_all = np.zeros((n, 3, 3)), np.zeros(n, bool)
    # one batched fit per window size (all edges share it unless the grid is tiny)
    win_all = [g[2] for g in geo]
    offsets = np.cumsum([0] + sizes)
    for wn in {w.shape[1] for w in win_all}:
        rows_sel = np.concatenate([np.arange(offsets[k], offsets[k + 1])
                                   for k, w in enumerate(win_all) if w.shape[1] == wn])
        win = np.concatenate([w for w in win_all if w.shape[1] == wn])
        h_all[rows_sel], ok_all[rows_sel] = _homographies(grid[win], corners[win])
    lines = np.concatenate([g[0] for g in geo])
    beyonds = np.concatenate([g[1] for g in geo])
    q = _quadrants(gray, np.concatenate([h_all, h_all]), np.concatenate([lines, beyonds]))
    q[np.r_[~ok_all, ~ok_all]] = np.nan
    ql, qb = q[:n], q[n:]
    # phase: quadrants mm and pp of corner (c, r) are squares of parity (c + r) % 2, so
    # which diagonal is light alternates with (c + r); the board's sign is the detected
    # corners' majority (one step across an edge flips the parity, as it should)
    par_l = np.where((lines.sum(1) % 2) == 0, 1.0, -1.0)
    par_b = np.where((beyonds.sum(1) % 2) == 0, 1.0, -1.0)
    diag = ((ql[:, 0] + ql[:, 2]) - (ql[:, 1] + ql[:, 3])) * par_l
    diag = diag[np.isfinite(diag)]
    if not len(diag):
        return {edge: np.full(offsets[k + 1] - offsets[k], np.nan)
                for k, edge in enumerate(EDGES)}
    sign = 1.0 if np.median(diag) >= 0 else -1.0
    ref = _strength(ql, sign * par_l > 0)
    ext = _strength(qb, sign * par_b > 0)
    out: dict[str, np.ndarray] = {}
    for k, edge in enumerate(EDGES):
        r, e = ref[offsets[k]:offsets[k + 1]], ext[offsets[k]:offsets[k + 1]]
        # normalise by the detected corners next to the point (itself and its two
        # neighbours on the edge line): same lighting, blur and foreshortening
        pad = np.r_[np.nan, r, np.nan]
        med = _median3(np.stack([pad[:-2], pad[1:-1], pad[2:]], axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[edge] = np.where(med > 0, e / np.where(med > 0, med, 1.0), np.nan)
    return out


def grid_extension(gray: np.ndarray, corners: np.ndarray, cols: int, rows: int
                   ) -> dict[str, float]:
    """For a detected grid of inner chessboard corners ``corners (cols*rows, 2)`` (pixels,
    row-major: index = r*cols + c, OpenCV's order) in the 8-bit grayscale image
    ``gray (H, W)``, score how strongly the chessboard X-corner pattern continues one square
    beyond each of the four edges (``first_col``, ``last_col``, ``first_row``,
    ``last_row``).

    Returns edge -> score in [0, 1]: the fraction of the predicted positions along that
    edge whose X-corner strength is at least :data:`RATIO_THRESHOLD` x that of the
    detected corners next to them on the edge (about 0 at the board's true edge, 1 where
    the grid continues); NaN when fewer than :data:`MIN_POINTS` predicted positions have
    their sampling patches inside the image.
    """
    out = {}
    for edge, s in extension_strengths(gray, corners, cols, rows).items():
        ok = np.isfinite(s)
        out[edge] = float(np.mean(s[ok] >= RATIO_THRESHOLD)) if ok.sum() >= MIN_POINTS \
            else math.nan
    return out


def board_too_small(scores: dict[str, float], threshold: float = SCORE_THRESHOLD) -> list[str]:
    """Edges (in :data:`EDGES` order) over which the chessboard continues, i.e. whose
    :func:`grid_extension` score is > ``threshold``: a non-empty list means the board has
    more inner corners than the detected grid (``--board`` too small by one row or column
    per named edge). NaN scores (edge outside the image) are never flagged."""
    return [e for e in EDGES if e in scores and np.isfinite(scores[e]) and scores[e] > threshold]


#: Neighbouring squares of a detected grid may differ in image size by at most this factor
#: and a grid line may turn by at most MAX_TURN_DEG between neighbouring squares (perspective
#: and lens distortion change both slowly; a detector that skipped or reordered corners
#: makes them jump: factor 2, turns of 20-180 deg). Measured on true grids (real images,
#: rendered boards up to 0.6 rad tilt, a wide-angle lens): at most 1.30 and 4.8 deg.
MAX_SPACING_RATIO = 1.6
MAX_TURN_DEG = 20.0


def grid_irregularity(corners: np.ndarray, cols: int, rows: int) -> tuple[float, float]:
    """``(largest spacing ratio, largest turn in degrees)`` between neighbouring steps along
    the rows and columns of a detected grid ``corners (cols * rows, 2)`` (row-major).

    A grid of evenly spaced corners seen through a camera gives ratios near 1 and small
    turns; corners that skip a column or come out of order do not. Grids with fewer than 3
    corners per line give ``(1, 0)`` along that direction.
    """
    g = np.asarray(corners, dtype=float).reshape(rows, cols, 2)
    worst_ratio, worst_turn = 1.0, 0.0
    for steps in (np.diff(g, axis=1), np.diff(g, axis=0).transpose(1, 0, 2)):
        if steps.shape[1] < 2:
            continue
        a, b = steps[:, :-1], steps[:, 1:]
        la, lb = np.linalg.norm(a, axis=2), np.linalg.norm(b, axis=2)
        if np.any(la <= 1e-9) or np.any(lb <= 1e-9):
            return float("inf"), 180.0
        ratio = np.maximum(la / lb, lb / la)
        cos = np.clip(np.sum(a * b, axis=2) / (la * lb), -1.0, 1.0)
        worst_ratio = max(worst_ratio, float(ratio.max()))
        worst_turn = max(worst_turn, float(np.degrees(np.arccos(cos)).max()))
    return worst_ratio, worst_turn


def grid_is_regular(corners: np.ndarray, cols: int, rows: int) -> bool:
    ratio, turn = grid_irregularity(corners, cols, rows)
    return ratio <= MAX_SPACING_RATIO and turn <= MAX_TURN_DEG
