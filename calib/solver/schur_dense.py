"""The Schur product ``W C^-1 W^T`` straight into a dense reduced matrix.

With ``C = L L^T`` (per eliminated block) and ``V = W L^-T``, ``W C^-1 W^T = V V^T``: a sum,
over eliminated blocks ``p``, of ``V_ip V_jp^T`` for every pair of row blocks ``i <= j``
that share ``p``. The pairs ``(i, j)`` and the sub-blocks that meet in each are fixed by
the sparsity pattern, so they are listed once (:class:`PairProducts`); each iteration then
forms every ``(i, j)`` block by the compiled :func:`.blocks.pair_products`, which replaces
a general sparse-sparse product (``scipy``'s ``bsr_matmat``, measured 3x slower on BAL
problem-49) and yields only the upper triangle.
"""

from __future__ import annotations

import numpy as np

from . import blocks
from .structure import BsrPattern


class PairProducts:
    """Pairs of row blocks ``i <= j`` of ``W`` that share an eliminated block.

    ``w``: the pattern of ``W`` (unique sub-blocks); ``sub_pos (K,)``: the eliminated block
    of each sub-block in the order of ``w_sub``. ``ta``, ``tb`` ``(T,)``: the two sub-blocks
    of each product, sorted by pair; ``bounds (Q+1,)`` the products of each pair;
    ``bi``, ``bj`` ``(Q,)`` the row blocks of each pair.
    """

    def __init__(self, w: BsrPattern, sub_pos: np.ndarray) -> None:
        self._vt = None  # (K, d, r) buffer of V^T, reused by every call (one solve's own)
        k = len(sub_pos)
        ukey_rows = np.repeat(np.arange(len(w.indptr) - 1), np.diff(w.indptr))
        row = ukey_rows[w.map]  # row block of each sub-block
        order = np.lexsort((row, sub_pos))  # by eliminated block, then row block
        pos = sub_pos[order]
        first = np.flatnonzero(np.concatenate(([True], pos[1:] != pos[:-1]))) if k else \
            np.zeros(0, np.int64)
        ends = np.repeat(np.append(first[1:], k), np.diff(np.append(first, k)))
        counts = ends - np.arange(k)  # partners b >= a within the same eliminated block
        ta = np.repeat(np.arange(k), counts)
        start = np.repeat(np.cumsum(counts) - counts, counts)
        tb = ta + (np.arange(len(ta)) - start)
        ta, tb = order[ta], order[tb]
        nrb = len(w.indptr) - 1
        key = row[ta] * nrb + row[tb]
        srt = np.argsort(key, kind="stable")
        self.ta, self.tb, key = ta[srt].astype(np.int64), tb[srt].astype(np.int64), key[srt]
        heads = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) \
            else np.zeros(0, np.int64)
        self.bounds = np.append(heads, len(key)).astype(np.int64)
        self.bi, self.bj = key[heads] // nrb, key[heads] % nrb
        self.off = self.bi != self.bj
        self.nrb = nrb

    def products(self, w_sub: np.ndarray, l_inv: np.ndarray,
                 sub_pos: np.ndarray) -> np.ndarray:
        """The blocks ``(W C^-1 W^T)_ij`` ``(Q, r, r)`` of every pair ``(bi, bj)``, from
        ``w_sub (K, r, d)`` the sub-blocks of ``W`` and ``l_inv (P, d, d)`` the inverse
        Cholesky factors of ``C``."""
        k, r, d = w_sub.shape
        if self._vt is None or self._vt.shape != (k, d, r):
            self._vt = np.empty((k, d, r))  # kept: a fresh one faults 100 MB in per call
        return blocks.pair_products(w_sub, l_inv, sub_pos, self.ta, self.tb, self.bounds,
                                    self._vt)

    def subtract_from(self, S: np.ndarray, w_sub: np.ndarray, l_inv: np.ndarray,
                      sub_pos: np.ndarray) -> None:
        """``S -= W C^-1 W^T`` in place: ``S (n, n)`` dense (arguments as :meth:`products`)."""
        out = self.products(w_sub, l_inv, sub_pos)
        r = out.shape[1]
        s4 = S.reshape(self.nrb, r, self.nrb, r)
        s4[self.bi, :, self.bj, :] -= out
        s4[self.bj[self.off], :, self.bi[self.off], :] -= out[self.off].transpose(0, 2, 1)
