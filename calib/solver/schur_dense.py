"""The Schur product ``W C^-1 W^T`` straight into a dense reduced matrix.

With ``C = L L^T`` (per eliminated block) and ``V = W L^-T``, ``W C^-1 W^T = V V^T``: a sum,
over eliminated blocks ``p``, of ``V_ip V_jp^T`` for every pair of row blocks ``i <= j``
that share ``p``. The pairs ``(i, j)`` and the sub-blocks that meet in each are fixed by
the sparsity pattern, so they are listed once (:class:`PairProducts`); each iteration then
gathers the ``V`` sub-blocks pair by pair and forms every ``(i, j)`` block with one GEMM of
inner dimension ``d * (shared blocks)``, which replaces a general sparse-sparse product
(``scipy``'s ``bsr_matmat``, measured 3x slower on BAL problem-49) and yields only the
upper triangle.
"""

from __future__ import annotations

import numpy as np

from .structure import BsrPattern, take_rows


class PairProducts:
    """Pairs of row blocks ``i <= j`` of ``W`` that share an eliminated block.

    ``w``: the pattern of ``W`` (unique sub-blocks); ``sub_pos (K,)``: the eliminated block
    of each sub-block in the order of ``w_sub``. ``ta``, ``tb`` ``(T,)``: the two sub-blocks
    of each product, sorted by pair; ``bounds (Q+1,)`` the products of each pair;
    ``bi``, ``bj`` ``(Q,)`` the row blocks of each pair.
    """

    #: products gathered at a time (two ``(CHUNK, d, r)`` buffers: 440 KB for 3 x 9 blocks)
    CHUNK = 1024

    def __init__(self, w: BsrPattern, sub_pos: np.ndarray) -> None:
        self._vt = None  # (K, d * r) buffer of V^T, reused by every call
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
        self.ta, self.tb, key = ta[srt], tb[srt], key[srt]
        heads = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) \
            else np.zeros(0, np.int64)
        self.bounds = np.append(heads, len(key))
        self.bi, self.bj = key[heads] // nrb, key[heads] % nrb
        self.off = self.bi != self.bj
        self.nrb = nrb
        # pairs in runs of about CHUNK products: each run's gathered blocks stay in cache
        cut = np.searchsorted(self.bounds, np.arange(0, len(key), self.CHUNK), side="right")
        self.runs = np.unique(np.append(cut - 1, len(self.bi)))

    def products(self, w_sub: np.ndarray, l_inv: np.ndarray,
                 sub_pos: np.ndarray) -> np.ndarray:
        """The blocks ``(W C^-1 W^T)_ij`` ``(Q, r, r)`` of every pair ``(bi, bj)``, from
        ``w_sub (K, r, d)`` the sub-blocks of ``W`` and ``l_inv (P, d, d)`` the inverse
        Cholesky factors of ``C``."""
        k, r, d = w_sub.shape
        if self._vt is None or self._vt.shape != (k, d * r):
            self._vt = np.empty((k, d * r))  # kept: a fresh one faults 100 MB in per call
        vt = self._vt
        vt3 = vt.reshape(k, d, r)
        for lo in range(0, k, self.CHUNK * 16):  # V^T = L^-1 W^T block by block, (K, d, r)
            hi = min(k, lo + self.CHUNK * 16)
            np.matmul(take_rows(l_inv, sub_pos[lo:hi]), w_sub[lo:hi].transpose(0, 2, 1),
                      out=vt3[lo:hi])
        out = np.empty((len(self.bi), r, r))
        bounds, runs = self.bounds, self.runs
        longest = int(np.max(bounds[runs[1:]] - bounds[runs[:-1]], initial=0))
        buf_a, buf_b = np.empty((longest, d * r)), np.empty((longest, d * r))
        for lo_q, hi_q in zip(runs[:-1], runs[1:], strict=True):
            t0, t1 = bounds[lo_q], bounds[hi_q]
            a = np.take(vt, self.ta[t0:t1], axis=0, out=buf_a[:t1 - t0]).reshape(-1, r)
            b = np.take(vt, self.tb[t0:t1], axis=0, out=buf_b[:t1 - t0]).reshape(-1, r)
            for q in range(lo_q, hi_q):
                lo, hi = (bounds[q] - t0) * d, (bounds[q + 1] - t0) * d
                np.dot(a[lo:hi].T, b[lo:hi], out=out[q])
        return out

    def subtract_from(self, S: np.ndarray, w_sub: np.ndarray, l_inv: np.ndarray,
                      sub_pos: np.ndarray) -> None:
        """``S -= W C^-1 W^T`` in place: ``S (n, n)`` dense (arguments as :meth:`products`)."""
        out = self.products(w_sub, l_inv, sub_pos)
        r = out.shape[1]
        s4 = S.reshape(self.nrb, r, self.nrb, r)
        s4[self.bi, :, self.bj, :] -= out
        s4[self.bj[self.off], :, self.bi[self.off], :] -= out[self.off].transpose(0, 2, 1)
