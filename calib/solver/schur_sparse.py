"""The reduced matrix ``S = A + mu D - W C^-1 W^T`` as a block-sparse (BSR) matrix on a
fixed pattern, and its banded Cholesky factorisation.

The pattern is the union of ``A``'s blocks and of the pairs of row blocks that share an
eliminated block (:class:`.schur_dense.PairProducts`, both triangles); it is computed once,
with the flat position in the BSR data of every entry of ``A``, of the diagonal and of every
pair block, so each iteration only scatters the pair products (no sparse-sparse product:
``scipy``'s ``bsr_matmat`` took 1.9 of 2.3 s per reduction on 1,000 cameras / 500k
observations, the pair products 0.3 s).

Sequential camera graphs (a video, a ring of cameras) have narrow bands once ordered by
reverse Cuthill-McKee: :class:`BandedCholesky` factors ``S`` in LAPACK's band storage
(``pbtrf``), about ``n * bandwidth^2`` flops, 40 ms on the 9,000-unknown synthetic problem
where SuperLU took 2.5 s and block-Jacobi CG up to its 500-iteration cap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .lazy import scipy_linalg, scipy_sparse
from .schur_dense import PairProducts
from .structure import Structure

if TYPE_CHECKING:
    import scipy.sparse as sp


def pair_products(structure: Structure, name: str) -> PairProducts | None:
    """The (cached) pair plan of eliminated group ``name``; ``None`` when its ``W`` has
    repeated sub-blocks (the general path handles those)."""
    plan = structure.elim[name]
    if plan.w is None or not plan.w.unique:
        return None
    if plan.pairs is None:
        plan.pairs = PairProducts(plan.w, plan.sub_pos)
    return plan.pairs


class ReducedPattern:
    """Block pattern of ``S`` (``r x r`` blocks, ``r = structure.row_block``) and the data
    positions of ``A``'s entries, the diagonal and each eliminated group's pair blocks."""

    def __init__(self, structure: Structure, pairs: dict) -> None:
        n, r = structure.n_reduced, structure.row_block
        nrb = n // r
        a = structure.a_pattern
        a_rows = np.repeat(np.arange(n), np.diff(a.indptr))
        a_key = (a_rows // r) * nrb + a.indices // r
        keys = [a_key]
        for pp in pairs.values():
            keys += [pp.bi * nrb + pp.bj, pp.bj * nrb + pp.bi]
        ukey = np.unique(np.concatenate(keys))
        self.n, self.r, self.nrb, self.nnzb = n, r, nrb, len(ukey)
        self.brow, self.bcol = ukey // nrb, ukey % nrb
        self.indices = self.bcol.astype(np.int32)
        self.indptr = np.zeros(nrb + 1, dtype=np.int32)
        np.cumsum(np.bincount(self.brow, minlength=nrb), out=self.indptr[1:])
        rr = r * r
        self.a_index = np.searchsorted(ukey, a_key) * rr + (a_rows % r) * r + a.indices % r
        diag = np.arange(n)
        self.diag_index = (np.searchsorted(ukey, (diag // r) * (nrb + 1)) * rr
                           + (diag % r) * (r + 1))
        self.pair_slots = {
            name: (np.searchsorted(ukey, pp.bi * nrb + pp.bj),
                   np.searchsorted(ukey, pp.bj[pp.off] * nrb + pp.bi[pp.off]), pp.off)
            for name, pp in pairs.items()}

    def build(self, A: sp.csr_matrix, damping: np.ndarray, products: dict) -> sp.bsr_matrix:
        """``S = A + diag(damping) - sum_e products[e]`` with ``products[e] (Q, r, r)`` the
        pair blocks of eliminated group ``e`` (upper triangle, as :meth:`PairProducts.products`)."""
        data = np.zeros(self.nnzb * self.r * self.r)
        data[self.a_index] = A.data
        data[self.diag_index] += damping
        blocks = data.reshape(self.nnzb, self.r, self.r)
        for name, out in products.items():
            upper, lower, off = self.pair_slots[name]
            blocks[upper] -= out  # slots are distinct within one fancy-indexed update
            blocks[lower] -= out[off].transpose(0, 2, 1)
        return scipy_sparse().bsr_matrix((blocks, self.indices, self.indptr),
                                         shape=(self.n, self.n))


class BandedCholesky:
    """Solve ``S x = b`` for ``S`` on a :class:`ReducedPattern` by a Cholesky factorisation in
    band storage after a reverse Cuthill-McKee ordering of the block graph."""

    def __init__(self, pattern: ReducedPattern) -> None:
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        r, nrb = pattern.r, pattern.nrb
        graph = scipy_sparse().csr_matrix(
            (np.ones(pattern.nnzb), (pattern.brow, pattern.bcol)), shape=(nrb, nrb))
        order = reverse_cuthill_mckee(graph, symmetric_mode=True)
        rank = np.empty(nrb, dtype=np.int64)
        rank[order] = np.arange(nrb)
        width = int(np.max(np.abs(rank[pattern.brow] - rank[pattern.bcol]), initial=0))
        self.bandwidth = (width + 1) * r - 1  # sub-diagonals
        self.n = n = pattern.n
        self.perm = (order[:, None] * r + np.arange(r)).ravel()  # new index -> old index
        ii, jj = np.divmod(np.arange(r * r), r)
        new_row = (rank[pattern.brow][:, None] * r + ii).ravel()
        new_col = (rank[pattern.bcol][:, None] * r + jj).ravel()
        lower = new_row >= new_col
        self.src = np.flatnonzero(lower)
        self.dst = (new_row[lower] - new_col[lower]) * n + new_col[lower]

    def flops(self) -> float:
        """Approximate cost of one factorisation."""
        return float(self.n) * (self.bandwidth + 1) ** 2

    def solve(self, S: sp.bsr_matrix, b: np.ndarray) -> np.ndarray:
        """``x`` with ``S x = b``; raises ``np.linalg.LinAlgError`` if ``S`` is not
        positive definite."""
        ab = np.zeros((self.bandwidth + 1, self.n))
        ab.ravel()[self.dst] = S.data.ravel()[self.src]
        sla = scipy_linalg()
        c = sla.cholesky_banded(ab, lower=True, check_finite=False)
        x = sla.cho_solve_banded((c, True), b[self.perm], check_finite=False)
        out = np.empty_like(x)
        out[self.perm] = x
        return out


def reduced_pattern(structure: Structure) -> ReducedPattern | None:
    """The (cached) block pattern of ``S``, or ``None`` when an eliminated group has a
    pattern with repeated sub-blocks."""
    if structure.s_pattern is None:
        pairs = {}
        for name in structure.elim:
            pp = pair_products(structure, name)
            if pp is None:
                return None
            pairs[name] = pp
        structure.s_pattern = ReducedPattern(structure, pairs)
    return structure.s_pattern
