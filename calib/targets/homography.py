"""Plane-to-image homographies by the normalized DLT, batched over views."""

from __future__ import annotations

import numpy as np


def dlt_homographies(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Normalized DLT for ``V`` views at once: ``src, dst (V, N, 2)`` -> ``H (V, 3, 3)``."""

    def normalizer(p):
        # on (V, N) columns: reductions over the middle axis of (V, N, 2) are ~8x slower
        x, y = p[..., 0], p[..., 1]
        c = np.stack([x.sum(axis=1), y.sum(axis=1)], axis=1) / p.shape[1]
        dx, dy = x - c[:, 0:1], y - c[:, 1:2]
        s = np.sqrt(2) / np.maximum(np.sqrt(dx * dx + dy * dy).mean(axis=1), 1e-300)
        T = np.zeros((len(p), 3, 3))
        T[:, 0, 0] = T[:, 1, 1] = s
        T[:, :2, 2] = -s[:, None] * c
        T[:, 2, 2] = 1
        return T, np.stack([dx * s[:, None], dy * s[:, None]], axis=2)

    Ts, a = normalizer(src)
    Td, b = normalizer(dst)
    v, n = a.shape[:2]
    # Rows of A per point: r1 = [p, 0, -u p], r2 = [0, p, -w p] with p = (x, y, 1), so
    # A^T A = [[G, 0, -Gu], [0, G, -Gw], [-Gu, -Gw, Guw]] with weighted Gram matrices
    # G = sum p p^T, Gu = sum u p p^T, Gw = sum w p p^T, Guw = sum (u^2 + w^2) p p^T. The six
    # distinct entries of p p^T are monomials of (x, y), so all four are one (4 x N) @ (N x 6)
    # product per view: weights (1, u, w, u^2 + w^2) times monomials (xx, xy, x, yy, y, 1).
    x, y = a[..., 0], a[..., 1]
    mono = np.stack([x * x, x * y, x, y * y, y, np.ones_like(x)], axis=2)  # (V, N, 6)
    u, w = b[..., 0], b[..., 1]
    weights = np.stack([np.ones_like(u), u, w, u * u + w * w], axis=1)  # (V, 4, N)
    sums = np.matmul(weights, mono)  # (V, 4, 6)
    sym = sums[:, :, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(v, 4, 3, 3)
    g, gu, gw, guw = sym[:, 0], sym[:, 1], sym[:, 2], sym[:, 3]
    M = np.zeros((v, 9, 9))
    M[:, 0:3, 0:3] = g
    M[:, 3:6, 3:6] = g
    M[:, 0:3, 6:9] = -gu
    M[:, 6:9, 0:3] = -gu
    M[:, 3:6, 6:9] = -gw
    M[:, 6:9, 3:6] = -gw
    M[:, 6:9, 6:9] = guw
    # null vector of A = eigenvector of the smallest eigenvalue of A^T A (9x9 per view; the
    # Hartley normalization keeps A^T A well conditioned, and LM refines the result anyway)
    _, vecs = np.linalg.eigh(M)
    H = vecs[:, :, 0].reshape(v, 3, 3)
    H = np.linalg.inv(Td) @ H @ Ts
    return H / H[:, 2:3, 2:3]
