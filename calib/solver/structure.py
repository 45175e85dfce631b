"""Compile a :class:`Problem` into index structures reused by every iteration.

The sparsity pattern never changes during a solve, so every sort, unique-key search and
CSR pattern is computed once here; each iteration then only multiplies Jacobian blocks and
sums them with ``np.add.reduceat`` / ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from . import blocks
from .lazy import scipy_sparse
from .manifold import Manifold
from .problem import ParameterGroup, Problem, ResidualBlock

if TYPE_CHECKING:
    import scipy.sparse as sp


@dataclass
class GroupLayout:
    """Where a group's free coordinates live: reduced vector offset or eliminated group."""

    name: str
    manifold: Manifold
    eliminate: bool
    free_coords: np.ndarray  # (df,) tangent coordinates that vary
    block_pos: np.ndarray  # (M,) rank among free blocks, -1 for constant blocks
    free_blocks: np.ndarray  # (n_free,) block indices that vary
    offset: int = 0  # reduced-vector index of coordinate 0 of free block 0
    stride: int = 0  # distance between consecutive free blocks (df, or more when interleaved)
    _index: tuple | None = None  # cached index_matrix

    @property
    def df(self) -> int:
        return len(self.free_coords)

    @property
    def n_free(self) -> int:
        return len(self.free_blocks)

    @property
    def size(self) -> int:
        return self.df * self.n_free

    def index_matrix(self) -> np.ndarray:
        """Reduced-vector indices ``(n_free, df)`` of the group's free coordinates (formed
        once: the layout is fixed when the structure is built)."""
        key = (self.offset, self.stride)
        if self._index is None or self._index[0] != key:
            self._index = (key, self.offset + np.arange(self.n_free)[:, None] * self.stride
                           + np.arange(self.df))
        return self._index[1]


def take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` along axis 0, several times faster than fancy indexing for ``ndim > 2``."""
    if a.ndim <= 2:
        return np.take(a, idx, axis=0)
    return np.take(a.reshape(a.shape[0], -1), idx, axis=0).reshape((len(idx),) + a.shape[1:])


class Segments:
    """Sum rows of ``(N, ...)`` arrays that share a key; the key order is computed once.

    ``keys`` are the distinct keys in the order of the sums returned; ``span``, when given,
    bounds them to ``[0, span)`` (``span == 1``: one key, nothing to compare).
    """

    #: Segments at least this long on average are summed with one GEMM each.
    GEMM_MIN_LENGTH = 32

    def __init__(self, keys: np.ndarray, span: int | None = None) -> None:
        n = len(keys)
        self.order = None
        self.starts = None
        self.uniform = 0
        step = np.diff(keys) if n and span != 1 else None  # equal, sorted, run starts
        self.single = n > 0 and (span == 1 or not step.any())
        self.bounds = np.arange(n + 1, dtype=np.int64)  # every row its own sum, until below
        if self.single:
            self.keys = keys[:1].copy()
            self.bounds = np.array([0, n], dtype=np.int64)
            return
        if n and (step >= 0).all():
            k = keys  # already sorted: no gather
            change = step != 0
        else:
            order = np.argsort(keys, kind="stable")
            k = keys[order]
            if n and np.all(k[1:] != k[:-1]):
                self.keys = keys.copy()  # distinct keys: every sum is a single row
                return
            self.order = order.astype(np.int64, copy=False)
            change = k[1:] != k[:-1]
        starts = (np.flatnonzero(np.concatenate(([True], change))) if n
                  else np.zeros(0, int))
        self.keys = k[starts]
        if len(starts) < n:
            self.starts = starts
        self.bounds = np.append(starts, n).astype(np.int64, copy=False)
        lengths = np.diff(self.bounds)
        # equal-length segments in order: sums are one batched matmul over (U, L, ...)
        self.uniform = int(lengths[0]) if (self.order is None and len(lengths)
                                           and np.all(lengths == lengths[0])) else 0

    def weighted_sum(self, r: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Per key ``sum_n j[n]^T r[n]`` for ``r (N, m)``, ``j (N, m, d)`` -> ``(U, d)``."""
        n, m, d = j.shape
        if self.single:
            return (r.reshape(1, n * m) @ j.reshape(n * m, d))
        return blocks.segment_gemv(j, r, self.order, self.bounds)

    def sum_products(self, ja: np.ndarray, jb: np.ndarray) -> np.ndarray:
        """Per key ``sum_n ja[n]^T jb[n]``: ``ja (N, m, a)``, ``jb (N, m, b)`` -> ``(U, a, b)``."""
        n, m, a = ja.shape
        b = jb.shape[2]
        if self.single:
            return (ja.reshape(n * m, a).T @ jb.reshape(n * m, b))[None]
        if self.starts is not None and self.uniform * m >= self.GEMM_MIN_LENGTH:
            u = n // self.uniform
            return np.matmul(ja.reshape(u, self.uniform * m, a).transpose(0, 2, 1),
                             jb.reshape(u, self.uniform * m, b))
        if self.starts is not None and len(self.starts) * self.GEMM_MIN_LENGTH <= n:
            if self.order is not None:
                ja, jb = take_rows(ja, self.order), take_rows(jb, self.order)
            fa, fb = ja.reshape(n * m, a), jb.reshape(n * m, b)
            bounds = self.bounds * m
            out = np.empty((len(self.starts), a, b))
            for i in range(len(self.starts)):
                lo, hi = bounds[i], bounds[i + 1]
                np.dot(fa[lo:hi].T, fb[lo:hi], out=out[i])
            return out
        return blocks.segment_gram(ja, jb, self.order, self.bounds)  # short segments


class CsrPattern:
    """A fixed CSR pattern with a map from COO entries to CSR data slots."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> None:
        self.shape = shape
        key = rows.astype(np.int64) * shape[1] + cols
        ukey, self.map = np.unique(key, return_inverse=True)
        self.nnz = len(ukey)
        r = ukey // shape[1]
        self.indices = (ukey % shape[1]).astype(np.int64)
        self.indptr = np.zeros(shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=shape[0]), out=self.indptr[1:])
        self.flat = None  # dense flat index of each COO entry, made by build_dense

    def build(self, values: np.ndarray) -> sp.csr_matrix:
        data = np.bincount(self.map, weights=values, minlength=self.nnz)
        return scipy_sparse().csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    def build_dense(self, values: np.ndarray) -> np.ndarray:
        """The same matrix as a dense array ``shape``."""
        if self.flat is None:
            rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
            self.flat = (rows * self.shape[1] + self.indices)[self.map]
        return np.bincount(self.flat, weights=values,
                           minlength=self.shape[0] * self.shape[1]).reshape(self.shape)


class BsrPattern:
    """A fixed block-sparse (BSR) pattern of ``r x c`` sub-blocks at given block coordinates."""

    def __init__(self, brow: np.ndarray, bcol: np.ndarray, nblocks: tuple[int, int], r: int,
                 c: int) -> None:
        self.r, self.c = r, c
        self.shape = (nblocks[0] * r, nblocks[1] * c)
        key = brow.astype(np.int64) * nblocks[1] + bcol
        ukey, self.map = np.unique(key, return_inverse=True)
        self.unique = len(ukey) == len(key)
        if self.unique:  # data = sub_blocks[inverse]: a gather, faster than a scatter
            self.gather = np.empty_like(self.map)
            self.gather[self.map] = np.arange(len(self.map))
            if np.array_equal(self.gather, np.arange(len(self.gather))):
                self.gather = None  # already in BSR order: no copy at all
        self.nnzb = len(ukey)
        self.indices = (ukey % nblocks[1]).astype(np.int32)
        self.indptr = np.zeros(nblocks[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(ukey // nblocks[1], minlength=nblocks[0]), out=self.indptr[1:])

    def build(self, sub_blocks: np.ndarray, transpose: bool = False) -> sp.bsr_matrix:
        """BSR matrix from ``(K, r, c)`` sub-blocks in the order given at construction
        (``transpose``: the blocks are given as ``(K, c, r)`` and transposed here, after the
        gather, which keeps the gather on contiguous rows)."""
        if self.unique:
            data = sub_blocks if self.gather is None else take_rows(sub_blocks, self.gather)
            if transpose:
                data = np.ascontiguousarray(data.transpose(0, 2, 1))
        else:
            src = np.ascontiguousarray(sub_blocks.transpose(0, 2, 1)) if transpose \
                else sub_blocks
            data = np.zeros((self.nnzb, self.r, self.c))
            np.add.at(data, self.map, src)
        return scipy_sparse().bsr_matrix((data, self.indices, self.indptr), shape=self.shape)


@dataclass
class SlotPlan:
    """One or more slots of a term read with the same block positions.

    Reduced slots whose free-block positions coincide (e.g. a camera's pose and its
    intrinsics, both indexed by camera) are merged so that their Jacobians are concatenated
    to ``(N, m, width)`` and every product is one batched operation.
    """

    parts: list  # [(GroupLayout, slot index)] in column order
    pos: np.ndarray  # (N,) free-block rank, clipped to >= 0
    valid: np.ndarray | None  # (N,) bool, None when all valid
    grad: Segments | None = None

    @property
    def width(self) -> int:
        return sum(lay.df for lay, _ in self.parts)

    @property
    def group(self) -> GroupLayout:
        return self.parts[0][0]

    def columns(self, u: np.ndarray) -> np.ndarray:
        """Reduced-vector indices ``(U, width)`` of the blocks at positions ``u``."""
        return np.concatenate([lay.offset + u[:, None] * lay.stride + np.arange(lay.df)
                               for lay, _ in self.parts], axis=1)

    def row_blocks(self, u: np.ndarray, rb: int) -> np.ndarray:
        """Indices ``(U, width / rb)`` of the ``rb``-row sub-blocks at positions ``u``
        (every ``rb`` consecutive columns of a plan are contiguous and aligned)."""
        return self.columns(u)[:, ::rb] // rb


@dataclass
class PairPlan:
    """A reduced-reduced or reduced-eliminated pair of slot plans of one term."""

    a: SlotPlan
    b: SlotPlan
    seg: Segments
    nb: int  # pair key = a.pos * nb + b.pos
    #: the chunks' sums land in disjoint slices covering the accumulator: each row is
    #: written once, so the accumulator needs no zeroing and may be a recycled buffer
    partition: bool = False


@dataclass
class TermPlan:
    block: ResidualBlock
    reduced: list[SlotPlan]
    elim: SlotPlan | None
    dims: list[int]  # tangent dimension of each slot's group (the family's Jacobian widths)
    rr_pairs: list[PairPlan] = field(default_factory=list)
    re_pairs: list[PairPlan] = field(default_factory=list)
    elim_seg: Segments | None = None
    chunks: list = field(default_factory=list)  # [chunks.Chunk]: rows evaluated together
    #: tiny path: reduced column of each Jacobian column, -1 if not free (:func:`_dense_index`)
    dense: np.ndarray | None = None
    #: the term's one plan spans every reduced column in order (one pose, ICP): its
    #: Jacobian is the dense one as it is, in every chunk (``dense`` then has no rows)
    dense_whole: bool = False
    stacked: object = None  # stacked.StackedPlan when the term takes the stacked path


@dataclass
class ElimPlan:
    """An eliminated group and the BSR patterns of its coupling ``W`` (reduced x eliminated)
    and ``W^T``. ``W`` is stored as ``r x d`` sub-blocks (``r`` divides every reduced block
    size); ``sub_pos`` is the eliminated block of each sub-block."""

    group: GroupLayout
    w: BsrPattern | None = None
    wt: BsrPattern | None = None
    sub_pos: np.ndarray | None = None
    sub_row: np.ndarray | None = None  # (K,) row block of each sub-block
    pairs: object = None  # schur_dense.PairProducts, made on the first pair elimination
    _sub_seg: Segments | None = None
    _row_seg: Segments | None = None

    def sub_segments(self) -> Segments:
        """Sums of the sub-blocks per eliminated block (sorted once, on first use)."""
        if self._sub_seg is None:
            self._sub_seg = Segments(self.sub_pos)
        return self._sub_seg

    def row_segments(self) -> Segments:
        """Sums of the sub-blocks per row block of ``W`` (sorted once, on first use)."""
        if self._row_seg is None:
            self._row_seg = Segments(self.sub_row)
        return self._row_seg


def _slot_plans(layouts: dict, rb: ResidualBlock) -> tuple[list[SlotPlan], SlotPlan | None]:
    reduced: list[SlotPlan] = []
    elim = None
    for j, gname in enumerate(rb.groups):
        lay = layouts[gname]
        if lay.size == 0:
            continue
        if lay.n_free == len(lay.block_pos):  # every block free: rank = block index
            pos, vmask = rb.indices[j], None
        else:
            pos_full = lay.block_pos[rb.indices[j]]
            valid = pos_full >= 0
            pos = np.maximum(pos_full, 0)
            vmask = None if valid.all() else valid
        if lay.eliminate:
            elim = SlotPlan([(lay, j)], pos, vmask)
            continue
        for plan in reduced:  # merge with a slot of another group read at the same positions
            same_valid = (plan.valid is None and vmask is None) or (
                plan.valid is not None and vmask is not None
                and np.array_equal(plan.valid, vmask))
            # (one group in two slots stays two plans: merged, its columns would repeat in
            # a row, and a scattered += of the gradient keeps only one of their sums)
            if same_valid and np.array_equal(plan.pos, pos) and all(
                    part is not lay for part, _ in plan.parts):
                plan.parts.append((lay, j))
                break
        else:
            reduced.append(SlotPlan([(lay, j)], pos, vmask))
    return reduced, elim


class Structure:
    """Layout of free variables and the fixed sparsity of ``J^T J`` for a problem.

    Reduced groups that are always read together at the same positions (a camera's pose
    and its intrinsics) form a *unit* and are interleaved block by block, so each camera's
    coordinates are contiguous and the Schur complement works on whole camera blocks.

    ``schur=False`` keeps every group in the reduced vector (no elimination) and assembles
    ``A`` as a dense array: the engine's path for tiny problems, where the per-iteration
    cost of the block machinery exceeds the arithmetic. There every term, chunked or not, is
    summed straight into the dense ``A`` and ``g`` and sets up no segments, pairs or sum
    plans (:func:`_dense_term`) unless ``dense_jacobians`` is False (block sums, for tests).
    """

    def __init__(self, problem: Problem, schur: bool = True,
                 dense_jacobians: bool = True) -> None:
        self.dense_a = not schur
        self.layouts: dict[str, GroupLayout] = {n: _layout(g, schur)
                                                for n, g in problem.groups.items()}
        plans = [_slot_plans(self.layouts, rb) for rb in problem.residual_blocks]
        self.units = _units(self.layouts, [red for red, _ in plans])
        offset = 0
        for unit in self.units:  # list of group names, interleaved
            stride = sum(self.layouts[n].df for n in unit)
            inner = 0
            for n in unit:
                lay = self.layouts[n]
                lay.offset, lay.stride = offset + inner, stride
                inner += lay.df
            offset += stride * self.layouts[unit[0]].n_free
        self.n_reduced = offset
        self.reduced_names = [n for n, lay in self.layouts.items() if not lay.eliminate]
        self.elim: dict[str, ElimPlan] = {
            n: ElimPlan(lay) for n, lay in self.layouts.items()
            if lay.eliminate and lay.size > 0}
        self.row_block = int(np.gcd.reduce(
            [sum(self.layouts[n].df for n in unit) for unit in self.units] or [1]))
        self.n_eliminated = sum(p.group.size for p in self.elim.values())
        self.s_pattern = None  # schur_sparse.ReducedPattern, made when first needed
        self.buffer_pool: list[np.ndarray] = []  # accumulators of discarded linearizations
        self.banded = None  # schur_sparse.BandedCholesky, when the "sparse" solver uses it
        self.terms: list[TermPlan] = []
        self._a_pattern: CsrPattern | None = None
        w_entries: dict[str, tuple[list, list]] = {n: ([], []) for n in self.elim}
        dense = self.dense_a and dense_jacobians
        for rb, (red, el) in zip(problem.residual_blocks, plans, strict=True):
            tp = TermPlan(rb, red, el, [self.layouts[g].manifold.tangent_dim
                                        for g in rb.groups])
            self.terms.append(tp)
            if dense:  # (no group is eliminated on this path)
                _dense_term(tp, self.n_reduced)
                continue
            for plan in red:
                plan.grad = Segments(plan.pos, plan.group.n_free)
            for pa in red:
                for pb in red:
                    nb = max(pb.group.n_free, 1)
                    seg = Segments(pa.pos * nb + pb.pos, pa.group.n_free * nb)
                    tp.rr_pairs.append(PairPlan(pa, pb, seg, nb))
            if el is not None:
                tp.elim_seg = Segments(el.pos, el.group.n_free)
                ne = el.group.n_free
                for pa in red:
                    seg = Segments(pa.pos * ne + el.pos, pa.group.n_free * ne)
                    brow = pa.row_blocks(seg.keys // ne, self.row_block)
                    rows, cols = w_entries[el.group.name]
                    tp.re_pairs.append(PairPlan(pa, el, seg, ne))
                    rows.append(brow.ravel())
                    cols.append(np.repeat(seg.keys % ne, brow.shape[1]))
        n = self.n_reduced
        nrb = n // self.row_block
        for name, plan in self.elim.items():
            rows, cols = w_entries[name]
            brow = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            bcol = np.concatenate(cols) if cols else np.zeros(0, np.int64)
            d, p = plan.group.df, plan.group.n_free
            plan.w = BsrPattern(brow, bcol, (nrb, p), self.row_block, d)
            plan.wt = BsrPattern(bcol, brow, (p, nrb), d, self.row_block)
            plan.sub_pos = bcol
            plan.sub_row = brow
        for tp in self.terms:
            if tp.chunks:  # a dense term, set up already
                continue
            tp.chunks = plan_chunks(tp)
            tp.stacked = plan_stacked(tp)

    @property
    def a_pattern(self) -> CsrPattern:
        """The pattern of ``A``, in the order of the terms' ``rr_pairs``, every diagonal
        entry included (zero-valued when unobserved, so damping always applies); formed on
        first use (a tiny problem whose Jacobians are dense never needs it)."""
        if self._a_pattern is None:
            rows, cols = [], []
            for tp in self.terms:
                for pr in tp.rr_pairs:
                    ra = pr.a.columns(pr.seg.keys // pr.nb)
                    cb = pr.b.columns(pr.seg.keys % pr.nb)
                    shape = (len(pr.seg.keys), ra.shape[1], cb.shape[1])
                    rows.append(np.broadcast_to(ra[:, :, None], shape).ravel())
                    cols.append(np.broadcast_to(cb[:, None, :], shape).ravel())
            n = self.n_reduced
            diag = np.arange(n, dtype=np.int64)
            self._a_pattern = CsrPattern(np.concatenate(rows + [diag]),
                                         np.concatenate(cols + [diag]), (n, n))
        return self._a_pattern


def _dense_term(tp: TermPlan, n: int) -> None:
    """Set up a term of the tiny path, summed straight into the dense ``A`` and ``g``
    (:func:`_dense_index`): its chunks carry rows, family, indices and validity only (no
    segments, pairs or entries in ``A``'s pattern)."""
    tp.dense = _dense_index(tp, n)
    tp.chunks = dense_chunks(tp)


def _dense_index(tp: TermPlan, n: int) -> np.ndarray:
    """The reduced column ``(N, sum(dims))`` of every column of the family's Jacobians
    side by side, -1 where a coordinate or a block is not free (what
    :func:`.blocks.dense_gram` sums from); ``(0, sum(dims))`` with ``tp.dense_whole`` set
    when the term's one plan is the dense Jacobian itself (one pose, ICP: two products)."""
    offsets = np.concatenate([[0], np.cumsum(tp.dims)])
    if len(tp.reduced) == 1 and _spans_all(tp.reduced[0], n):
        tp.dense_whole = True
        return np.zeros((0, offsets[-1]), np.int64)
    cols = np.full((tp.block.num_residuals, offsets[-1]), -1, np.int64)
    for plan in tp.reduced:
        c = plan.columns(plan.pos)  # (N, width), the plan's parts in order
        if plan.valid is not None:
            c[~plan.valid] = -1
        start = 0
        for lay, j in plan.parts:
            cols[:, offsets[j] + lay.free_coords] = c[:, start:start + lay.df]
            start += lay.df
    return cols


def _spans_all(plan: SlotPlan, n: int) -> bool:
    """Are the plan's columns ``0..n-1`` in order for every row (one free block in each of
    its groups, which fill the reduced vector)?"""
    return plan.valid is None and plan.width == n and all(
        lay.n_free == 1 for lay, _ in plan.parts) and np.array_equal(
        plan.columns(np.zeros(1, np.int64))[0], np.arange(n))


def _units(layouts: dict, plans: list[list[SlotPlan]]) -> list[list[str]]:
    """Group reduced groups into interleaved units.

    Groups form a unit when every slot plan that reads any of them reads exactly all of
    them, in the same order, and they have the same number of free blocks; every other
    group is a unit of its own.
    """
    seen: dict[str, tuple[str, ...] | None] = {}
    for red in plans:
        for plan in red:
            names = tuple(lay.name for lay, _ in plan.parts)
            for n in names:
                if n in seen and seen[n] != names:
                    seen[n] = None  # read in different combinations: not a unit
                elif n not in seen:
                    seen[n] = names
    units, done = [], set()
    for n, lay in layouts.items():
        if lay.eliminate or lay.size == 0 or n in done:
            continue
        combo = seen.get(n)
        ok = (combo is not None and len(combo) > 1 and len(set(combo)) == len(combo)
              and all(seen.get(m) == combo for m in combo)
              and len({layouts[m].n_free for m in combo}) == 1)
        unit = list(combo) if ok else [n]
        units.append(unit)
        done.update(unit)
    return units


def free_size(g: ParameterGroup) -> int:
    """Number of free tangent coordinates of a group."""
    return _layout(g, False).size


def _layout(g: ParameterGroup, schur: bool = True) -> GroupLayout:
    free_coords = np.flatnonzero(~g.constant_coords)
    free_blocks = np.flatnonzero(~g.constant_blocks)
    if free_coords.size == 0:
        free_blocks = free_blocks[:0]
    pos = -np.ones(g.num_blocks, dtype=np.int64)
    pos[free_blocks] = np.arange(len(free_blocks))
    return GroupLayout(g.name, g.manifold, g.eliminate and schur, free_coords, pos, free_blocks,
                       0, len(free_coords))


def check_family_output(rb: ResidualBlock, r: np.ndarray, jac: list | None,
                        dims: list[int], rows: int | None = None) -> None:
    """Raise :class:`InputError` if a family returned arrays of the wrong shape (``rows``:
    the rows evaluated, by default all of the block's)."""
    m = rb.family.residual_dim
    n = rb.num_residuals if rows is None else rows
    if r.shape == (n, m) and (jac is None or [j.shape for j in jac] == [(n, m, d) for d in dims]):
        return  # the usual case, in one comparison
    name = type(rb.family).__name__
    if r.shape != (n, m):
        raise InputError(f"{name}.evaluate returned residuals {r.shape}, expected {(n, m)}")
    if jac is not None:
        if len(jac) != len(dims):
            raise InputError(f"{name}.evaluate returned {len(jac)} Jacobians, expected {len(dims)}")
        for j, (jj, d) in enumerate(zip(jac, dims, strict=True)):
            if jj.shape != (n, m, d):
                raise InputError(f"{name}.evaluate Jacobian {j} is {jj.shape}, "
                                 f"expected {(n, m, d)}")


# chunks builds on this module's plans, so it is imported once they are defined; at import
# time, not inside the first solve (where, without a .pyc, its compilation took 11-17 ms)
from .chunks import dense_chunks, plan_chunks  # noqa: E402
from .stacked import plan_stacked  # noqa: E402
