"""Bundle adjustment on a tiny problem (dubrovnik-3-7: 3 cameras, 7 points, 19 observations):
where one LM iteration of calib's tiny path spends its time, and what numba would change.
(Since the sixth session the BAL residual and the SE3 update are compiled C in calib itself,
csrc, built by ``pip install``, and since the seventh the tiny path's dense ``J^T J`` /
``J^T r`` (``dense_gram``) and the finite checks too; the numba experiment now compares
against those and stays as the record of why numba was not adopted: its import and
compile or cache load in every process.)

``breakdown``: the pieces of one iteration (min over batches of the thread's CPU time in one
process, which stays meaningful on a loaded machine better than a wall-time median) and the whole
``bundle_adjust`` divided by its iterations; ``--ref PATH`` runs the same in a subprocess on
another checkout (e.g. /work/main) for a before/after table.

``numba`` (needs ``pip install numba``; calib does not depend on it): the BAL residual with
Jacobians and the SE3 update as ``@njit`` loops, patched into the engine for the
experiment. Reports the import time of numba, the compile time of the first call in a fresh
process (``cache=False``), the load time from numba's cache in a second process
(``cache=True``, kernels in a temporary package), the kernels against numpy, whole solves
with the kernels, and the final cost and parameters against calib's own path (dubrovnik-3-7 is
under-determined, so its 50 iterations drift apart at 1e-10 from a last-bit difference; the
well-determined synthetic 4-camera problem of the tests is compared too).

Usage: python bench/bench_ba_tiny.py breakdown [--ref /work/main] [--rounds 3]
       python bench/bench_ba_tiny.py numba
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DUBROVNIK = "bal/dubrovnik-3-7-pre.txt"

KERNELS = r'''
import numpy as np
from numba import njit


@njit(cache=CACHE)
def bal_eval(T, K, Xw, ci, ki, pi, obs, jac, res, J):
    for i in range(len(ci)):
        c = ci[i]
        q = pi[i]
        X0, X1, X2 = Xw[q, 0], Xw[q, 1], Xw[q, 2]
        x = T[c, 0, 0] * X0 + T[c, 0, 1] * X1 + T[c, 0, 2] * X2 + T[c, 0, 3]
        y = T[c, 1, 0] * X0 + T[c, 1, 1] * X1 + T[c, 1, 2] * X2 + T[c, 1, 3]
        z = T[c, 2, 0] * X0 + T[c, 2, 1] * X1 + T[c, 2, 2] * X2 + T[c, 2, 3]
        f, k1, k2 = K[ki[i], 0], K[ki[i], 1], K[ki[i], 2]
        inv_z = 1.0 / z
        px, py = -x * inv_z, -y * inv_z
        r2 = px * px + py * py
        dist = 1.0 + r2 * (k1 + k2 * r2)
        fd = f * dist
        res[i, 0] = fd * px - obs[i, 0]
        res[i, 1] = fd * py - obs[i, 1]
        if not jac:
            continue
        g = f * (2.0 * k1 + 4.0 * k2 * r2)
        gxy = g * px * py
        for row in range(2):
            d0, d1, pr = (fd + g * px * px, gxy, px) if row == 0 else (gxy, fd + g * py * py, py)
            a, b = -d0 * inv_z, -d1 * inv_z
            cc = -(d0 * px + d1 * py) * inv_z
            J[i, row, 0], J[i, row, 1], J[i, row, 2] = a, b, cc
            J[i, row, 3] = cc * y - b * z
            J[i, row, 4] = a * z - cc * x
            J[i, row, 5] = b * x - a * y
            J[i, row, 6] = dist * pr
            fr = f * r2 * pr
            J[i, row, 7] = fr
            J[i, row, 8] = fr * r2
            for col in range(3):
                J[i, row, 9 + col] = a * T[c, 0, col] + b * T[c, 1, col] + cc * T[c, 2, col]


@njit(cache=CACHE)
def se3_plus(x, delta, cs, out):
    for m in range(x.shape[0]):
        p0, p1, p2 = delta[m, 3], delta[m, 4], delta[m, 5]
        t = np.sqrt(p0 * p0 + p1 * p1 + p2 * p2)
        if t < 0.3:
            t2 = t * t
            a, b, c = cs[-1, 0], cs[-1, 1], cs[-1, 2]
            for k in range(cs.shape[0] - 2, -1, -1):
                a, b, c = a * t2 + cs[k, 0], b * t2 + cs[k, 1], c * t2 + cs[k, 2]
        else:
            s, co = np.sin(t), np.cos(t)
            a, b, c = s / t, (1 - co) / t ** 2, (t - s) / t ** 3
        K = np.array([[0.0, -p2, p1], [p2, 0.0, -p0], [-p1, p0, 0.0]])
        K2 = K @ K
        R = a * K + b * K2 + np.eye(3)
        Jl = b * K + c * K2 + np.eye(3)
        for i in range(3):
            for j in range(4):
                out[m, i, j] = R[i, 0] * x[m, 0, j] + R[i, 1] * x[m, 1, j] + R[i, 2] * x[m, 2, j]
            out[m, i, 3] += Jl[i, 0] * delta[m, 0] + Jl[i, 1] * delta[m, 1] + Jl[i, 2] * delta[m, 2]
        out[m, 3, 0], out[m, 3, 1], out[m, 3, 2], out[m, 3, 3] = 0.0, 0.0, 0.0, 1.0
'''


def _best(fn, batches: int = 9, n: int = 200) -> float:
    """Min over ``batches`` of the mean CPU time (this thread's, so time spent waiting for a
    core on a shared machine is not counted) of ``n`` calls, in microseconds."""
    fn()
    best = float("inf")
    for _ in range(batches):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n)
    return best * 1e6


def _engine_problem(p):
    import numpy as np

    from calib.bundle.ba import cameras_to_poses
    from calib.residuals.bal_projection import BALProjection
    from calib.solver import Euclidean, Problem, SE3Manifold

    order = np.lexsort((p.point_index, p.camera_index))
    ci, pi = p.camera_index[order], p.point_index[order]
    prob = Problem()
    prob.add_parameter("poses", cameras_to_poses(p.cameras), SE3Manifold())
    prob.add_parameter("intrinsics", p.cameras[:, 6:9], Euclidean(3))
    prob.add_parameter("points", p.points, Euclidean(3), eliminate=True)
    prob.add_residuals(BALProjection(p.observations[order]),
                       [("poses", ci), ("intrinsics", ci), ("points", pi)])
    return prob


def breakdown() -> dict:
    """Microseconds of each piece of one tiny-path iteration on dubrovnik-3-7."""
    from common import SHARED

    from calib.bundle import bundle_adjust_problem, read_bal
    from calib.solver import SolverOptions, linear_solver, lm
    from calib.solver.normal_equations import assemble, hessian_quadratic_form, linearize
    from calib.solver.schur import back_substitute, diagonals, reduce
    from calib.solver.structure import Structure

    p = read_bal(SHARED / DUBROVNIK)
    prob = _engine_problem(p)
    rb = prob.residual_blocks[0]
    fam, vals_l, idx = rb.family, [prob.groups[g].value for g in rb.groups], rb.indices
    st = Structure(prob, schur=not lm._tiny(prob, SolverOptions()))
    vals = {n: g.value.copy() for n, g in prob.groups.items()}
    neq = assemble(st, linearize(st, vals, True))
    diag = diagonals(neq, 1e-6, 1e32)
    red = reduce(st, neq, 1e-4, diag, dense=True, blocks=True)
    dx, _ = linear_solver.solve(st, red.S, red.b, "dense")
    dxe = back_substitute(neq, red, dx)
    se3 = prob.groups["poses"].manifold
    out = {
        "BAL residual + Jacobians": _best(lambda: fam.evaluate(vals_l, idx, True)),
        "BAL residual only": _best(lambda: fam.evaluate(vals_l, idx, False)),
        "linearize with Jacobians (BAL + checks + dense_gram J^T J, J^T r)":
            _best(lambda: linearize(st, vals, True)),
        "linearize, cost only": _best(lambda: linearize(st, vals, False)),
        "diagonals + max|g|": _best(lambda: (diagonals(neq, 1e-6, 1e32),
                                             neq.gradient_max_norm())),
        "damping (reduce)": _best(lambda: reduce(st, neq, 1e-4, diag, dense=True, blocks=True)),
        "potrf + potrs": _best(lambda: linear_solver.solve(st, red.S, red.b, "dense")),
        # since the eighth session the engine's step: damping, potrf and potrs in one call
        # (before it, the two lines above: the same arithmetic)
        "damped step (the engine's)": _best(
            (lambda: linear_solver.damped_dense(neq.A, neq.g_r, diag[0], 1e-4))
            if hasattr(linear_solver, "damped_dense") else
            (lambda: linear_solver.solve(st, reduce(st, neq, 1e-4, diag, dense=True,
                                                     blocks=True).S, -neq.g_r, "dense"))),
        "model decrease": _best(lambda: hessian_quadratic_form(neq, dx, dxe)),
        "update (all groups)": _best(lambda: lm._apply_step(st, vals, dx * 1e-3, dxe)),
        "  of which SE3 update": _best(lambda: se3.plus(vals["poses"],
                                                        dx[:27].reshape(3, 9)[:, :6] * 1e-3)),
        "|x|": _best(lambda: lm._x_norm(st, vals)),
    }
    r = bundle_adjust_problem(p)
    out["whole bundle_adjust / iteration"] = _best(lambda: bundle_adjust_problem(p), 5, 5) \
        / r.iterations
    return out


def _kernel_package(cache: bool) -> Path:
    d = Path(tempfile.mkdtemp(prefix="calib_nb_"))
    (d / "calib_nb_kernels.py").write_text(KERNELS.replace("CACHE", str(cache)))
    return d


def _compile_times(pkg: Path) -> dict:
    """Import of numba and first call, in a fresh process."""
    code = (
        "import sys, time; t0 = time.perf_counter(); import numba; t1 = time.perf_counter();"
        f"sys.path.insert(0, {str(pkg)!r}); import numpy as np, calib_nb_kernels as k;"
        "T = np.tile(np.eye(4), (3, 1, 1)); T[:, 2, 3] = -5; K = np.ones((3, 3));"
        "X = np.zeros((7, 3)); i = np.arange(19) % 3; j = np.arange(19) % 7;"
        "t2 = time.perf_counter();"
        "k.bal_eval(T, K, X, i, i, j, np.zeros((19, 2)), True, np.empty((19, 2)),"
        " np.empty((19, 2, 12)));"
        "k.se3_plus(T, np.zeros((3, 6)), np.ones((9, 3)), np.empty_like(T));"
        "print(t1 - t0, time.perf_counter() - t2)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return {"import numba s": float(out[0]), "first call s": float(out[1])}


def numba_experiment() -> dict:
    import numpy as np
    from common import SHARED

    from calib.bundle import bundle_adjust_problem, read_bal
    from calib.lie import _series
    from calib.residuals.bal_projection import BALProjection
    from calib.solver import SE3Manifold, SolverOptions, solve

    out = {"no cache (compile)": _compile_times(_kernel_package(False))}
    pkg = _kernel_package(True)
    _compile_times(pkg)  # fills the cache
    out["cache=True, second process"] = _compile_times(pkg)
    sys.path.insert(0, str(pkg))
    import calib_nb_kernels as k

    cs = np.ascontiguousarray(_series._RODRIGUES)
    numpy_eval, numpy_plus = BALProjection.evaluate, SE3Manifold.plus

    def nb_eval(self, values, indices, jacobians=True):
        n = len(self.observed)
        res, J = np.empty((n, 2)), np.empty((n, 2, 12))
        k.bal_eval(values[0], np.ascontiguousarray(values[1]), values[2], indices[0],
                   indices[1], indices[2], self.observed, jacobians, res, J)
        return res, ([J[:, :, :6], J[:, :, 6:9], J[:, :, 9:]] if jacobians else None)

    def nb_plus(self, x, delta):
        o = np.empty_like(x)
        k.se3_plus(x, np.ascontiguousarray(delta), cs, o)
        return o

    p = read_bal(SHARED / DUBROVNIK)
    prob = _engine_problem(p)
    rb = prob.residual_blocks[0]
    vals, idx = [prob.groups[g].value for g in rb.groups], rb.indices
    out["BAL residual + Jacobians us, numpy / numba"] = (
        _best(lambda: rb.family.evaluate(vals, idx, True)),
        _best(lambda: nb_eval(rb.family, vals, idx, True)))
    sys.path.insert(0, str(HERE.parent / "tests"))
    from solver_toys import bal_problem

    toy = bal_problem(4, 20, seed=7)
    toy.set_constant("poses", blocks=[0])
    opts = SolverOptions(function_tolerance=1e-14, parameter_tolerance=1e-14, max_iterations=40)
    runs = {}
    for label, ev, pl in (("numpy", numpy_eval, numpy_plus), ("numba", nb_eval, nb_plus)):
        BALProjection.evaluate, SE3Manifold.plus = ev, pl
        r = bundle_adjust_problem(p)
        runs[label] = (_best(lambda: bundle_adjust_problem(p), 5, 5) / 1e3, r, solve(toy, opts))
    BALProjection.evaluate, SE3Manifold.plus = numpy_eval, numpy_plus
    (t_np, r_np, toy_np), (t_nb, r_nb, toy_nb) = runs["numpy"], runs["numba"]
    out["dubrovnik bundle_adjust ms (min), numpy / numba"] = (t_np, t_nb)
    out["dubrovnik final cost rel. diff (under-determined)"] = abs(
        r_nb.final_cost / r_np.final_cost - 1)
    out["toy (4 cams, 20 pts) final cost rel. diff"] = abs(
        toy_nb.summary.final_cost / toy_np.summary.final_cost - 1)
    out["toy max parameter rel. diff"] = max(
        float(np.abs(toy_nb[n] - toy_np[n]).max() / np.abs(toy_np[n]).max())
        for n in ("poses", "intrinsics", "points"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("breakdown", "numba"))
    ap.add_argument("--ref", help="another checkout for a before/after breakdown")
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternate the checkouts this many times; min per piece")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if args.what == "numba":
        for key, v in numba_experiment().items():
            print(f"{key:55s} {v}")
        return
    if args.json:
        print(json.dumps(breakdown()))
        return
    ours, ref = {}, {}
    for _ in range(args.rounds):  # alternated, so slow phases of a shared machine hit both
        for store, path in ((ref, args.ref), (ours, None)):
            if path is None and store is ref:
                continue
            paths = [path or str(HERE.parent), str(HERE)]
            env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
            got = json.loads(subprocess.run([sys.executable, __file__, "breakdown", "--json"],
                                            capture_output=True, text=True, env=env,
                                            check=True).stdout)
            for key, v in got.items():
                store[key] = min(store.get(key, v), v)
    ref = ref or None
    print(f"| piece (us, min over batches) | {args.ref or ''} | this checkout |")
    print("| --- | --- | --- |")
    for key, v in ours.items():
        print(f"| {key} | {'' if ref is None else f'{ref[key]:.1f}'} | {v:.1f} |")


if __name__ == "__main__":
    main()
