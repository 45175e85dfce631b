"""Schur complement of eliminated groups: ``S = A - W C^-1 W^T``, ``b = -(g_r - W C^-1 g_e)``.

The ``C`` blocks (3x3 points, 6x6 poses, ...) are inverted in one batched operation and
``W C^-1`` is formed block by block on ``W``'s own sparsity pattern, so the only sparse
product is ``(W C^-1) W^T``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .blocks import inverse_cholesky
from .lazy import scipy_sparse
from .normal_equations import NormalEquations
from .schur_sparse import pair_products, reduced_pattern
from .structure import Structure, take_rows

if TYPE_CHECKING:
    import scipy.sparse as sp


class LinearSolveError(RuntimeError):
    """The damped system could not be solved (not positive definite, non-finite)."""


@dataclass
class ReducedSystem:
    S: sp.csr_matrix | np.ndarray  # (n_r, n_r)
    b: np.ndarray  # (n_r,)
    c_inv: dict  # name -> (P, d, d)
    Y: dict  # name -> csr W C^-1


def damping_diagonal(diag: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``clip(diag, lo, hi)`` by two ufuncs (``np.clip``'s wrappers cost more on few values)."""
    return np.maximum(np.minimum(diag, hi), lo)


def batched_inverse(blocks: np.ndarray) -> np.ndarray:
    """Inverse of SPD blocks ``(P, d, d)`` via batched Cholesky; raises LinearSolveError."""
    return inverse_and_factor(blocks)[0]


def inverse_and_factor(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C^-1, L^-1)`` of SPD blocks ``C = L L^T`` ``(P, d, d)``, by the compiled batched
    Cholesky (:func:`.blocks.inverse_cholesky`; LAPACK once per block costs several times
    more on 3x3 blocks); raises LinearSolveError where a block is not positive definite or
    its inverse not finite."""
    if blocks.shape[0] == 0:
        return blocks.copy(), blocks.copy()
    inv, linv, bad = inverse_cholesky(blocks)
    if bad >= 0:
        raise LinearSolveError(f"eliminated block {bad} is not positive definite "
                               "(or its inverse is not finite)")
    return inv, linv


def diagonals(neq: NormalEquations, lo: float, hi: float) -> tuple[np.ndarray, dict]:
    """``clip(diag(J^T J), lo, hi)`` for the reduced vector and every eliminated group."""
    return (damping_diagonal(neq.A.diagonal(), lo, hi),
            {n: damping_diagonal(np.diagonal(es.C, axis1=1, axis2=2), lo, hi)
             for n, es in neq.elim.items()})


def reduce(structure: Structure, neq: NormalEquations, mu: float,
           diag: tuple[np.ndarray, dict] | None = None, dense: bool = False,
           blocks: bool = False) -> ReducedSystem:
    """Damp with ``mu * D`` (``D = diag``, e.g. from :func:`diagonals`) and eliminate every
    eliminated group. ``mu = 0`` gives the undamped reduced system. With ``dense`` the
    reduced matrix is returned as an ndarray; else with ``blocks`` as BSR on the fixed
    pattern of :mod:`.schur_sparse` (no ``Y``), else as CSR with ``Y = W C^-1``."""
    if diag is None:
        diag = diagonals(neq, 0.0, np.inf)
    dA, dE = diag
    if dense and not neq.elim and isinstance(neq.A, np.ndarray):  # nothing to eliminate
        S = neq.A.copy()
        S.reshape(-1)[::S.shape[0] + 1] += mu * dA  # the diagonal, through a view
        return ReducedSystem(S, -neq.g_r, {}, {})
    c_inv, l_inv = {}, {}
    for name, es in neq.elim.items():
        d = es.C.shape[1]
        c_inv[name], l_inv[name] = inverse_and_factor(
            es.C + mu * dE[name][:, :, None] * np.eye(d) if mu else es.C)
    if dense:
        return _eliminate_dense(structure, neq, c_inv, l_inv, mu * dA)
    if blocks and reduced_pattern(structure) is not None:
        return _eliminate_blocks(structure, neq, c_inv, l_inv, mu * dA)
    return eliminate(structure, neq, c_inv, mu * dA, dense)


def _schur_rhs(neq: NormalEquations, c_inv: dict) -> np.ndarray:
    """``b = -(g_r - sum_e W_e C_e^-1 g_e)``."""
    b = -neq.g_r.copy()
    for name, es in neq.elim.items():
        if b.size and es.w_sub.shape[0]:
            b += es.w_dot(np.einsum("pij,pj->pi", c_inv[name], es.g))
    return b


def _eliminate_blocks(structure: Structure, neq: NormalEquations, c_inv: dict, l_inv: dict,
                      damping: np.ndarray) -> ReducedSystem:
    """:func:`eliminate` into a BSR ``S`` on the fixed pattern, by pair products."""
    products = {}
    for name, es in neq.elim.items():
        if structure.n_reduced and es.w_sub.shape[0]:
            products[name] = structure.elim[name].pairs.products(
                es.w_sub, l_inv[name], structure.elim[name].sub_pos)
    S = structure.s_pattern.build(neq.A, damping, products)
    return ReducedSystem(S, _schur_rhs(neq, c_inv), c_inv, {})


def _eliminate_dense(structure: Structure, neq: NormalEquations, c_inv: dict, l_inv: dict,
                     damping: np.ndarray) -> ReducedSystem:
    """:func:`eliminate` into a dense ``S`` by pair products (:mod:`.schur_dense`);
    patterns with repeated sub-blocks go the general way."""
    if any(structure.elim[n].w is not None and not structure.elim[n].w.unique
           for n in neq.elim):
        return eliminate(structure, neq, c_inv, damping, True)
    S = neq.A.copy() if isinstance(neq.A, np.ndarray) else neq.A.toarray()
    S.flat[::S.shape[0] + 1] += damping
    for name, es in neq.elim.items():
        if structure.n_reduced == 0 or es.w_sub.shape[0] == 0:
            continue
        plan = structure.elim[name]
        pair_products(structure, name).subtract_from(S, es.w_sub, l_inv[name], plan.sub_pos)
    return ReducedSystem(S, _schur_rhs(neq, c_inv), c_inv, {})


def eliminate(structure: Structure, neq: NormalEquations, c_inv: dict, damping: np.ndarray,
              dense: bool) -> ReducedSystem:
    """``S = A + diag(damping) - sum_e W_e C_e^-1 W_e^T`` and its right-hand side, given the
    (damped) inverses of the eliminated blocks."""
    sp = scipy_sparse()
    A = sp.csr_matrix(neq.A) if isinstance(neq.A, np.ndarray) else neq.A
    S = A.toarray() if dense else A.tocsr()
    if dense:
        S[np.diag_indices_from(S)] += damping
    else:
        S = S + sp.diags(damping, format="csr")
    b = -neq.g_r.copy()
    Y = {}
    for name, es in neq.elim.items():
        if structure.n_reduced == 0 or es.w_sub.shape[0] == 0:
            continue
        plan = structure.elim[name]
        y = plan.w.build(np.matmul(es.w_sub, take_rows(c_inv[name], plan.sub_pos)))
        Y[name] = y
        prod = y @ es.WT
        S = S - (prod.toarray() if dense else prod.tocsr())
        b += y @ es.g.ravel()
    return ReducedSystem(S, b, c_inv, Y)


def back_substitute(neq: NormalEquations, red: ReducedSystem, dx_r: np.ndarray) -> dict:
    """``dx_e = -C^-1 (g_e + W^T dx_r)`` for every eliminated group."""
    out = {}
    for name, es in neq.elim.items():
        rhs = es.g.copy()
        if dx_r.size and es.w_sub.shape[0]:
            rhs += es.wt_dot(dx_r)
        out[name] = -np.einsum("pij,pj->pi", red.c_inv[name], rhs)
    return out
