"""Linearize a problem (residuals + robust correction + Jacobians) and assemble the
block-sparse normal equations ``J^T J dx = -J^T r`` without ever forming them densely, nor
holding the whole Jacobian (terms are evaluated and summed in row chunks).

Reduced (non-eliminated) variables get ``A = J_r^T J_r`` as CSR and ``g_r``; every
eliminated group gets its block diagonal ``C`` ``(P, d, d)``, ``g_e`` ``(P, d)`` and the
coupling ``W = J_r^T J_e`` as CSR (plus its blocks, for the Schur complement).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .blocks import all_finite, dense_gram
from .stacked import evaluate_stacked
from .structure import ElimPlan, Structure, TermPlan, check_family_output

if TYPE_CHECKING:
    import scipy.sparse as sp


@dataclass
class ElimSystem:
    C: np.ndarray  # (P, d, d)
    g: np.ndarray  # (P, d)
    w_sub: np.ndarray  # (K, r, d) sub-blocks of W in the pattern's order
    plan: ElimPlan  # the group's patterns
    #: [(block ranks, (U, w, w) products)] of a stacked term (:mod:`.stacked`), else None
    products: list | None = None

    #: up to this many sub-blocks :meth:`w_dot` sums them directly: no sparse ``W`` (and no
    #: scipy.sparse import) for a camera's or a rig's views; more (bundle adjustment's
    #: observations) go through the BSR matrix, whose product is the faster one there
    SUB_BLOCK_DOT_MAX = 4096

    @property
    def W(self) -> sp.bsr_matrix:
        """``W`` ``(n_r, P*d)`` as a BSR matrix, formed on first use."""
        w = self.__dict__.get("_w")
        if w is None:
            w = self.__dict__["_w"] = self.plan.w.build(self.w_sub)
        return w

    def w_dot(self, y: np.ndarray) -> np.ndarray:
        """``W y`` ``(n_r,)`` for eliminated values ``y (P, d)``: from the sub-blocks when
        there are at most :attr:`SUB_BLOCK_DOT_MAX`, else by the BSR matrix."""
        if len(self.w_sub) > self.SUB_BLOCK_DOT_MAX or "_w" in self.__dict__:
            return self.W @ y.ravel()
        plan = self.plan  # the mirror of wt_dot: per row block, sum of w_sub y
        k, r, _ = self.w_sub.shape
        ys = np.take(y, plan.sub_pos, axis=0)  # (K, d)
        out = np.zeros((plan.w.shape[0] // r, r))
        if k:
            seg = plan.row_segments()
            out[seg.keys] = seg.weighted_sum(ys, self.w_sub.transpose(0, 2, 1))
        return out.ravel()

    @property
    def WT(self) -> sp.bsr_matrix:
        """``W^T`` ``(P*d, n_r)``, formed on first use (only the general Schur path needs it:
        a transposed copy of every sub-block)."""
        wt = self.__dict__.get("_wt")
        if wt is None:
            wt = self.__dict__["_wt"] = self.plan.wt.build(self.w_sub, transpose=True)
        return wt

    def wt_dot(self, x: np.ndarray) -> np.ndarray:
        """``W^T x`` as ``(P, d)`` for ``x (n_r,)``, from the sub-blocks (no ``W^T``)."""
        plan = self.plan
        r = self.w_sub.shape[1]
        xs = np.take(x.reshape(-1, r), plan.sub_row, axis=0)  # (K, r)
        seg = plan.sub_segments()
        out = np.zeros_like(self.g)
        out[seg.keys] = seg.weighted_sum(xs, self.w_sub)
        return out


@dataclass
class NormalEquations:
    g_r: np.ndarray
    A: sp.csr_matrix | np.ndarray  # dense when the structure says ``dense_a``
    elim: dict  # name -> ElimSystem
    buffers: list = field(default_factory=list)  # accumulators to recycle when discarded
    #: id(TermPlan) -> [(rows, residuals)] of the stacked terms' chunks (:mod:`.stacked`)
    residuals: dict = field(default_factory=dict)

    def gradient_max_norm(self) -> float:
        m = float(np.abs(self.g_r).max(initial=0.0))
        for e in self.elim.values():
            m = max(m, float(np.abs(e.g).max(initial=0.0)))
        return m


@dataclass
class Linearization:
    """The cost at a point and, when Jacobians were asked for, the assembled normal
    equations there; ``bad`` says why the point is unusable (non-finite values)."""

    cost: float
    neq: NormalEquations | None
    bad: str | None = None
    has_jacobians: bool = True

    @property
    def ok(self) -> bool:
        return self.bad is None


def _robust(r: np.ndarray, jac: list | None, loss):
    """Apply ``loss`` to rows of ``r``; return cost and the rescaled ``r``, ``jac``.

    With ``alpha = 1 - sqrt(1 + 2 s rho'' / rho')`` the rescaling
    ``r' = sqrt(rho') / (1 - alpha) r`` and ``J' = sqrt(rho') (I - alpha r r^T / s) J``
    gives the exact gradient ``J'^T r' = rho' J^T r`` and Triggs' second-order Hessian
    ``J'^T J' = J^T (rho' I + 2 rho'' r r^T) J``. As in Ceres' Corrector, the curvature
    term is used only where ``rho'' > 0``; where ``rho'' <= 0`` (the outlier side of every
    robust loss) the Hessian would lose positive definiteness and plain reweighting
    (``alpha = 0``) is used, which keeps the gradient, hence the minimum, exact.

    Without Jacobians (a cost evaluation) only the cost is formed and ``r`` is returned as
    given; where no row has ``rho'' > 0`` (every loss of :mod:`.loss` says so by
    ``NONPOSITIVE_CURVATURE``, and ``rho''`` is not even evaluated) the curvature terms are
    skipped (``alpha = 0`` in every row: the same values).
    """
    if loss is None:
        flat = r.reshape(-1)
        return 0.5 * float(flat @ flat), r, jac
    s = np.einsum("nm,nm->n", r, r)
    if jac is None:
        return 0.5 * float(loss.rho(s).sum()), r, None
    if loss.NONPOSITIVE_CURVATURE:  # no rho'' needed
        rho, r1 = loss.first_order(s)
        r2 = curved = None
    else:
        rho, r1, r2 = loss(s)
        curved = r2 > 0
    cost = 0.5 * float(rho.sum())
    sqrt_r1 = np.sqrt(np.maximum(r1, 0.0))
    if curved is None or not curved.any():  # plain reweighting everywhere
        return cost, r * sqrt_r1[:, None], [jj * sqrt_r1[:, None, None] for jj in jac]
    alpha = np.zeros_like(s)
    ok = (s > 0) & (r1 > 0) & curved
    alpha[ok] = 1.0 - np.sqrt(1.0 + 2.0 * s[ok] * r2[ok] / r1[ok])
    r_new = r * (sqrt_r1 / (1.0 - alpha))[:, None]
    a_over_s = np.where(ok, alpha / np.where(s > 0, s, 1.0), 0.0)
    out = []
    for jj in jac:
        jn = jj * sqrt_r1[:, None, None]
        rtj = np.einsum("nm,nmd->nd", r, jj)
        jn -= (sqrt_r1 * a_over_s)[:, None, None] * r[:, :, None] * rtj[:, None, :]
        out.append(jn)
    return cost, r_new, out


class _Sums:
    """Accumulators of one linearization: ``g_r``, the ``A`` pair blocks, ``C``, ``g_e`` and
    the ``W`` pair blocks, filled chunk by chunk."""

    def __init__(self, structure: Structure) -> None:
        self.g_r = np.zeros(structure.n_reduced)
        self.a_dense = None  # (n_r, n_r) sum of the dense terms' J^T J (tiny path)
        self.pool = structure.buffer_pool
        self.buffers: list[np.ndarray] = []  # accumulators that may be recycled
        self.rr: dict = {}  # id(PairPlan) -> (U, a, b)
        self.re: dict = {}
        self.products: dict = {}  # eliminated group -> [(block ranks, H)] (.stacked)
        self.residuals: dict = {}  # id(TermPlan) -> [(rows, (n * m,) residuals)] (.stacked)
        self.elim = {name: (np.zeros((p.group.n_free, p.group.df, p.group.df)),
                            np.zeros((p.group.n_free, p.group.df)))
                     for name, p in structure.elim.items()}

    def add(self, store: dict, pair, values: np.ndarray, dst: np.ndarray | slice | None) -> None:
        if dst is None:  # the whole term in one chunk: the sums are the blocks
            store[id(pair)] = values
            return
        acc = store.get(id(pair))
        if acc is None:
            shape = (len(pair.seg.keys),) + values.shape[1:]
            acc = store[id(pair)] = self._buffer(shape) if pair.partition else np.zeros(shape)
        if pair.partition:
            acc[dst] = values
        else:
            acc[dst] += values

    def _buffer(self, shape: tuple) -> np.ndarray:
        """An uninitialised accumulator, recycled from a discarded linearization when one of
        that shape is free (a fresh one faults its pages in: 0.1 s per 100 MB)."""
        for i, b in enumerate(self.pool):
            if b.shape == shape:
                buf = self.pool.pop(i)
                break
        else:
            buf = np.empty(shape)
        self.buffers.append(buf)
        return buf

    def normal_equations(self, structure: Structure) -> NormalEquations:
        n = structure.n_reduced
        a_vals, subs = [], {name: [] for name in structure.elim}
        all_dense = True
        for tp in structure.terms:
            if tp.dense is not None:  # in a_dense already (no entries in A's pattern)
                continue
            all_dense = False
            a_vals += [self.rr[id(pr)].ravel() for pr in tp.rr_pairs]
            if tp.elim is not None:
                subs[tp.elim.group.name] += [self.re[id(pr)] for pr in tp.re_pairs]
        if all_dense and self.a_dense is not None:
            A = self.a_dense
        else:
            a_vals.append(np.zeros(n))
            a_vals = np.concatenate(a_vals)
            A = (structure.a_pattern.build_dense(a_vals) if structure.dense_a
                 else structure.a_pattern.build(a_vals))
            if self.a_dense is not None:
                A += self.a_dense
        elim = {}
        for name, plan in structure.elim.items():
            C, g = self.elim[name]
            d = plan.group.df
            rb = structure.row_block
            parts = [s.reshape(-1, rb, d) for s in subs[name]]
            w_sub = (parts[0] if len(parts) == 1 else np.concatenate(parts) if parts
                     else np.zeros((0, rb, d)))
            elim[name] = ElimSystem(C, g, w_sub, plan, self.products.get(name))
        return NormalEquations(self.g_r, A, elim, self.buffers, self.residuals)


def _plan_jacobians(tp: TermPlan, valid: dict, jac: list) -> dict:
    """id(SlotPlan) -> ``(n, m, width)`` Jacobian over the plan's free coordinates."""
    out = {}
    for plan in tp.reduced + ([tp.elim] if tp.elim is not None else []):
        cols = []
        for lay, j in plan.parts:
            jj = jac[j]
            cols.append(jj[:, :, lay.free_coords] if lay.df < jj.shape[2] else jj)
        jj = cols[0] if len(cols) == 1 else np.concatenate(cols, axis=2)
        v = valid[id(plan)]
        out[id(plan)] = jj if v is None else jj * v[:, None, None]
    return out


def _accumulate_dense(tp: TermPlan, ch, r: np.ndarray, jac: list, sums: _Sums) -> None:
    """A term of the tiny path, summed into the dense ``A`` and ``g``: by two matrix
    products when its one plan is the dense Jacobian (one pose, ICP), else by
    :func:`.blocks.dense_gram` from the family's Jacobians and their columns."""
    n = len(sums.g_r)
    if tp.dense_whole:
        jd = _plan_jacobians(tp, ch.valid, jac)[id(tp.reduced[0])].reshape(r.size, n)
        jtj = jd.T @ jd
        sums.a_dense = jtj if sums.a_dense is None else sums.a_dense + jtj
        sums.g_r += (r.reshape(1, -1) @ jd)[0]
        return
    if sums.a_dense is None:
        sums.a_dense = np.zeros((n, n))
    cols = tp.dense if len(tp.chunks) == 1 else tp.dense[ch.rows]
    dense_gram(jac, cols, r, sums.a_dense, sums.g_r)


def _accumulate(tp: TermPlan, ch, r: np.ndarray, jmap: dict, sums: _Sums) -> None:
    for plan in tp.reduced:
        sp, cols = ch.grad[id(plan)]
        sums.g_r[cols] += sp.seg.weighted_sum(r, jmap[id(plan)])
    for pair, sp in zip(tp.rr_pairs, ch.rr, strict=True):
        sums.add(sums.rr, pair, sp.seg.sum_products(jmap[id(pair.a)], jmap[id(pair.b)]), sp.dst)
    if tp.elim is None:
        return
    C, g = sums.elim[tp.elim.group.name]
    je = jmap[id(tp.elim)]
    seg = ch.elim
    C[seg.keys] += seg.sum_products(je, je)
    g[seg.keys] += seg.weighted_sum(r, je)
    for pair, sp in zip(tp.re_pairs, ch.re, strict=True):
        sums.add(sums.re, pair, sp.seg.sum_products(jmap[id(pair.a)], je), sp.dst)


def _float_array(x) -> np.ndarray:
    """A family's output as float64, copied only when it is not 8-byte aligned (a legal
    numpy view, e.g. a field of a packed record array, that the compiled sums refuse)."""
    a = np.asarray(x, dtype=float)
    return a if a.flags.aligned else a.copy()


def _evaluate_chunk(tp: TermPlan, ch, vals: list, dims: list, jacobians: bool,
                    sums: _Sums | None) -> tuple[float, str | None]:
    """Cost of one chunk (and its sums into ``sums``), or ``(inf, reason)``."""
    rb = tp.block
    r, jac = ch.family.evaluate(vals, ch.indices, jacobians)
    r = _float_array(r)
    check_family_output(rb, r, jac if jacobians else None, dims, ch.rows.stop - ch.rows.start)
    jac = [_float_array(j) for j in jac] if jacobians else []
    if not all_finite(r, *jac):
        what = "residual" if not all_finite(r) else "Jacobian"
        return np.inf, f"non-finite {what} in {rb.family.__class__.__name__}"
    c, r, jac = _robust(r, jac if jacobians else None, rb.loss)
    if sums is None:
        return c, None
    if tp.dense is not None:
        _accumulate_dense(tp, ch, r, jac, sums)
    else:
        _accumulate(tp, ch, r, _plan_jacobians(tp, ch.valid, jac), sums)
    return c, None


def linearize(structure: Structure, values: dict, jacobians: bool = True) -> Linearization:
    """Cost at ``values`` (dict name -> array) and, with ``jacobians``, the normal equations.

    Each term is evaluated chunk by chunk (see :mod:`calib.solver.chunks`): residuals,
    Jacobians, the robust correction and the sums of one chunk are done before the next
    (a stacked term's sums by one product per eliminated block, :mod:`calib.solver.stacked`).
    (Chunks in two threads were measured slower on 2 cores: numpy's per-call overhead holds
    the GIL.)
    """
    cost = 0.0
    sums = _Sums(structure) if jacobians else None
    for tp in structure.terms:
        rb = tp.block
        vals = [values[g] for g in rb.groups]
        dims = tp.dims
        stacked = jacobians and tp.stacked is not None
        for k, ch in enumerate(tp.chunks):
            if stacked:
                c, bad = evaluate_stacked(tp, k, vals, sums)
            else:
                c, bad = _evaluate_chunk(tp, ch, vals, dims, jacobians, sums)
            if bad is not None:
                return Linearization(np.inf, None, bad, jacobians)
            cost += c
    if not math.isfinite(cost):
        return Linearization(np.inf, None, "non-finite cost", jacobians)
    return Linearization(cost, sums.normal_equations(structure) if jacobians else None, None,
                         jacobians)


def recycle(structure: Structure, lin: Linearization) -> None:
    """Hand the accumulators of a linearization that will not be used again to the next
    linearizations (its normal equations must not be read afterwards)."""
    if lin.neq is not None and lin.neq.buffers:
        structure.buffer_pool.extend(lin.neq.buffers)
        del structure.buffer_pool[:-4]
        lin.neq.buffers = []
        lin.neq = None


def assemble(structure: Structure, lin: Linearization) -> NormalEquations:
    """The normal equations of a linearization made with Jacobians."""
    if lin.neq is None:
        raise ValueError("the linearization has no Jacobians (or failed)")
    return lin.neq


def hessian_quadratic_form(neq: NormalEquations, dx_r: np.ndarray, dx_e: dict) -> float:
    """``dx^T J^T J dx = |J' dx|^2`` from the assembled blocks (``A``, ``W``, ``C``), for the
    LM model's predicted decrease: no pass over the residuals.

    ``dx_r (n_r,)`` reduced step, ``dx_e`` name -> ``(P, d)`` eliminated steps.
    """
    total = float(dx_r @ (neq.A @ dx_r)) if dx_r.size else 0.0
    for name, es in neq.elim.items():
        de = dx_e[name]
        total += float(np.sum(de * np.matmul(es.C, de[:, :, None])[:, :, 0]))
        if dx_r.size and es.w_sub.shape[0]:
            total += 2.0 * float(dx_r @ es.w_dot(de))
    return total
