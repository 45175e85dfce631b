"""The solver's BLAS thread policy (calib/solver/threads.py): one thread inside calib's
solves and task entry points unless CALIB_BLAS_THREADS says otherwise, restored after."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from calib.bundle import bundle_adjust_problem, read_bal
from calib.errors import InputError
from calib.solver.threads import ENV_VAR, blas_threads, solver_threads


def _blas_threads() -> set[int]:
    return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}


def _threads_seen_by_the_solver(bundled) -> set[int]:
    seen: set[int] = set()
    bal = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    bundle_adjust_problem(bal, max_iterations=2, callback=lambda rec: seen.update(_blas_threads()))
    return seen


@pytest.mark.parametrize(("value", "expected"), [(None, 1), ("", 1), ("1", 1), ("3", 3),
                                                 ("default", None), (" Default ", None)])
def test_setting(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(ENV_VAR, value)
    assert solver_threads() == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_setting_names_the_variable(monkeypatch, value):
    monkeypatch.setenv(ENV_VAR, value)
    with pytest.raises(InputError, match=f"{ENV_VAR}=.*positive number of threads"):
        solver_threads()


def test_one_thread_inside_the_solver_restored_after(monkeypatch, bundled):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with threadpool_limits(2, user_api="blas"):  # the caller's own setting
        assert _threads_seen_by_the_solver(bundled) == {1}
        assert _blas_threads() == {2}
        monkeypatch.setenv(ENV_VAR, "default")
        assert _threads_seen_by_the_solver(bundled) == {2}
        monkeypatch.setenv(ENV_VAR, "2")
        with blas_threads():
            assert _blas_threads() == {2}


def test_same_answer_with_any_thread_setting(monkeypatch, bundled):
    bal = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    costs = []
    for value in ("1", "2", "default"):
        monkeypatch.setenv(ENV_VAR, value)
        r = bundle_adjust_problem(bal, max_iterations=10)
        costs.append((r.final_cost, r.iterations, r.points.copy()))
    for c in costs[1:]:
        assert c[1] == costs[0][1]
        assert abs(c[0] - costs[0][0]) <= 1e-9 * costs[0][0]
        np.testing.assert_allclose(c[2], costs[0][2], rtol=1e-8, atol=1e-10)
