"""The engine's cheap paths for small problems against the general ones: numpy's dense
solve against scipy's Cholesky, the cost-only and curvature-free robust corrections against
the general formula, the whole-pose dense Jacobian against block sums, no scipy import on
the dense path, and the thread policy with a BLAS library loaded inside a solve."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.linalg as sla

from calib.lie import se3
from calib.residuals.point_to_plane import PointToPlane
from calib.solver import Loss, Problem, SE3Manifold, SolverOptions, make_loss, solve
from calib.solver import chunks as chunks_module
from calib.solver import linear_solver as linear_solver
from calib.solver.linear_solver import NUMPY_DENSE_MAX, _cholesky_solve
from calib.solver.lm import _tiny
from calib.solver.normal_equations import _robust, linearize
from calib.solver.schur import LinearSolveError
from calib.solver.structure import Structure

LOSSES = ("huber", "soft_l1", "cauchy", "arctan", "tukey")


@dataclass(frozen=True)
class _Stiffening(Loss):
    """``rho(z) = z + z^2 / 2``: ``rho'' > 0``, the robust correction's curvature branch."""

    def _unit(self, z):
        return z + 0.5 * z * z, 1.0 + z, np.ones_like(z)


def _loss(name):
    return _Stiffening(0.5) if name == "stiffening" else make_loss(name, 0.5)


class _RowsPointToPlane(PointToPlane):
    """Point-to-plane pairs that the engine may evaluate in row chunks."""

    def restrict(self, rows):
        return _RowsPointToPlane(self.source[rows], self.target[rows], self.normals[rows])


def _pose_problem(n=400, seed=0, loss=None) -> Problem:
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, 3))
    nrm = rng.normal(size=(n, 3))
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    T = se3.exp(np.array([0.1, -0.2, 0.05, 0.02, -0.01, 0.03]))
    q = p @ T[:3, :3].T + T[:3, 3] + 1e-3 * rng.normal(size=(n, 1)) * nrm
    prob = Problem()
    prob.add_parameter("pose", np.eye(4)[None], SE3Manifold())
    prob.add_residuals(_RowsPointToPlane(p, q, nrm), [("pose", np.zeros(n, np.int64))], loss=loss)
    return prob


@pytest.fixture(params=["gufunc", "public"])
def numpy_lapack(request, monkeypatch):
    """numpy's LAPACK through its gufuncs, or through np.linalg (the fallback)."""
    if request.param == "public":
        monkeypatch.setattr(linear_solver, "_CHOLESKY", None)
    return request.param


@pytest.mark.parametrize("n", [1, 6, NUMPY_DENSE_MAX, NUMPY_DENSE_MAX + 1, 48])
def test_dense_solve_equals_scipy_cholesky(n, numpy_lapack):
    rng = np.random.default_rng(n)
    a = rng.normal(size=(3 * n, n)) * np.logspace(0, 4, n)  # condition ~1e8
    S, b = a.T @ a, rng.normal(size=n)
    ref = sla.cho_solve(sla.cho_factor(S), b)
    x = _cholesky_solve(S, b)
    assert np.abs(x - ref).max() <= 1e-7 * np.abs(ref).max()
    assert np.abs(S @ x - b).max() <= 1e-9 * np.abs(S).max() * np.abs(x).max()


@pytest.mark.parametrize("n", [6, NUMPY_DENSE_MAX + 1])
def test_dense_solve_refuses_indefinite(n, numpy_lapack):
    S = np.eye(n)
    S[-1, -1] = -1e-3
    with pytest.raises(LinearSolveError, match="not positive definite"):
        _cholesky_solve(S, np.ones(n))


def _spd(n, seed, cond_decades=4):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n + 5, n)) * np.logspace(0, cond_decades, n)
    return a.T @ a, rng.normal(size=n), rng.uniform(0.5, 2.0, n) * np.logspace(0, 2, n)


@pytest.mark.parametrize("n", [0, 1, 6, NUMPY_DENSE_MAX, NUMPY_DENSE_MAX + 1, 48, 128])
@pytest.mark.parametrize("mu", [0.0, 1e-4, 10.0])
def test_damped_dense_is_bitwise_scipys_damped_cholesky(n, mu):
    """The tiny path's one-call step against what it replaces: damp a copy of A, then
    scipy's f2py potrf / potrs beyond NUMPY_DENSE_MAX (numpy's solve up to it): bitwise
    equal, and the damped system's residual is at rounding level."""
    A, g, d = _spd(n, n)
    S = A.copy()
    S.reshape(-1)[::n + 1] += mu * d
    if n > NUMPY_DENSE_MAX:
        low, info = sla.lapack.dpotrf(S, lower=1, clean=0)
        ref, info2 = sla.lapack.dpotrs(low, -g, lower=1)
        assert info == info2 == 0
    else:
        ref = _cholesky_solve(S, -g) if n else np.zeros(0)
    x = linear_solver.damped_dense(A, g, d, mu)
    np.testing.assert_array_equal(x, ref)
    if n:
        assert np.abs(S @ x + g).max() <= 1e-8 * np.abs(S).max() * np.abs(x).max()


def test_damped_dense_reads_strided_inputs_and_leaves_them_alone():
    n = NUMPY_DENSE_MAX + 7
    A, g, d = _spd(n, 3)
    big = np.zeros((2 * n, 3 * n))
    big[::2, ::3] = A  # a strided view with the same values
    g2, d2 = np.repeat(g, 2)[::2], np.repeat(d, 3)[::3]
    before = big.copy()
    x = linear_solver.damped_dense(big[::2, ::3], g2, d2, 0.3)
    np.testing.assert_array_equal(x, linear_solver.damped_dense(A, g, d, 0.3))
    np.testing.assert_array_equal(big, before)


@pytest.mark.parametrize("n", [6, NUMPY_DENSE_MAX + 1, 48])
def test_damped_dense_refuses_indefinite_and_non_finite(n):
    A, g, d = _spd(n, 5)
    A[-1, :] = A[:, -1] = 0.0
    A[-1, -1] = -1.0  # damping 1e-3 * 1 cannot make the last pivot positive
    with pytest.raises(LinearSolveError, match="not positive definite"):
        linear_solver.damped_dense(A, g, np.ones(n), 1e-3)
    A, g, d = _spd(n, 6)
    g[0] = np.inf
    with pytest.raises(LinearSolveError, match="non-finite"):
        linear_solver.damped_dense(A, g, d, 1e-3)


def test_damped_solve_kernel_checks_its_arguments():
    from calib._native import kernels

    A, g, d = _spd(20, 1)
    w, x = np.empty((20, 20)), np.empty(20)
    with pytest.raises(ValueError, match="g has 19"):
        kernels.damped_solve(A, g[:19], d, 1.0, w, x)
    with pytest.raises(ValueError, match="A has 19"):
        kernels.damped_solve(A[:, :19], g, d, 1.0, w, x)
    with pytest.raises(ValueError, match="work must be a writable C-contiguous"):
        kernels.damped_solve(A, g, d, 1.0, np.empty((20, 40))[:, ::2], x)
    with pytest.raises(ValueError, match="float64"):
        kernels.damped_solve(A.astype(np.float32), g, d, 1.0, w, x)
    assert kernels.damped_solve(A, g, d, 1.0, w, x) == 0
    assert np.abs((A + np.diag(d)) @ x + g).max() < 1e-8 * np.abs(A).max() * np.abs(x).max()
    S = A.astype(np.float32)  # the wrapper converts, as scipy's f2py functions did
    np.testing.assert_array_equal(_cholesky_solve(S, g), _cholesky_solve(S.astype(float), g))


@pytest.mark.parametrize("case", ["icp pose", "bal 6 points", "bal 20 points"])
def test_engine_dense_step_equals_the_reduce_and_solve_path(case, monkeypatch):
    """Tiny problems solved by the engine's one-call dense step and by the general
    ``reduce`` + ``solve`` it replaces (forced): the same iterates, bit for bit; 6
    unknowns (numpy's LAPACK), 3 x 6 + 4 x 3 + 6 x 3 and + 20 x 3 (scipy's, from C)."""
    from solver_toys import bal_problem

    from calib.solver import lm

    def run():
        if case == "icp pose":
            return solve(_pose_problem(300, seed=2), SolverOptions(max_iterations=10))
        points = int(case.split()[1])
        prob = bal_problem(4, points, seed=7)
        prob.set_constant("poses", blocks=[0])  # part of the gauge
        assert NUMPY_DENSE_MAX < 30 + 3 * points and _tiny(prob, SolverOptions())
        return solve(prob, SolverOptions(max_iterations=10))

    fast = run()
    calls = []
    original = linear_solver.solve
    monkeypatch.setattr(lm, "_one_call_step", lambda method, neq: False)
    monkeypatch.setattr(lm.linear_solver, "solve",
                        lambda *a, **k: calls.append(1) or original(*a, **k))
    slow = run()
    assert len(calls) == len(slow.summary.iterations) >= 3
    assert fast.summary.final_cost < 1e-3 * fast.summary.initial_cost
    assert [r.cost for r in fast.summary.iterations] == [r.cost for r in slow.summary.iterations]
    for name in fast.values:
        np.testing.assert_array_equal(fast.values[name], slow.values[name])


@pytest.mark.parametrize("name", LOSSES + ("none",))
def test_loss_partial_evaluations_equal_the_full_one(name):
    s = np.concatenate([[0.0, 1e-12], np.logspace(-4, 4, 200)])
    loss = make_loss(name, 0.7)
    rho, d1, d2 = loss(s)
    np.testing.assert_array_equal(loss.rho(s), rho)
    for a, b in zip(loss.first_order(s), (rho, d1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loss.NONPOSITIVE_CURVATURE and np.all(d2 <= 0)  # what the flag promises


@pytest.mark.parametrize("name", LOSSES + ("stiffening",))
@pytest.mark.parametrize("m", [1, 3])
def test_robust_correction_against_its_definition(name, m):
    """Gradient ``J'^T r' = rho' J^T r`` exactly; Hessian ``J'^T J' = J^T (rho' I + 2 rho''
    r r^T) J`` where ``rho'' > 0``, plain reweighting ``rho' J^T J`` elsewhere; the cost-only
    call gives the same cost."""
    rng = np.random.default_rng(m)
    r = rng.normal(size=(50, m)) * np.logspace(-2, 1, 50)[:, None]
    j = rng.normal(size=(50, m, 4))
    loss = _loss(name)
    cost, r2, (j2,) = _robust(r, [j], loss)
    s = np.sum(r * r, axis=1)
    rho, d1, d2 = loss(s)
    assert cost == pytest.approx(0.5 * rho.sum(), rel=1e-15)
    assert _robust(r, None, loss)[0] == cost
    np.testing.assert_allclose(np.einsum("nmd,nm->d", j2, r2),
                               np.einsum("n,nmd,nm->d", d1, j, r), rtol=1e-10, atol=1e-12)
    curv = np.where(d2 > 0, 2 * d2, 0.0)[:, None, None] * r[:, :, None] * r[:, None, :]
    w = d1[:, None, None] * np.eye(m) + curv
    np.testing.assert_allclose(np.einsum("nmd,nme->de", j2, j2),
                               np.einsum("nkd,nkl,nle->de", j, w, j), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("chunk_doubles", [None, 700])
def test_whole_pose_jacobian_equals_block_sums(monkeypatch, chunk_doubles):
    if chunk_doubles:  # 100 rows a chunk: the dense sums are added chunk by chunk
        monkeypatch.setattr(chunks_module, "CHUNK_DOUBLES", chunk_doubles)
    prob = _pose_problem(loss=make_loss("huber", 2e-3))
    vals = {"pose": se3.exp(np.array([0.01, 0.0, -0.02, 0.0, 0.01, 0.0]))[None]}
    assert _tiny(prob, SolverOptions())
    st = Structure(prob, schur=False)
    assert st.terms[0].dense_whole and len(st.terms[0].chunks) == (4 if chunk_doubles else 1)
    ref = linearize(Structure(prob, schur=True), vals).neq  # A as CSR from the block sums
    got = linearize(st, vals).neq
    assert isinstance(got.A, np.ndarray)
    np.testing.assert_allclose(got.A, ref.A.toarray(), rtol=1e-12, atol=1e-12 * np.abs(got.A).max())
    np.testing.assert_allclose(got.g_r, ref.g_r, rtol=1e-12, atol=1e-12 * np.abs(got.g_r).max())


def test_pose_solve_recovers_the_pose_as_the_block_path():
    prob = _pose_problem(loss=make_loss("huber", 2e-3))
    opts = dict(function_tolerance=1e-14, parameter_tolerance=1e-14)
    dense = solve(prob, SolverOptions(**opts))
    block = solve(prob, SolverOptions(no_schur_max_size=0, **opts))  # CSR A, scipy Cholesky
    truth = se3.exp(np.array([0.1, -0.2, 0.05, 0.02, -0.01, 0.03]))
    assert dense.summary.linear_solver == "dense"
    assert np.abs(dense["pose"][0] - truth).max() < 5e-4
    np.testing.assert_allclose(dense["pose"], block["pose"], rtol=0, atol=1e-12)
    assert dense.summary.final_cost == pytest.approx(block.summary.final_cost, rel=1e-12)


NO_SCIPY = """
import sys
import numpy as np
from calib.registration import ICPOptions, register
rng = np.random.default_rng(0)
u, v = rng.uniform(-1, 1, (2, 3000))
tgt = np.c_[u, v, 0.2 * np.sin(2 * u) * np.cos(3 * v)]
src = tgt @ np.array([[1, -0.02, 0], [0.02, 1, 0], [0, 0, 1]]) + [0.01, -0.02, 0.005]
r = register(src, tgt, np.eye(4), ICPOptions(max_correspondence_distance=0.2))
r.covariance
print(sorted(m for m in sys.modules if m == "scipy" or m.startswith("scipy.")))
"""


def test_registration_imports_no_scipy():
    out = subprocess.run([sys.executable, "-c", NO_SCIPY], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


LATE_BLAS = """
import json
from threadpoolctl import threadpool_info, threadpool_limits
from calib.solver import lazy, threads

def counts():
    return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

with threadpool_limits(2, user_api="blas"):
    with threads.blas_threads():  # the controller sees numpy's BLAS only
        with threads.blas_threads():
            nested = counts()
        lazy.scipy_linalg()  # loads scipy's own BLAS inside the block
        inside = counts()
    after = counts()
print(json.dumps([nested, inside, after]))
"""


def test_blas_loaded_inside_a_solve_is_limited_and_restored():
    env = {k: v for k, v in os.environ.items() if k != "CALIB_BLAS_THREADS"}
    env.update(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2")  # scipy's BLAS loads with 2
    out = subprocess.run([sys.executable, "-c", LATE_BLAS], capture_output=True, text=True,
                         check=True, env=env).stdout
    import json

    nested, inside, after = json.loads(out)
    assert set(nested.values()) == {1}
    assert len(inside) > len(nested) and set(inside.values()) == {1}
    assert set(after.values()) == {2} and after.keys() == inside.keys()


def _ba_problem(n_cameras=6, n_points=80, seed=2) -> Problem:
    """A small bundle adjustment (poses, intrinsics, eliminated points) from the synthetic
    BAL generator, built as calib.bundle builds it."""
    from calib.bundle.ba import cameras_to_poses
    from calib.residuals.bal_projection import BALProjection
    from calib.solver import Euclidean
    from calib_datasets.bal_synth import synthetic_bal

    p, _ = synthetic_bal(n_cameras=n_cameras, n_points=n_points, noise_px=0.5, seed=seed)
    prob = Problem()
    prob.add_parameter("poses", cameras_to_poses(p.cameras), SE3Manifold())
    prob.add_parameter("intrinsics", p.cameras[:, 6:9], Euclidean(3))
    prob.add_parameter("points", p.points, Euclidean(3), eliminate=True)
    prob.add_residuals(BALProjection(p.observations), [("poses", p.camera_index),
                                                        ("intrinsics", p.camera_index),
                                                        ("points", p.point_index)])
    return prob


@pytest.mark.parametrize("dense_a", [False, True])
def test_coupling_products_from_sub_blocks_equal_the_sparse_matrix(dense_a, monkeypatch):
    """``W y`` from the sub-blocks (small couplings, no scipy.sparse) equals the BSR
    product and the dense product of the scattered Jacobian blocks; A assembled dense (a
    dense reduced solve) holds the very sums of the CSR assembly."""
    prob = _ba_problem()
    structure = Structure(prob)
    values = {n: g.value for n, g in prob.groups.items()}
    sparse_neq = linearize(structure, values, True).neq
    structure.dense_a = dense_a
    neq = linearize(structure, values, True).neq
    assert isinstance(neq.A, np.ndarray) == dense_a
    np.testing.assert_array_equal(np.asarray(neq.A.todense() if not dense_a else neq.A),
                                  sparse_neq.A.toarray())
    es = neq.elim["points"]
    assert len(es.w_sub) <= es.SUB_BLOCK_DOT_MAX and "_w" not in es.__dict__
    y = np.random.default_rng(0).normal(size=es.g.shape)
    by_blocks = es.w_dot(y)
    assert "_w" not in es.__dict__  # no sparse matrix was formed
    W = es.W.toarray()
    np.testing.assert_allclose(by_blocks, W @ y.ravel(), rtol=1e-13, atol=1e-9)
    assert np.abs(W).sum() > 0 and np.abs(by_blocks).max() > 0
    monkeypatch.setattr(type(es), "SUB_BLOCK_DOT_MAX", 0)  # the BSR path, same product
    np.testing.assert_allclose(es.w_dot(y), by_blocks, rtol=1e-13, atol=1e-9)


def test_dense_reduced_solve_assembles_a_dense_and_matches_the_sparse_solver():
    prob = _ba_problem(n_cameras=5, n_points=60, seed=4)
    dense = solve(prob, SolverOptions(linear_solver="dense", max_iterations=20))
    sparse = solve(prob, SolverOptions(linear_solver="sparse", max_iterations=20))
    assert dense.summary.linear_solver == "dense" and sparse.summary.linear_solver == "sparse"
    assert dense.summary.final_cost < 0.01 * dense.summary.initial_cost
    np.testing.assert_allclose(dense.summary.final_cost, sparse.summary.final_cost, rtol=1e-9)
    for name in ("poses", "intrinsics", "points"):
        np.testing.assert_allclose(dense.values[name], sparse.values[name], rtol=1e-7,
                                   atol=1e-9)


FIT_WITHOUT_SPARSE = r"""
import json, sys
import numpy as np
from calib.intrinsics import fit_intrinsics
d = np.load(sys.argv[1])
size = tuple(int(v) for v in d["image_size"])
r = fit_intrinsics(d["object_points"].astype(float), d["image_points"].astype(float), size)
out = {"sparse": sorted(m for m in sys.modules if m.startswith("scipy.sparse")),
       "fx": float(r.K[0, 0]), "rms": float(r.rms_px)}
import cv2  # the reference, imported after the check
obj = [d["object_points"].astype(np.float32)] * len(d["image_points"])
rms, K, *_ = cv2.calibrateCamera(obj, [v.astype(np.float32) for v in d["image_points"]],
                                 size, None, None)
out.update(cv_fx=float(K[0, 0]), cv_rms=float(rms))
print(json.dumps(out))
"""


def test_a_camera_fit_imports_no_scipy_sparse(shared_datasets):
    """A dense reduced solve needs no sparse matrix: a 13-view fit never imports
    scipy.sparse (0.13-0.2 s of every ``calib fit-intrinsics``), and its answer is
    OpenCV's calibrateCamera on the same corners."""
    import json

    path = shared_datasets / "opencv_stereo_chessboard_left" / "corners_9x6.npz"
    out = subprocess.run([sys.executable, "-c", FIT_WITHOUT_SPARSE, str(path)], check=True,
                         capture_output=True, text=True, timeout=120)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["sparse"] == []
    assert abs(res["fx"] - res["cv_fx"]) < 0.01 and abs(res["rms"] - res["cv_rms"]) < 1e-3
