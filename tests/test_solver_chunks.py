"""Chunked linearization: a family evaluated and summed in row chunks gives the same normal
equations (to rounding) as the whole family at once, whatever the chunk boundaries cut
(views split across chunks, unequal views, unsorted rows, constant coordinates, a robust
loss); and the LM model's quadratic form from the assembled blocks equals |J dx|^2 from
the family's own Jacobians."""

from __future__ import annotations

import numpy as np
import pytest

import calib.solver.chunks as chunks
from calib.camera.pinhole import project
from calib.lie import se3
from calib.residuals.reprojection import BoardReprojection
from calib.solver import Euclidean, HuberLoss, Problem, SE3Manifold, SolverOptions, solve
from calib.solver.normal_equations import hessian_quadratic_form, linearize
from calib.solver.structure import Structure

THETA = np.array([800.0, 790.0, 330.0, 250.0, -0.2, 0.05, 0.001, -0.002, 0.01])


def _board_problem(seed: int, layout: str, loss=None, fix=()):
    rng = np.random.default_rng(seed)
    gx, gy = np.meshgrid(np.arange(9) * 0.03, np.arange(6) * 0.03)
    board = np.c_[gx.ravel(), gy.ravel(), np.zeros(54)]
    nv = 30
    T = se3.exp(np.c_[rng.normal(0, 0.05, (nv, 3)), rng.normal(0, 0.3, (nv, 3))])
    T[:, :3, 3] += [-0.12, -0.08, 0.8]
    bp, uv, vidx = [], [], []
    for v in range(nv):
        keep = np.ones(54, bool) if layout == "equal" else rng.random(54) > 0.4
        pts = board[keep]
        pix = project(se3.act(T[v], pts), THETA) + rng.normal(0, 0.5, (len(pts), 2))
        if loss is not None:
            pix[:3] += 25.0  # a few outliers for the robust loss
        bp.append(pts)
        uv.append(pix)
        vidx.append(np.full(len(pts), v))
    bp, uv, vidx = np.concatenate(bp), np.concatenate(uv), np.concatenate(vidx)
    if layout == "shuffled":
        perm = rng.permutation(len(uv))
        bp, uv, vidx = bp[perm], uv[perm], vidx[perm]
    start = THETA * (1 + rng.normal(0, 0.01, 9))
    T0 = se3.exp(rng.normal(0, 0.01, (nv, 6))) @ T
    p = Problem()
    p.add_parameter("camera", start[None], Euclidean(9))
    p.add_parameter("poses", T0, SE3Manifold(), eliminate=True)
    p.add_residuals(BoardReprojection(bp, uv), [("camera", np.zeros(len(uv), int)),
                                                ("poses", vidx)], loss=loss)
    if fix:
        p.set_constant("camera", coords=list(fix))
    return p


def _normal_equations(p, doubles, monkeypatch):
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", doubles)
    s = Structure(p)
    lin = linearize(s, {n: g.value for n, g in p.groups.items()})
    return s, lin


CASES = [("equal", None, ()), ("unequal", None, (8,)), ("shuffled", None, ()),
         ("unequal", HuberLoss(2.0), (6, 7))]


@pytest.mark.parametrize("layout,loss,fix", CASES)
def test_chunked_normal_equations_equal_whole(layout, loss, fix, monkeypatch):
    p = _board_problem(3, layout, loss, fix)
    s_whole, whole = _normal_equations(p, 1 << 40, monkeypatch)
    s_chunk, part = _normal_equations(p, 1 << 11, monkeypatch)
    assert len(s_whole.terms[0].chunks) == 1
    assert len(s_chunk.terms[0].chunks) > 10
    np.testing.assert_allclose(part.cost, whole.cost, rtol=1e-12)
    a, b = part.neq, whole.neq
    np.testing.assert_allclose(a.g_r, b.g_r, rtol=1e-10, atol=1e-9 * np.abs(b.g_r).max())
    scale = np.abs(b.A.toarray()).max()
    np.testing.assert_allclose(a.A.toarray(), b.A.toarray(), rtol=1e-10, atol=1e-12 * scale)
    ea, eb = a.elim["poses"], b.elim["poses"]
    np.testing.assert_allclose(ea.C, eb.C, rtol=1e-10, atol=1e-12 * np.abs(eb.C).max())
    np.testing.assert_allclose(ea.g, eb.g, rtol=1e-10, atol=1e-12 * np.abs(eb.g).max())
    np.testing.assert_allclose(ea.W.toarray(), eb.W.toarray(), rtol=1e-10,
                               atol=1e-12 * np.abs(eb.W.toarray()).max())


def test_chunked_solve_matches_whole_solve(monkeypatch):
    p = _board_problem(5, "unequal")
    opts = SolverOptions(function_tolerance=1e-12, parameter_tolerance=1e-14)
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", 1 << 40)
    whole = solve(p, opts)
    monkeypatch.setattr(chunks, "CHUNK_DOUBLES", 1 << 11)
    part = solve(p, opts)
    np.testing.assert_allclose(part.values["camera"], whole.values["camera"], rtol=1e-9)
    np.testing.assert_allclose(part.values["poses"], whole.values["poses"], atol=1e-10)
    np.testing.assert_allclose(part.summary.final_cost, whole.summary.final_cost, rtol=1e-10)


def test_quadratic_form_equals_jacobian_product(monkeypatch):
    """dx^T (J^T J) dx from the assembled A, W, C equals |J dx|^2 with J scattered from the
    family's Jacobians (independent of the normal equations)."""
    p = _board_problem(7, "unequal", fix=(8,))
    s, lin = _normal_equations(p, 1 << 11, monkeypatch)
    rb = p.residual_blocks[0]
    _, (jc, jp) = rb.family.evaluate([p.groups["camera"].value, p.groups["poses"].value],
                                     rb.indices)
    rng = np.random.default_rng(1)
    dx_r = rng.normal(size=8)  # camera minus the constant k3
    dx_e = rng.normal(size=(30, 6))
    jdx = jc[:, :, :8] @ dx_r + np.einsum("nmd,nd->nm", jp, dx_e[rb.indices[1]])
    expect = float(np.sum(jdx * jdx))
    got = hessian_quadratic_form(lin.neq, dx_r, {"poses": dx_e})
    np.testing.assert_allclose(got, expect, rtol=1e-10)
