"""Batched kernels on many small blocks, compiled (``_blocks.c``).

numpy forms a batch of tiny products (``(N, 2, 9)^T (N, 2, 9)`` in bundle adjustment) one
BLAS call or one einsum pass per block: 100-250 ns a block, several times the arithmetic.
These loops do the same sums in C, with the GIL released. Arrays are float64 (indices
int64), C-contiguous; the C side checks every size and index against the shapes given.
"""

from __future__ import annotations

import numpy as np

try:
    from . import _blocks
except ImportError as e:  # a source tree that was never built
    raise ImportError(
        "calib's compiled solver kernels (calib/solver/_blocks.c) are not built: install calib "
        "with 'pip install -e .' (or 'bash setup.sh'), which compiles them") from e

_F = np.float64


def _f(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=_F)


def _i(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.int64)


def segment_gram(ja: np.ndarray, jb: np.ndarray, order: np.ndarray | None,
                 bounds: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per segment ``u``: ``sum ja[i]^T jb[i]`` over ``i = order[t]`` (``t`` when ``order``
    is None), ``t`` in ``[bounds[u], bounds[u+1])``. ``ja (N, m, a)``, ``jb (N, m, b)``,
    ``order (N,)`` int64, ``bounds (U+1,)`` int64 -> ``(U, a, b)``."""
    n, m, a = ja.shape
    b = jb.shape[2]
    if out is None:
        out = np.empty((len(bounds) - 1, a, b))
    _blocks.segment_gram(_f(ja), _f(jb), _i(order), _i(bounds), out, n, m, a, b)
    return out


def segment_gemv(j: np.ndarray, r: np.ndarray, order: np.ndarray | None,
                 bounds: np.ndarray) -> np.ndarray:
    """Per segment ``u``: ``sum j[i]^T r[i]`` (segments as :func:`segment_gram`).
    ``j (N, m, d)``, ``r (N, m)`` -> ``(U, d)``."""
    n, m, d = j.shape
    out = np.empty((len(bounds) - 1, d))
    _blocks.segment_gemv(_f(j), _f(r), _i(order), _i(bounds), out, n, m, d)
    return out


def pair_products(w_sub: np.ndarray, l_inv: np.ndarray, sub_pos: np.ndarray, ta: np.ndarray,
                  tb: np.ndarray, bounds: np.ndarray, vt: np.ndarray) -> np.ndarray:
    """The Schur products ``sum V_a^T V_b`` of every pair ``q`` (``(Q, r, r)``), with
    ``V_s = l_inv[sub_pos[s]] w_sub[s]^T`` ``(d, r)`` and ``(a, b) = (ta[t], tb[t])`` for
    ``t`` in ``[bounds[q], bounds[q+1])``. ``w_sub (K, r, d)``, ``l_inv (P, d, d)`` lower
    triangular, ``vt (K, d, r)`` a scratch buffer (left holding every ``V_s``)."""
    k, r, d = w_sub.shape
    out = np.empty((len(bounds) - 1, r, r))
    _blocks.pair_products(_f(w_sub), _f(l_inv), _i(sub_pos), _i(ta), _i(tb), _i(bounds), vt, out,
                          k, r, d,
                          l_inv.shape[0])
    return out


def inverse_cholesky(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(C^-1, L^-1, bad)`` for SPD blocks ``C = L L^T`` ``(P, d, d)`` (``L^-1`` lower
    triangular); ``bad`` is the first block that is not positive definite or whose inverse
    is not finite, else -1 (the arrays are then incomplete from ``bad`` on)."""
    p, d, _ = blocks.shape
    linv, inv = np.empty((p, d, d)), np.empty((p, d, d))
    bad = _blocks.inverse_cholesky(_f(blocks), linv, inv, p, d)
    return inv, linv, bad
