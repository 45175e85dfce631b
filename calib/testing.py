"""Numerical-derivative helpers (public: users test their own residual families with them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .residuals.base import ResidualFamily
from .solver.manifold import Euclidean, Manifold


def numeric_jacobian(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    eps: float = 1e-6,
    manifold: Manifold | None = None,
) -> np.ndarray:
    """Central-difference Jacobian of ``f`` at ``x`` in ``manifold``'s tangent space.

    ``x`` is one block (e.g. ``(4, 4)`` for SE3, ``(d,)`` for Euclidean); the step is
    applied with ``manifold.plus`` (left perturbation for SO3/SE3). Returns
    ``(f(x).size, tangent_dim)``.
    """
    x = np.asarray(x, dtype=float)
    man = manifold if manifold is not None else Euclidean(x.size)
    d = man.tangent_dim
    base = x.reshape((1,) + man.shape)
    cols = []
    for k in range(d):
        step = np.zeros((1, d))
        step[0, k] = eps
        fp = np.asarray(f(man.plus(base, step)[0].reshape(x.shape)), dtype=float).ravel()
        fm = np.asarray(f(man.plus(base, -step)[0].reshape(x.shape)), dtype=float).ravel()
        cols.append((fp - fm) / (2 * eps))
    return np.stack(cols, axis=-1)


def numeric_family_jacobians(
    family: ResidualFamily,
    values: Sequence[np.ndarray],
    indices: Sequence[np.ndarray],
    manifolds: Sequence[Manifold],
    eps: float = 1e-6,
) -> list[np.ndarray]:
    """Numerical ``(N, m, d_j)`` Jacobians of a residual family, one per slot.

    Every block of slot ``j``'s group is perturbed by the same tangent step at once;
    since each residual reads one block per slot, each residual row sees only its own.
    (Slots bound to the same group must not share a call: perturb them separately.)
    """
    out = []
    for j, man in enumerate(manifolds):
        vals = [np.asarray(v, dtype=float) for v in values]
        m_blocks = vals[j].shape[0]
        cols = []
        for k in range(man.tangent_dim):
            step = np.zeros((m_blocks, man.tangent_dim))
            step[:, k] = eps
            vp = list(vals)
            vp[j] = man.plus(vals[j], step)
            rp, _ = family.evaluate(vp, indices, jacobians=False)
            vm = list(vals)
            vm[j] = man.plus(vals[j], -step)
            rm, _ = family.evaluate(vm, indices, jacobians=False)
            cols.append((rp - rm) / (2 * eps))
        out.append(np.stack(cols, axis=-1))
    return out


def assert_jacobian_close(
    analytic: np.ndarray, numeric: np.ndarray, rtol: float = 1e-5, atol: float = 1e-7
) -> None:
    """Assert two Jacobians agree: ``|a - n| <= atol + rtol * max|n|`` elementwise, with a
    message giving the worst entry."""
    a = np.asarray(analytic, dtype=float)
    n = np.asarray(numeric, dtype=float)
    if a.shape != n.shape:
        raise AssertionError(f"Jacobian shapes differ: analytic {a.shape}, numeric {n.shape}")
    tol = atol + rtol * max(float(np.abs(n).max(initial=0.0)), 1.0)
    err = np.abs(a - n)
    worst = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    if err.size and err[worst] > tol:
        raise AssertionError(
            f"Jacobian mismatch: max |analytic - numeric| = {err[worst]:.3e} at {worst} "
            f"(analytic {a[worst]:.6e}, numeric {n[worst]:.6e}, tol {tol:.1e})"
        )
