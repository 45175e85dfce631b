"""Compile a :class:`Problem` into index structures reused by every iteration.

The sparsity pattern never changes during a solve, so every sort, unique-key search and
CSR pattern is computed once here; each iteration then only multiplies Jacobian blocks and
sums them with ``np.add.reduceat`` / ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from .manifold import Manifold
from .problem import ParameterGroup, Problem, ResidualBlock


@dataclass
class GroupLayout:
    """Where a group's free coordinates live: reduced vector offset or eliminated group."""

    name: str
    manifold: Manifold
    eliminate: bool
    free_coords: np.ndarray  # (df,) tangent coordinates that vary
    block_pos: np.ndarray  # (M,) rank among free blocks, -1 for constant blocks
    free_blocks: np.ndarray  # (n_free,) block indices that vary
    offset: int = 0  # start in the reduced vector (non-eliminated groups)

    @property
    def df(self) -> int:
        return len(self.free_coords)

    @property
    def n_free(self) -> int:
        return len(self.free_blocks)

    @property
    def size(self) -> int:
        return self.df * self.n_free


def take_rows(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``a[idx]`` along axis 0, several times faster than fancy indexing for ``ndim > 2``."""
    if a.ndim <= 2:
        return np.take(a, idx, axis=0)
    return np.take(a.reshape(a.shape[0], -1), idx, axis=0).reshape((len(idx),) + a.shape[1:])


class Segments:
    """Sum rows of ``(N, ...)`` arrays that share a key; the key order is computed once."""

    def __init__(self, keys: np.ndarray) -> None:
        n = len(keys)
        self.single = n > 0 and bool(np.all(keys == keys[0]))
        if self.single:
            self.keys = keys[:1].copy()
            self.order = None
            self.starts = None
        else:
            if n and np.all(keys[1:] >= keys[:-1]):
                self.order, k = None, keys  # already sorted: no gather
            else:
                self.order = np.argsort(keys, kind="stable")
                k = keys[self.order]
            self.starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]]) if n else np.zeros(0, int)
            self.keys = k[self.starts] if n else k
            if len(self.starts) == n and self.order is None:
                self.starts = None  # sorted and unique: the sum is the identity

    def sum(self, values: np.ndarray) -> np.ndarray:
        if self.single:
            return values.sum(axis=0, keepdims=True)
        if self.starts is None:
            return values
        v = values if self.order is None else take_rows(values, self.order)
        return np.add.reduceat(v, self.starts, axis=0)

    def sum_products(self, ja: np.ndarray, jb: np.ndarray) -> np.ndarray:
        """Per key ``sum_n ja[n]^T jb[n]`` for ``ja (N, m, a)``, ``jb (N, m, b)`` -> ``(U, a, b)``."""
        if self.single:
            n, m, a = ja.shape
            return (ja.reshape(n * m, a).T @ jb.reshape(n * m, jb.shape[2]))[None]
        return self.sum(np.matmul(ja.transpose(0, 2, 1), jb))


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

    def build(self, values: np.ndarray) -> sp.csr_matrix:
        data = np.bincount(self.map, weights=values, minlength=self.nnz)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)


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
        self.nnzb = len(ukey)
        self.indices = (ukey % nblocks[1]).astype(np.int32)
        self.indptr = np.zeros(nblocks[0] + 1, dtype=np.int32)
        np.cumsum(np.bincount(ukey // nblocks[1], minlength=nblocks[0]), out=self.indptr[1:])

    def build(self, sub_blocks: np.ndarray) -> sp.bsr_matrix:
        """BSR matrix from ``(K, r, c)`` sub-blocks in the order given at construction."""
        if self.unique:
            data = take_rows(sub_blocks, self.gather)
        else:
            data = np.zeros((self.nnzb, self.r, self.c))
            np.add.at(data, self.map, sub_blocks)
        return sp.bsr_matrix((data, self.indices, self.indptr), shape=self.shape)


def _block_entries(row_off: np.ndarray, a: int, col_off: np.ndarray, b: int):
    """Flat (row, col) of every entry of blocks at ``row_off``/``col_off`` of size ``a x b``."""
    rows = (row_off[:, None, None] + np.arange(a)[None, :, None]) + np.zeros((1, 1, b), np.int64)
    cols = (col_off[:, None, None] + np.arange(b)[None, None, :]) + np.zeros((1, a, 1), np.int64)
    return rows.ravel(), cols.ravel()


@dataclass
class SlotPlan:
    group: GroupLayout
    slot: int
    pos: np.ndarray  # (N,) free-block rank, clipped to >= 0
    valid: np.ndarray | None  # (N,) bool, None when all valid
    grad: Segments = None


@dataclass
class PairPlan:
    """A reduced-reduced or reduced-eliminated slot pair of one term."""

    a: SlotPlan
    b: SlotPlan
    seg: Segments
    piece: int  # index of this pair's entries in the target pattern's concatenation


@dataclass
class TermPlan:
    block: ResidualBlock
    reduced: list[SlotPlan]
    elim: SlotPlan | None
    rr_pairs: list[PairPlan] = field(default_factory=list)
    re_pairs: list[PairPlan] = field(default_factory=list)
    elim_seg: Segments | None = None


@dataclass
class ElimPlan:
    """An eliminated group and the BSR patterns of its coupling ``W`` (reduced x eliminated)
    and ``W^T``. ``W`` is stored as ``r x d`` sub-blocks (``r`` divides every reduced block
    size); ``sub_pos`` is the eliminated block of each sub-block."""

    group: GroupLayout
    w: BsrPattern | None = None
    wt: BsrPattern | None = None
    sub_pos: np.ndarray | None = None


class Structure:
    """Layout of free variables and the fixed sparsity of ``J^T J`` for a problem."""

    def __init__(self, problem: Problem) -> None:
        self.layouts: dict[str, GroupLayout] = {}
        offset = 0
        for name, g in problem.groups.items():
            lay = _layout(g)
            if not g.eliminate:
                lay.offset = offset
                offset += lay.size
            self.layouts[name] = lay
        self.n_reduced = offset
        self.reduced_names = [n for n, lay in self.layouts.items() if not lay.eliminate]
        self.elim: dict[str, ElimPlan] = {
            n: ElimPlan(lay) for n, lay in self.layouts.items()
            if lay.eliminate and lay.size > 0}
        self.row_block = int(np.gcd.reduce([lay.df for lay in self.layouts.values()
                                            if not lay.eliminate and lay.size > 0] or [1]))
        self.n_eliminated = sum(p.group.size for p in self.elim.values())
        self.terms: list[TermPlan] = []
        a_rows, a_cols = [], []
        w_entries: dict[str, tuple[list, list]] = {n: ([], []) for n in self.elim}
        for rb in problem.residual_blocks:
            red, el = [], None
            for j, gname in enumerate(rb.groups):
                lay = self.layouts[gname]
                if lay.size == 0:
                    continue
                pos_full = lay.block_pos[rb.indices[j]]
                valid = pos_full >= 0
                plan = SlotPlan(lay, j, np.maximum(pos_full, 0), None if valid.all() else valid)
                if lay.eliminate:
                    el = plan
                else:
                    plan.grad = Segments(plan.pos)
                    red.append(plan)
            tp = TermPlan(rb, red, el)
            for pa in red:
                for pb in red:
                    seg = Segments(pa.pos * max(pb.group.n_free, 1) + pb.pos)
                    ua, ub = seg.keys // max(pb.group.n_free, 1), seg.keys % max(pb.group.n_free, 1)
                    r, c = _block_entries(pa.group.offset + ua * pa.group.df, pa.group.df,
                                          pb.group.offset + ub * pb.group.df, pb.group.df)
                    tp.rr_pairs.append(PairPlan(pa, pb, seg, len(a_rows)))
                    a_rows.append(r)
                    a_cols.append(c)
            if el is not None:
                tp.elim_seg = Segments(el.pos)
                ne = el.group.n_free
                for pa in red:
                    seg = Segments(pa.pos * ne + el.pos)
                    ua, ue = seg.keys // ne, seg.keys % ne
                    k = pa.group.df // self.row_block
                    brow = ((pa.group.offset + ua * pa.group.df) // self.row_block)[:, None] \
                        + np.arange(k)
                    rows, cols = w_entries[el.group.name]
                    tp.re_pairs.append(PairPlan(pa, el, seg, len(rows)))
                    rows.append(brow.ravel())
                    cols.append(np.repeat(ue, k))
            self.terms.append(tp)
        n = self.n_reduced
        # every diagonal entry exists (zero-valued when unobserved) so damping always applies
        diag = np.arange(n, dtype=np.int64)
        self.a_pattern = CsrPattern(np.concatenate(a_rows + [diag]),
                                    np.concatenate(a_cols + [diag]), (n, n))
        nrb = n // self.row_block
        for name, plan in self.elim.items():
            rows, cols = w_entries[name]
            brow = np.concatenate(rows) if rows else np.zeros(0, np.int64)
            bcol = np.concatenate(cols) if cols else np.zeros(0, np.int64)
            d, p = plan.group.df, plan.group.n_free
            plan.w = BsrPattern(brow, bcol, (nrb, p), self.row_block, d)
            plan.wt = BsrPattern(bcol, brow, (p, nrb), d, self.row_block)
            plan.sub_pos = bcol


def _layout(g: ParameterGroup) -> GroupLayout:
    free_coords = np.flatnonzero(~g.constant_coords)
    free_blocks = np.flatnonzero(~g.constant_blocks)
    if free_coords.size == 0:
        free_blocks = free_blocks[:0]
    pos = -np.ones(g.num_blocks, dtype=np.int64)
    pos[free_blocks] = np.arange(len(free_blocks))
    return GroupLayout(g.name, g.manifold, g.eliminate, free_coords, pos, free_blocks)


def check_family_output(rb: ResidualBlock, r: np.ndarray, jac: list | None,
                        dims: list[int]) -> None:
    """Raise :class:`InputError` if a family returned arrays of the wrong shape."""
    name = type(rb.family).__name__
    m = rb.family.residual_dim
    if r.shape != (rb.num_residuals, m):
        raise InputError(f"{name}.evaluate returned residuals {r.shape}, "
                         f"expected {(rb.num_residuals, m)}")
    if jac is not None:
        if len(jac) != len(dims):
            raise InputError(f"{name}.evaluate returned {len(jac)} Jacobians, expected {len(dims)}")
        for j, (jj, d) in enumerate(zip(jac, dims, strict=True)):
            if jj.shape != (rb.num_residuals, m, d):
                raise InputError(f"{name}.evaluate Jacobian {j} is {jj.shape}, "
                                 f"expected {(rb.num_residuals, m, d)}")
