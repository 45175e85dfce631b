"""Row chunks of a residual term, evaluated and summed one at a time.

A term whose family can be restricted to a range of rows (``ResidualFamily.restrict``) is
split into chunks of about :data:`CHUNK_DOUBLES` Jacobian entries (about 1 MB): each chunk's
residuals and Jacobians are computed, robust-corrected and summed into the normal equations
while they are still in cache, and the whole Jacobian is never held in memory. Every chunk
carries its own :class:`Segments` (sorted once, here) and the position of each of its sums in
the term's accumulators, so an iteration only evaluates, multiplies and adds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .structure import PairPlan, Segments, SlotPlan, TermPlan

#: Target Jacobian entries per chunk (rows x residual_dim x total width): 1 MB of doubles,
#: which keeps a chunk's Jacobian and temporaries in a core's L2 cache.
CHUNK_DOUBLES = 1 << 17


@dataclass
class SumPlan:
    """A chunk's segment sums and where they land: ``dst[i]`` is the accumulator row of
    ``seg.keys[i]`` (``None``: the chunk is the whole term, rows in the accumulator's order)."""

    seg: Segments
    dst: np.ndarray | slice | None


@dataclass
class Chunk:
    """Rows ``rows`` of one term with its restricted family and index arrays."""

    rows: slice
    family: object  # ResidualFamily
    indices: tuple[np.ndarray, ...]
    valid: dict  # id(SlotPlan) -> (n,) bool mask or None
    grad: dict  # id(SlotPlan) -> (SumPlan, (U, width) reduced-vector columns)
    rr: list[SumPlan]  # per tp.rr_pairs
    elim: Segments | None  # sums per eliminated block (C and g_e, rows = its keys)
    re: list[SumPlan]  # per tp.re_pairs


def _rank_in(global_keys: np.ndarray, order: np.ndarray,
             local_keys: np.ndarray) -> np.ndarray | slice:
    """Index of every ``local_keys`` entry in ``global_keys`` (which holds each key once;
    ``order`` sorts it); a slice when they are consecutive (rows sorted by the pair's key,
    as BAL's camera-major rows for the camera-point blocks of ``W``), so the chunk's sums
    are added in place without an index array."""
    idx = order[np.searchsorted(global_keys, local_keys, sorter=order)]
    if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


def _pair_keys(pair: PairPlan, rows: slice) -> np.ndarray:
    return pair.a.pos[rows] * pair.nb + pair.b.pos[rows]


def chunk_rows(tp: TermPlan) -> int:
    """Rows per chunk for a term (a multiple of the eliminated segment length when every
    eliminated block has the same number of rows in order), or 0 for a single chunk."""
    rb = tp.block
    width = sum(p.width for p in tp.reduced) + (tp.elim.width if tp.elim is not None else 0)
    rows = max(1, CHUNK_DOUBLES // max(1, rb.family.residual_dim * (width + 1)))
    if rb.num_residuals < 2 * rows:
        return 0
    seg = tp.elim_seg
    if seg is not None and getattr(seg, "uniform", 0):
        rows = max(1, round(rows / seg.uniform)) * seg.uniform
    return rows


def _row_chunks(tp: TermPlan, plans: list[SlotPlan]):
    """``(rows, family, indices, valid)`` of each chunk of a term, or ``None`` when it is
    evaluated whole (small, or its family cannot be restricted)."""
    rb = tp.block
    step = chunk_rows(tp)
    first = rb.family.restrict(slice(0, step)) if step else None
    if first is None:
        return None
    out = []
    for lo in range(0, rb.num_residuals, step):
        rows = slice(lo, min(rb.num_residuals, lo + step))
        out.append((rows, first if lo == 0 else rb.family.restrict(rows),
                    tuple(ix[rows] for ix in rb.indices),
                    {id(p): None if p.valid is None else p.valid[rows] for p in plans}))
    return out


def dense_chunks(tp: TermPlan) -> list[Chunk]:
    """The chunks of a term of the tiny path, whose dense sums need no segments: rows,
    family, indices and validity only."""
    rb = tp.block
    parts = _row_chunks(tp, tp.reduced)
    if parts is None:
        return [Chunk(slice(0, rb.num_residuals), rb.family, rb.indices,
                      {id(p): p.valid for p in tp.reduced}, {}, [], None, [])]
    return [Chunk(rows, fam, idx, valid, {}, [], None, []) for rows, fam, idx, valid in parts]


def plan_chunks(tp: TermPlan) -> list[Chunk]:
    """The chunks of a term: one whole-term chunk unless its family can be restricted."""
    rb = tp.block
    plans: list[SlotPlan] = tp.reduced + ([tp.elim] if tp.elim is not None else [])
    parts = _row_chunks(tp, plans)
    if parts is None:
        return [Chunk(slice(0, rb.num_residuals), rb.family, rb.indices,
                      {id(p): p.valid for p in plans},
                      {id(p): (SumPlan(p.grad, None), p.columns(p.grad.keys)) for p in tp.reduced},
                      [SumPlan(pr.seg, None) for pr in tp.rr_pairs], tp.elim_seg,
                      [SumPlan(pr.seg, None) for pr in tp.re_pairs])]
    orders = {id(pr): np.argsort(pr.seg.keys, kind="stable")
              for pr in tp.rr_pairs + tp.re_pairs}
    out = []
    for rows, fam, idx, valid in parts:
        grad = {}
        for p in tp.reduced:  # spans as the term's: one block (a camera) skips the test
            seg = Segments(p.pos[rows], p.group.n_free)
            grad[id(p)] = (SumPlan(seg, None), p.columns(seg.keys))
        rr = []
        for pr in tp.rr_pairs:
            seg = Segments(_pair_keys(pr, rows), pr.a.group.n_free * pr.nb)
            rr.append(SumPlan(seg, _rank_in(pr.seg.keys, orders[id(pr)], seg.keys)))
        elim = None
        re = []
        if tp.elim is not None:
            elim = Segments(tp.elim.pos[rows], tp.elim.group.n_free)
            for pr in tp.re_pairs:
                s2 = Segments(_pair_keys(pr, rows), pr.a.group.n_free * pr.nb)
                re.append(SumPlan(s2, _rank_in(pr.seg.keys, orders[id(pr)], s2.keys)))
        out.append(Chunk(rows, fam, idx, valid, grad, rr, elim, re))
    for i, pr in enumerate(tp.rr_pairs):
        pr.partition = _partition([ch.rr[i].dst for ch in out], len(pr.seg.keys))
    for i, pr in enumerate(tp.re_pairs):
        pr.partition = _partition([ch.re[i].dst for ch in out], len(pr.seg.keys))
    return out


def _partition(dsts: list, n: int) -> bool:
    """Are the chunks' destinations consecutive slices covering ``0..n`` exactly once?"""
    end = 0
    for d in dsts:
        if not isinstance(d, slice) or d.start != end:
            return False
        end = d.stop
    return end == n
