"""The stacked path of a term: every sum of a chunk from one product per eliminated block.

The general path evaluates a chunk's Jacobians slot by slot and forms ``A``, ``g_r``, ``C``,
``g_e`` and ``W`` by five separate segment sums. A term whose family writes ``[J_0 | J_1 |
r]`` into one buffer (``ResidualFamily.stacked``: a board's reprojection, one view per
eliminated pose) gets them all from one batched product per eliminated block ``p``,
``H_p = B_p^T B_p`` ``(w, w)`` over the block's rows ``B_p`` of that buffer: ``C_p``, ``W_p``
and ``g_e`` are sub-blocks of ``H_p``, ``A`` and ``g_r`` sums of sub-blocks over the chunk's
blocks. At 100 board views (14,000 corners, 29 views a chunk) the sums of a chunk cost
0.12 ms instead of 0.25-0.4 ms, and the products ``H_p`` at the solution are what a board
fit's trust figures need (:attr:`calib.solver.SolverOptions.products`), so those need no
further pass over the corners.

Taken when the family sets ``stacked``, the term has no robust loss (``H_p`` is the
unweighted product), one reduced plan (one camera) and one eliminated plan, every row is
valid, the rows come in eliminated-block order (views of any length; a view split by a
chunk boundary sums both parts) and every chunk reads one reduced block; else the general
path. Costs are summed as on the general path (the same
bits); ``A`` and ``g_r`` are sums over blocks of per-block products (round-off apart from
one product over all rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:  # structure imports this module once its plans are defined
    from .structure import Segments, TermPlan


@dataclass
class StackedPlan:
    """Columns of a term's stacked buffer: the reduced plan's free coordinates ``red``, the
    eliminated plan's ``elim`` (slices when contiguous), the residual last (``width`` in
    all); ``lengths`` per chunk the rows of every eliminated block (equal) or their bounds."""

    width: int
    red: slice | np.ndarray
    elim: slice | np.ndarray
    lengths: list  # per chunk: rows per block (int), or each block's row bounds
    raw: np.ndarray | None = None

    def take(self, rows: int, m: int) -> np.ndarray:
        """An uninitialised ``(m, width, rows)`` buffer (kept between calls): every column
        of the ``(rows, m, width)`` view the family writes (``transpose(2, 0, 1)``) is
        contiguous, so the kernels write columns at full speed (a column of a row-major
        ``(rows, m, width)`` array is strided: 3.5 us more per write of 4,000 values)."""
        if self.raw is None or self.raw.shape[2] < rows or self.raw.shape[0] != m:
            self.raw = np.empty((m, self.width, rows))
        return self.raw[:, :, :rows]


def _columns(plan, offsets: np.ndarray) -> slice | np.ndarray:
    """Buffer columns of a slot plan's free coordinates (a slice when contiguous)."""
    cols = np.concatenate([offsets[j] + lay.free_coords for lay, j in plan.parts])
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        return slice(int(cols[0]), int(cols[0]) + len(cols))
    return cols


def _blocks(seg: Segments, n: int) -> int | np.ndarray | None:
    """How a chunk of ``n`` rows splits into eliminated blocks: their common length when
    every block has as many rows (one batched product), else the row bounds of each
    ``(U + 1,)`` (one product per block); None when the rows are not in block order."""
    if seg.single:
        return n
    if seg.order is not None or not hasattr(seg, "bounds"):
        return None
    return int(seg.uniform) if seg.uniform else seg.bounds


def plan_stacked(tp: TermPlan) -> StackedPlan | None:
    """The :class:`StackedPlan` of a term that qualifies (module docstring), else None."""
    rb = tp.block
    if (not getattr(rb.family, "stacked", False) or rb.loss is not None or tp.dense is not None
            or tp.elim is None or len(tp.reduced) != 1 or len(tp.rr_pairs) != 1
            or len(tp.re_pairs) != 1):
        return None
    if tp.reduced[0].valid is not None or tp.elim.valid is not None:
        return None
    ne = tp.re_pairs[0].nb
    lengths = []
    for ch in tp.chunks:
        blocks = _blocks(ch.elim, ch.rows.stop - ch.rows.start)
        keys = ch.re[0].seg.keys
        if (blocks is None or not ch.rr[0].seg.single or len(keys) != len(ch.elim.keys)
                or not np.array_equal(keys % ne, ch.elim.keys)):
            return None
        lengths.append(blocks)
    offsets = np.r_[0, np.cumsum(tp.dims)]
    return StackedPlan(int(offsets[-1]) + 1, _columns(tp.reduced[0], offsets),
                       _columns(tp.elim, offsets), lengths)


def _sub(h: np.ndarray, rows, cols) -> np.ndarray:
    """``h[:, rows][:, :, cols]`` for slices or index arrays."""
    if isinstance(rows, slice) and isinstance(cols, slice):
        return h[:, rows, cols]
    return h[:, rows][:, :, cols]


def evaluate_stacked(tp: TermPlan, k: int, vals: list, sums) -> tuple[float, str | None]:
    """Cost of chunk ``k`` of a stacked term and its sums into ``sums``
    (:class:`~calib.solver.normal_equations._Sums`), or ``(inf, reason)``."""
    sp, ch = tp.stacked, tp.chunks[k]
    rb = tp.block
    m = rb.family.residual_dim
    n = ch.rows.stop - ch.rows.start
    raw = sp.take(n, m)
    ch.family.evaluate_stacked(vals, ch.indices, raw.transpose(2, 0, 1))
    flat = np.empty(n * m)  # the residuals in row order, as the general path sums them
    for c in range(m):
        flat[c::m] = raw[c, -1]
    name = type(rb.family).__name__
    if not np.isfinite(flat).all():
        return np.inf, f"non-finite residual in {name}"
    cost = 0.5 * float(flat @ flat)
    h = _products(raw, sp.lengths[k])  # (U, w, w) per eliminated block
    if not np.isfinite(h).all():  # a NaN or inf in any column reaches its diagonal entry
        return np.inf, f"non-finite Jacobian in {name}"
    _add_sums(tp, ch, h, sums)
    sums.residuals.setdefault(id(tp), []).append((ch.rows, flat))
    return cost, None


def _products(raw: np.ndarray, blocks: int | np.ndarray) -> np.ndarray:
    """``H_p = B_p^T B_p`` ``(U, w, w)`` of a chunk's buffer ``raw (m, w, n)``: blocks of
    ``blocks`` rows each by one batched product, or blocks between the bounds ``blocks``
    one product each (29 views a chunk: 0.14 ms either way)."""
    m, w, n = raw.shape
    if not isinstance(blocks, np.ndarray):
        b = raw.reshape(m, w, n // blocks, blocks).transpose(0, 2, 1, 3)  # (m, U, w, L)
        return np.matmul(b, b.transpose(0, 1, 3, 2)).sum(axis=0)
    h = np.empty((len(blocks) - 1, w, w))
    for i in range(len(blocks) - 1):
        b = raw[:, :, blocks[i]:blocks[i + 1]]
        np.sum(np.matmul(b, b.transpose(0, 2, 1)), axis=0, out=h[i])
    return h


def _add_sums(tp: TermPlan, ch, h: np.ndarray, sums) -> None:
    """Every sum of chunk ``ch`` from its per-block products ``h (U, w, w)``: ``C``, ``g_e``
    and ``W`` are sub-blocks, ``A`` and ``g_r`` sums of sub-blocks (one reduced block)."""
    sp = tp.stacked
    red, elim = sp.red, sp.elim
    C, g = sums.elim[tp.elim.group.name]
    keys = ch.elim.keys
    C[keys] += _sub(h, elim, elim)
    g[keys] += h[:, elim, -1]
    sums.add(sums.re, tp.re_pairs[0], _sub(h, red, elim), ch.re[0].dst)
    sums.add(sums.rr, tp.rr_pairs[0], _sub(h, red, red).sum(axis=0)[None], ch.rr[0].dst)
    _, cols = ch.grad[id(tp.reduced[0])]
    sums.g_r[cols] += h[:, red, -1].sum(axis=0)[None]
    sums.products.setdefault(tp.elim.group.name, []).append((keys, h))


def products(structure, neq, names: tuple[str, ...]) -> dict:
    """name -> ``(M, w, w)`` products ``H_p`` of every block of the eliminated groups
    ``names`` (zero for constant blocks) from normal equations of the stacked path; a
    group fed by other terms too, or by a term on the general path, is left out."""
    out = {}
    for name in names:
        lay = structure.layouts.get(name)
        if lay is None or not lay.eliminate:
            raise InputError(f"products requested for {name!r}, which is not an eliminated "
                             "group")
        es = neq.elim.get(name)
        terms = [tp for tp in structure.terms if tp.elim is not None
                 and tp.elim.group.name == name]
        if es is None or es.products is None or len(terms) != 1 or terms[0].stacked is None:
            continue
        lay = terms[0].elim.group
        w = terms[0].stacked.width
        h = np.zeros((len(lay.block_pos), w, w))
        free = np.zeros((lay.n_free, w, w))
        for keys, part in es.products:  # a block split over two chunks gets both parts
            free[keys] += part
        h[lay.free_blocks] = free
        out[name] = h
    return out


def residuals(structure, neq) -> dict:
    """Residual block index -> ``(N, m)`` residuals of each stacked term, from the chunks
    of the linearization ``neq`` (the values its cost summed)."""
    out = {}
    for i, tp in enumerate(structure.terms):
        parts = neq.residuals.get(id(tp))
        if parts is None:
            continue
        m = tp.block.family.residual_dim
        r = np.empty(tp.block.num_residuals * m)
        for rows, flat in parts:
            r[rows.start * m:rows.stop * m] = flat
        out[i] = r.reshape(-1, m)
    return out
