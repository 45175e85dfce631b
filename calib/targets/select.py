"""The one view filter: which detections determine a board pose, and why the others not.

A view is used when it has a detection, the image has the size most views have, and the
points it keeps (ids on the board, each seen once) are at least
:meth:`Target.min_points` and not all on one line. Ids outside the board (tags of another
board, a wrong board definition) are dropped and counted; an id seen twice means two
boards in the image and skips the view, so no point is ever given the wrong id.
A chessboard grid that continues past its detected edges (:meth:`Chessboard.flags`) is a
board definition with too few corners: an error when several views show it, else those
views are skipped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InputError
from .base import Observation, Target

#: A view's points are "on one line" when their spread (standard deviation) across the
#: best-fitting line in the board plane is below this fraction of the board's point
#: spacing (one row of corners: 0; two rows: 0.5).
MIN_WIDTH_SPACINGS = 0.25

_EDGE_WORDS = {"first_col": "first column", "last_col": "last column",
               "first_row": "first row", "last_row": "last row"}


@dataclass(frozen=True, eq=False)
class ViewSelection:
    """``used``: usable observations (ids filtered); ``skipped``: ``(view, reason)``;
    ``ignored_ids``: points dropped because their id is not on the board."""

    used: list[Observation]
    skipped: list[tuple[str, str]]
    ignored_ids: int = 0


def _spread_across(board_xy: np.ndarray) -> float:
    """Spread (standard deviation, metres) of planar points across their best line."""
    c = board_xy - board_xy.mean(axis=0)
    s = np.linalg.svd(c, compute_uv=False)
    return float(s[-1] / np.sqrt(len(c))) if len(s) > 1 else 0.0


def _spacing(target: Target, pts: np.ndarray) -> float:
    sp = target.spacing
    if np.isfinite(sp) and sp > 0:
        return float(sp)
    d = np.linalg.norm(pts[1:] - pts[:-1], axis=1)
    return float(np.median(d[d > 0])) if np.any(d > 0) else 1.0


def _filter_one(obs: Observation, pts: np.ndarray, target: Target, spacing: float
                ) -> tuple[Observation | None, str | None, int]:
    """``(kept observation or None, reason, ids ignored)`` for one detected view."""
    ids = obs.ids
    on_board = (ids >= 0) & (ids < len(pts))
    ignored = int((~on_board).sum())
    ids, uv = ids[on_board], obs.uv[on_board]
    counts = Counter(ids.tolist())
    twice = sorted(k for k, c in counts.items() if c > 1)
    if twice:
        return None, (f"{len(twice)} point id(s) seen twice (two boards in the image?), "
                      f"e.g. id {twice[0]}"), ignored
    finite = np.all(np.isfinite(uv), axis=1)
    ids, uv = ids[finite], uv[finite]
    need = target.min_points()
    if len(ids) < need:
        extra = f" ({ignored} ids not on the board ignored)" if ignored else ""
        return None, f"only {len(ids)} board points seen, need {need}{extra}", ignored
    width = _spread_across(pts[ids, :2])
    if width < MIN_WIDTH_SPACINGS * spacing:
        return None, (f"the {len(ids)} points seen lie on one line: they do not determine "
                      "the board's pose"), ignored
    if ignored or not finite.all():
        obs = replace(obs, ids=ids, uv=uv)
    return obs, None, ignored


def _common_size(found: list[Observation]) -> tuple[int, int] | None:
    sizes = Counter(o.image_size for o in found)
    return sizes.most_common(1)[0][0] if sizes else None


def select_views(observations: list[Observation], target: Target,
                 flag_limit: float = 0.25, label: str | None = None) -> ViewSelection:
    """Filter ``observations`` of ``target`` (module docstring; ``label`` names the board
    in errors, e.g. ``"--board 9x6"``). Raises
    :class:`InputError` when at least ``max(2, flag_limit * views)`` chessboard views show
    the grid continuing past its edges (the board has more corners than declared)."""
    pts = np.asarray(target.points(), dtype=float)
    spacing = _spacing(target, pts)
    used: list[Observation] = []
    skipped: list[tuple[str, str]] = []
    ignored = 0
    found = [o for o in observations if o.reason is None and len(o.ids)]
    common = _common_size(found)
    for obs in observations:
        if obs.reason is not None or not len(obs.ids):
            skipped.append((obs.view, obs.reason or f"no {target.describe()} points found"))
            continue
        if obs.image_size != common:
            skipped.append((obs.view, f"image size {obs.image_size} differs from {common}"))
            continue
        kept, reason, n_ign = _filter_one(obs, pts, target, spacing)
        ignored += n_ign
        if kept is None:
            skipped.append((obs.view, reason))
        else:
            used.append(kept)
    used, skipped = _check_flags(target, used, skipped, flag_limit, label)
    return ViewSelection(used, skipped, ignored)


def _check_flags(target: Target, used: list[Observation], skipped: list,
                 flag_limit: float, label: str | None) -> tuple[list, list]:
    flagged = [o for o in used if o.flags]
    if not flagged:
        return used, skipped
    what = target.describe()
    label = label or what
    if len(flagged) >= max(2, flag_limit * len(used)):
        edges = sorted({e for o in flagged for e in o.flags}, key=list(_EDGE_WORDS).index)
        where = ", ".join(_EDGE_WORDS[e] for e in edges)
        raise InputError(f"{label}: the board has more inner corners than that: the "
                         f"chessboard pattern continues past the detected grid's {where} in "
                         f"{len(flagged)} of {len(used)} images (count the INNER corners, "
                         "COLSxROWS)")
    skipped = skipped + [
        (o.view, f"the chessboard pattern continues past the detected {what} "
                 f"({', '.join(_EDGE_WORDS[e] for e in o.flags)})") for o in flagged]
    return [o for o in used if not o.flags], skipped
