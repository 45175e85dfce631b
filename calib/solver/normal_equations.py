"""Linearize a problem (residuals + robust correction + Jacobians) and assemble the
block-sparse normal equations ``J^T J dx = -J^T r`` without ever forming them densely.

Reduced (non-eliminated) variables get ``A = J_r^T J_r`` as CSR and ``g_r``; every
eliminated group gets its block diagonal ``C`` ``(P, d, d)``, ``g_e`` ``(P, d)`` and the
coupling ``W = J_r^T J_e`` as CSR (plus its blocks, for the Schur complement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .structure import Structure, TermPlan, check_family_output


@dataclass
class TermLinearization:
    r: np.ndarray  # (N, m) robust-scaled residuals
    jac: dict  # id(SlotPlan) -> (N, m, df) robust-scaled Jacobian over free coordinates


@dataclass
class Linearization:
    cost: float
    terms: list[TermLinearization] | None
    bad: str | None = None  # message when a residual or Jacobian is not finite
    has_jacobians: bool = True


@dataclass
class ElimSystem:
    C: np.ndarray  # (P, d, d)
    g: np.ndarray  # (P, d)
    w_sub: np.ndarray  # (K, r, d) sub-blocks of W in the pattern's order
    W: sp.bsr_matrix  # (n_r, P*d)
    WT: sp.bsr_matrix  # (P*d, n_r)


@dataclass
class NormalEquations:
    g_r: np.ndarray
    A: sp.csr_matrix
    elim: dict  # name -> ElimSystem

    def gradient_max_norm(self) -> float:
        m = float(np.abs(self.g_r).max(initial=0.0))
        for e in self.elim.values():
            m = max(m, float(np.abs(e.g).max(initial=0.0)))
        return m


def _robust(r: np.ndarray, jac: list | None, loss):
    """Apply ``loss`` to rows of ``r``; return cost and the rescaled ``r``, ``jac``.

    With ``alpha = 1 - sqrt(1 + 2 s rho'' / rho')`` the rescaling
    ``r' = sqrt(rho') / (1 - alpha) r`` and ``J' = sqrt(rho') (I - alpha r r^T / s) J``
    gives the exact gradient ``J'^T r' = rho' J^T r`` and Triggs' second-order Hessian
    ``J'^T J' = J^T (rho' I + 2 rho'' r r^T) J``. As in Ceres' Corrector, the curvature
    term is used only where ``rho'' > 0``; where ``rho'' <= 0`` (the outlier side of every
    robust loss) the Hessian would lose positive definiteness and plain reweighting
    (``alpha = 0``) is used, which keeps the gradient, hence the minimum, exact.
    """
    s = np.einsum("nm,nm->n", r, r)
    if loss is None:
        return 0.5 * float(s.sum()), r, jac
    rho, r1, r2 = loss(s)
    cost = 0.5 * float(rho.sum())
    sqrt_r1 = np.sqrt(np.maximum(r1, 0.0))
    alpha = np.zeros_like(s)
    ok = (s > 0) & (r1 > 0) & (r2 > 0)
    if ok.any():
        alpha[ok] = 1.0 - np.sqrt(1.0 + 2.0 * s[ok] * r2[ok] / r1[ok])
    r_scale = sqrt_r1 / (1.0 - alpha)
    r_new = r * r_scale[:, None]
    if jac is None:
        return cost, r_new, None
    a_over_s = np.where(ok, alpha / np.where(s > 0, s, 1.0), 0.0)
    out = []
    for jj in jac:
        jn = jj * sqrt_r1[:, None, None]
        if ok.any():
            rtj = np.einsum("nm,nmd->nd", r, jj)
            jn -= (sqrt_r1 * a_over_s)[:, None, None] * r[:, :, None] * rtj[:, None, :]
        out.append(jn)
    return cost, r_new, out


def linearize(structure: Structure, values: dict, jacobians: bool = True) -> Linearization:
    """Evaluate every residual family at ``values`` (dict name -> array)."""
    cost = 0.0
    terms = []
    for tp in structure.terms:
        rb = tp.block
        vals = [values[g] for g in rb.groups]
        r, jac = rb.family.evaluate(vals, rb.indices, jacobians)
        r = np.asarray(r, dtype=float)
        dims = [structure.layouts[g].manifold.tangent_dim for g in rb.groups]
        check_family_output(rb, r, jac if jacobians else None, dims)
        name = type(rb.family).__name__
        if not np.isfinite(r).all():
            return Linearization(np.inf, None, f"non-finite residual in {name}")
        if jacobians:
            jac = [np.asarray(j, dtype=float) for j in jac]
            for jj in jac:
                if not np.isfinite(jj).all():
                    return Linearization(np.inf, None, f"non-finite Jacobian in {name}")
        c, r, jac = _robust(r, jac if jacobians else None, rb.loss)
        cost += c
        jmap = {}
        if jacobians:
            for plan in tp.reduced + ([tp.elim] if tp.elim is not None else []):
                cols = []
                for lay, j in plan.parts:
                    jj = jac[j]
                    cols.append(jj[:, :, lay.free_coords] if lay.df < jj.shape[2] else jj)
                jj = cols[0] if len(cols) == 1 else np.concatenate(cols, axis=2)
                if plan.valid is not None:
                    jj = jj * plan.valid[:, None, None]
                jmap[id(plan)] = jj
        terms.append(TermLinearization(r, jmap))
    if not np.isfinite(cost):
        return Linearization(np.inf, None, "non-finite cost")
    return Linearization(cost, terms, None, jacobians)


def assemble(structure: Structure, lin: Linearization) -> NormalEquations:
    """Gradient and block-sparse ``J^T J`` pieces from a linearization."""
    n = structure.n_reduced
    g_r = np.zeros(n)
    a_vals = []
    elim_acc = {}
    for name, plan in structure.elim.items():
        lay = plan.group
        elim_acc[name] = (np.zeros((lay.n_free, lay.df, lay.df)), np.zeros((lay.n_free, lay.df)),
                          [])
    for tp, tl in zip(structure.terms, lin.terms, strict=True):
        _assemble_term(tp, tl, g_r, a_vals, elim_acc, structure.row_block)
    a_vals.append(np.zeros(n))
    A = structure.a_pattern.build(np.concatenate(a_vals))
    elim = {}
    for name, plan in structure.elim.items():
        C, g, subs = elim_acc[name]
        d = plan.group.df
        w_sub = np.concatenate(subs) if subs else np.zeros((0, structure.row_block, d))
        elim[name] = ElimSystem(C, g, w_sub, plan.w.build(w_sub),
                                plan.wt.build(w_sub, transpose=True))
    return NormalEquations(g_r, A, elim)


def _assemble_term(tp: TermPlan, tl: TermLinearization, g_r, a_vals, elim_acc,
                   row_block: int) -> None:
    r = tl.r
    for plan in tp.reduced:
        gb = plan.grad.weighted_sum(r, tl.jac[id(plan)])
        g_r[plan.columns(plan.grad.keys)] += gb
    for pair in tp.rr_pairs:
        a_vals.append(pair.seg.sum_products(tl.jac[id(pair.a)], tl.jac[id(pair.b)]).ravel())
    if tp.elim is None:
        return
    C, g, subs = elim_acc[tp.elim.group.name]
    je = tl.jac[id(tp.elim)]
    keys = tp.elim_seg.keys
    C[keys] += tp.elim_seg.sum_products(je, je)
    g[keys] += tp.elim_seg.weighted_sum(r, je)
    d = tp.elim.group.df
    for pair in tp.re_pairs:
        blocks = pair.seg.sum_products(tl.jac[id(pair.a)], je)
        subs.append(blocks.reshape(-1, row_block, d))


def jacobian_times(structure: Structure, lin: Linearization, dx_r: np.ndarray,
                   dx_e: dict) -> float:
    """``|J' dx|^2`` over all residuals (for the LM model's predicted decrease)."""
    total = 0.0
    for tp, tl in zip(structure.terms, lin.terms, strict=True):
        acc = np.zeros_like(tl.r)
        for plan in tp.reduced:
            jj = tl.jac[id(plan)]
            if plan.grad.single:  # one block for all residuals: a GEMV
                n, m, w = jj.shape
                acc += (jj.reshape(n * m, w) @ dx_r[plan.columns(plan.grad.keys)[0]]).reshape(n, m)
            else:
                acc += np.einsum("nmd,nd->nm", jj, dx_r[plan.columns(plan.pos)])
        if tp.elim is not None:
            blocks = dx_e[tp.elim.group.name]
            acc += np.einsum("nmd,nd->nm", tl.jac[id(tp.elim)], blocks[tp.elim.pos])
        total += float(np.einsum("nm,nm->", acc, acc))
    return total
