"""Batched kernels on many small blocks, compiled (``csrc/blocks.c``).

numpy forms a batch of tiny products (``(N, 2, 9)^T (N, 2, 9)`` in bundle adjustment) one
BLAS call or one einsum pass per block: 100-250 ns a block, several times the arithmetic.
These loops do the same sums in C, with the GIL released. Arrays are float64 (indices
int64) of any strides (a Jacobian's column slice is read in place); the C side checks
every shape and index and raises ``ValueError`` / ``IndexError`` on a mismatch (index
arrays are checked and read as a private copy, so another thread cannot change them under
a running kernel). Outputs are allocated here and never overlap the inputs, except the
accumulators of :func:`dense_gram`, which the caller owns.
"""

from __future__ import annotations

import numpy as np

from .._native import kernels as _k


def segment_gram(ja: np.ndarray, jb: np.ndarray, order: np.ndarray | None,
                 bounds: np.ndarray) -> np.ndarray:
    """Per segment ``u``: ``sum ja[i]^T jb[i]`` over ``i = order[t]`` (``t`` when ``order``
    is None), ``t`` in ``[bounds[u], bounds[u+1])``. ``ja (N, m, a)``, ``jb (N, m, b)``
    (any strides), ``order (N,)``, ``bounds (U+1,)`` int64 -> ``(U, a, b)``."""
    out = np.empty((len(bounds) - 1, ja.shape[2], jb.shape[2]))
    _k.segment_gram(ja, jb, order, bounds, out)
    return out


def segment_gemv(j: np.ndarray, r: np.ndarray, order: np.ndarray | None,
                 bounds: np.ndarray) -> np.ndarray:
    """Per segment ``u``: ``sum j[i]^T r[i]`` (segments as :func:`segment_gram`, of which
    this is the one-column case). ``j (N, m, d)``, ``r (N, m)`` -> ``(U, d)``."""
    return segment_gram(j, r[:, :, None], order, bounds)[:, :, 0]


def pair_products(w_sub: np.ndarray, l_inv: np.ndarray, sub_pos: np.ndarray, ta: np.ndarray,
                  tb: np.ndarray, bounds: np.ndarray, vt: np.ndarray) -> np.ndarray:
    """The Schur products ``sum V_a^T V_b`` of every pair ``q`` (``(Q, r, r)``), with
    ``V_s = l_inv[sub_pos[s]] w_sub[s]^T`` ``(d, r)`` and ``(a, b) = (ta[t], tb[t])`` for
    ``t`` in ``[bounds[q], bounds[q+1])``. ``w_sub (K, r, d)``, ``l_inv (P, d, d)`` lower
    triangular, indices int64, ``vt (K, d, r)`` a scratch buffer (left holding every
    ``V_s``)."""
    r = w_sub.shape[1]
    out = np.empty((len(bounds) - 1, r, r))
    _k.pair_products(w_sub, l_inv, sub_pos, ta, tb, bounds, vt, out)
    return out


def inverse_cholesky(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(C^-1, L^-1, bad)`` for SPD blocks ``C = L L^T`` ``(P, d, d)`` (``L^-1`` lower
    triangular); ``bad`` is the first block that is not positive definite or whose inverse
    is not finite, else -1 (the arrays are then incomplete from ``bad`` on). Only the lower
    triangle of ``C`` is read, as LAPACK's ``potrf`` with ``lower``."""
    linv, inv = np.empty(blocks.shape), np.empty(blocks.shape)
    bad = _k.inverse_cholesky(blocks, linv, inv)
    return inv, linv, bad


def dense_gram(jacobians: list, cols: np.ndarray, r: np.ndarray, a: np.ndarray,
               g: np.ndarray) -> None:
    """In place, the dense normal equations of a term: for every row ``i`` with ``v`` the
    row's Jacobian columns side by side (``jacobians``: ``(N, m, d_k)`` each) and
    ``c = cols[i]`` their columns in ``a`` (``(N, sum d_k)`` int64, -1: not summed),
    ``a[c_p, c_q] += sum_k v[k, p] v[k, q]`` and ``g[c_p] += sum_k v[k, p] r[i, k]``.
    ``r (N, m)`` of any strides; ``a (n, n)`` and ``g (n,)`` C-contiguous, not overlapping
    the inputs.
    A row costs ``m w^2`` products for its ``w`` summed columns, whatever ``n``."""
    _k.dense_gram(jacobians, cols, r, a, g)


def all_finite(*arrays: np.ndarray) -> bool:
    """Is every entry of every float64 array finite? One compiled call (what
    ``np.isfinite(x).all()`` costs twice over, per array, on the solver's small arrays;
    contiguous arrays of any size are read as fast as numpy), numpy's where the kernel
    declines (a large strided array) or cannot read an array (not float64, misaligned)."""
    try:
        ok = _k.all_finite(*arrays)
    except ValueError:
        ok = None
    if ok is None:
        return all(bool(np.isfinite(x).all()) for x in arrays)
    return ok
