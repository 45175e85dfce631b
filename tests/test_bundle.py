"""Bundle adjustment: BAL I/O, Jacobians, the Ceres reference cost, bad files."""

from __future__ import annotations

import numpy as np
import pytest

from calib.bundle import BALProblem, bundle_adjust_problem, read_bal, write_bal
from calib.errors import InputError
from calib.lie import se3
from calib.residuals.bal_projection import BALProjection
from calib.solver import Euclidean, SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians
from calib_cli.main import main


def test_bal_projection_jacobians_numerically():
    rng = np.random.default_rng(0)
    T = se3.exp(np.c_[rng.normal(0, 0.3, (3, 3)), rng.normal(0, 0.2, (3, 3))])
    T[:, 2, 3] -= 5
    K = np.c_[rng.uniform(400, 600, 3), rng.normal(0, 0.1, 3), rng.normal(0, 0.01, 3)]
    X = rng.normal(0, 1, (10, 3))
    ci, pi = rng.integers(0, 3, 25), rng.integers(0, 10, 25)
    fam = BALProjection(rng.normal(0, 100, (25, 2)))
    vals, idx = [T, K, X], [ci, ci, pi]
    _, jac = fam.evaluate(vals, idx)
    num = numeric_family_jacobians(fam, vals, idx, [SE3Manifold(), Euclidean(3), Euclidean(3)])
    for a, b in zip(jac, num, strict=True):
        assert_jacobian_close(a, b, rtol=1e-6)


def test_problem49_reaches_ceres_cost(shared_datasets):
    """Ceres SPARSE_SCHUR, no loss: initial 8.509125e5, final 1.334432e4 (32 iterations)."""
    p = read_bal(shared_datasets / "bal" / "problem-49-7776-pre.txt")
    assert (len(p.cameras), len(p.points), len(p.observations)) == (49, 7776, 31843)
    r = bundle_adjust_problem(p, max_iterations=50)
    assert r.initial_cost == pytest.approx(8.509125e5, rel=1e-6)
    assert r.final_cost <= 1.334432e4 * (1 + 1e-3)
    assert r.termination == "converged"
    assert r.summary.linear_solver == "dense"  # auto: 49 cameras -> dense reduced system
    assert r.num_behind_camera == 31  # counted and kept
    # the reported cost is the cost of the returned cameras and points
    fam = BALProjection(p.observations)
    from calib.bundle.ba import cameras_to_poses

    res, _ = fam.evaluate([cameras_to_poses(r.cameras), r.cameras[:, 6:9], r.points],
                          [p.camera_index, p.camera_index, p.point_index], jacobians=False)
    assert 0.5 * np.sum(res ** 2) == pytest.approx(r.final_cost, rel=1e-9)


@pytest.mark.parametrize("solver", ["sparse", "cg"])  # dense: test_problem49_reaches_ceres_cost
def test_linear_solvers_reach_the_same_cost(shared_datasets, solver):
    p = read_bal(shared_datasets / "bal" / "problem-49-7776-pre.txt")
    r = bundle_adjust_problem(p, max_iterations=50, linear_solver=solver)
    assert r.final_cost <= 1.334432e4 * (1 + 1e-3)
    assert r.summary.linear_solver == solver


def test_synthetic_recovers_truth():
    from calib_datasets.bal_synth import synthetic_bal

    start, truth = synthetic_bal(n_cameras=120, n_points=3000, noise_px=0.0, seed=1)
    r = bundle_adjust_problem(start, function_tolerance=1e-12, gradient_tolerance=1e-12,
                              parameter_tolerance=1e-12, max_iterations=100)
    assert r.final_cost < 1e-10 * r.initial_cost


def test_robust_loss_option(shared_datasets):
    p = read_bal(shared_datasets / "bal" / "problem-49-7776-pre.txt")
    r = bundle_adjust_problem(p, loss="huber", loss_scale=1.0, max_iterations=10)
    assert r.final_cost < r.initial_cost


def test_bal_roundtrip(tmp_path, bundled):
    p = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    write_bal(tmp_path / "x.txt", p)
    q = read_bal(tmp_path / "x.txt")
    for a, b in zip((p.cameras, p.points, p.camera_index, p.point_index, p.observations),
                    (q.cameras, q.points, q.camera_index, q.point_index, q.observations),
                    strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t[: len(t) // 2], "truncated"),
    (lambda t: t.replace("\n0 1 ", "\n7 1 ", 1), "references camera 7"),
    (lambda t: t.replace("\n0 1 ", "\n0 99 ", 1), "references point 99"),
    (lambda t: "3 7\n" + t.split("\n", 1)[1], "header"),
    (lambda t: t.replace("-3.859900e+02", "nan", 1), "NaN"),
    (lambda t: t.replace("-3.859900e+02", "x.y", 1), "not a number"),
    (lambda t: "", "empty"),
])
def test_bad_bal_files(tmp_path, bundled, edit, message):
    text = (bundled / "bal" / "dubrovnik-3-7-pre.txt").read_text()
    p = tmp_path / "bad.txt"
    p.write_text(edit(text))
    with pytest.raises(InputError, match=message) as exc:
        read_bal(p)
    assert str(p) in str(exc.value)


def test_cli(tmp_path, bundled, capsys):
    out, rep = tmp_path / "solved.txt", tmp_path / "r.json"
    code = main(["bundle-adjust", str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "-o", str(out),
                 "--report", str(rep), "--max-iterations", "20"])
    assert code == 0
    err = capsys.readouterr().err
    assert "iter   1" in err and "cost" in err
    import json

    d = json.loads(rep.read_text())
    for key in ("initial_cost", "final_cost", "iterations", "termination", "time_s",
                "phase_times_s"):
        assert key in d
    assert d["final_cost"] < d["initial_cost"]
    q = read_bal(out)
    assert isinstance(q, BALProblem) and len(q.cameras) == 3
    bad = tmp_path / "bad.txt"
    bad.write_text("3 7 19\n0 0 1 2\n")
    assert main(["bundle-adjust", str(bad), "-o", str(tmp_path / "o2.txt"), "--quiet"]) == 2
    assert not (tmp_path / "o2.txt").exists()
