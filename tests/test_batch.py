"""``calib batch`` on a real Dask cluster: a scheduler and two worker processes started here
on 127.0.0.1, jobs that fail, a worker killed mid-batch, re-runs from the cache, and bad
jobs files refused before any job runs. Jobs are tiny: fit-intrinsics on synthetic corner
files (true camera known), register-clouds and bundle-adjust on small inputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from calib.camera.pinhole import project
from calib.intrinsics import Chessboard
from calib.lie import se3
from calib_cli.batch import run
from calib_cli.main import main

TRUE = np.array([600.0, 605.0, 320.0, 240.0, -0.2, 0.05, 0.001, -0.001, 0.0])


def corners_file(path: Path, n_views: int, seed: int) -> Path:
    """``n_views`` of a 9x6 board seen by the camera TRUE, 0.2 px noise (an NPZ)."""
    rng = np.random.default_rng(seed)
    obj = Chessboard(9, 6, 0.03).object_points()
    obj = obj - obj.mean(0)
    views = []
    while len(views) < n_views:
        R = se3.exp(np.r_[0, 0, 0, rng.normal(0, 0.3, 3)])[:3, :3]
        T = se3.from_rt(R, [rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05),
                            rng.uniform(0.4, 0.7)])
        uv = project(se3.act(T, obj), TRUE)
        if np.all((uv > 0) & (uv < [639, 479])):
            views.append(uv + rng.normal(0, 0.2, uv.shape))
    np.savez(path, image_points=np.stack(views), object_points=obj,
             image_size=np.array([640, 480]))
    return path


def write_jobs(folder: Path, jobs: list[dict]) -> Path:
    import yaml

    p = folder / "jobs.yaml"
    p.write_text(yaml.safe_dump({"jobs": jobs}))
    return p


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes (one thread, no nanny) on 127.0.0.1."""

    def __init__(self, n_workers: int):
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", str(port), "--no-dashboard"], **self._quiet())
        self.workers: dict[str, subprocess.Popen] = {}
        for _ in range(n_workers):
            self.add_worker()
        from distributed import Client

        self.client = Client(self.address, timeout=60)
        self.client.wait_for_workers(n_workers, timeout=120)

    @staticmethod
    def _quiet() -> dict:
        env = {k: v for k, v in os.environ.items() if k != "CALIB_DEBUG"}
        return {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}

    def add_worker(self) -> str:
        port = _free_port()
        address = f"tcp://127.0.0.1:{port}"
        self.workers[address] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
             "--nthreads", "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
             "--worker-port", str(port)], **self._quiet())
        return address

    def close(self) -> None:
        self.client.close()
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def cluster():
    c = Cluster(2)
    yield c
    c.close()


@pytest.fixture(scope="module")
def corners(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corners")
    for i in range(3):
        corners_file(d / f"cam{i}.npz", 15, seed=i)
    corners_file(d / "two_views.npz", 2, seed=7)
    return d


def _intrinsics_jobs(n: int = 3) -> list[dict]:
    return [{"name": f"cam{i}", "command": "fit-intrinsics",
             "args": ["--corners", f"cam{i}.npz", "-q"]} for i in range(n)]


def test_batch_with_failing_jobs_on_a_real_cluster(cluster, corners, tmp_path, capsys):
    jobs = write_jobs(corners, _intrinsics_jobs() + [
        {"name": "too-few", "command": "fit-intrinsics", "args": ["--corners", "two_views.npz"]},
        {"name": "missing", "command": "fit-intrinsics", "args": ["--corners", "nope.npz"]}])
    out = tmp_path / "out"
    code = main(["batch", str(jobs), "-o", str(out), "--scheduler", cluster.address, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("calib: error: 2 of 5 jobs failed (too-few, missing)")
    rows = json.loads((out / "summary.json").read_text())
    assert [r["name"] for r in rows] == ["cam0", "cam1", "cam2", "too-few", "missing"]
    for r in rows[:3]:  # the fits: the true camera within 4 sigma, the same as the report
        assert (r["status"], r["exit_code"], r["error"], r["cached"]) == ("ok", 0, None, False)
        assert r["worker"] in cluster.workers and r["seconds"] > 0
        report = json.loads((out / r["name"] / "report.json").read_text())
        assert r["verdict"] == report["verdict"] and r["rms_px"] == report["rms_px"]
        assert 0.24 < r["rms_px"] < 0.32  # 0.2 px noise per coordinate: 0.28 px
        for k, truth in zip(("fx", "fy", "cx", "cy"), TRUE, strict=False):
            assert abs(report["params"][k] - truth) < 4 * report["std"][k], (k, report)
        assert (out / r["name"] / "camera.yaml").is_file()
    assert rows[3]["exit_code"] == 2 and "need at least 3" in rows[3]["error"]
    assert rows[4]["exit_code"] == 2 and str(corners / "nope.npz") in rows[4]["error"]
    assert all(r["status"] == "error" and "\n" not in r["error"] for r in rows[3:])
    assert not (out / "missing" / "camera.yaml").exists()
    assert "does not exist" in (out / "missing" / "log.txt").read_text()
    with open(out / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [(t["name"], t["status"], t["exit_code"], t["cached"]) for t in table] == \
        [(r["name"], r["status"], str(r["exit_code"]), "false") for r in rows]
    assert [t["rms_px"] for t in table] == [repr(r.get("rms_px", "")) if "rms_px" in r
                                            else "" for r in rows]


def test_rerun_is_cached_until_an_input_changes(cluster, corners, tmp_path):
    jobs = _intrinsics_jobs()
    out = tmp_path / "out"
    first = run(jobs, out, client=cluster.client, base_dir=corners)
    assert [r["cached"] for r in first] == [False] * 3
    again = run(jobs, out, client=cluster.client, base_dir=corners)
    assert again == [{**r, "cached": True} for r in first]  # the first run's rows
    assert json.loads((out / "summary.json").read_text()) == again
    # the same file name with other content, and other arguments: those two run again
    corners_file(tmp_path / "cam1.npz", 15, seed=11)
    os.replace(tmp_path / "cam1.npz", corners / "cam1_copy.npz")
    changed = [jobs[0], {**jobs[1], "args": ["--corners", "cam1_copy.npz", "-q"]},
               {**jobs[2], "args": ["--corners", "cam2.npz", "-q", "--fix-k3"]}]
    third = run(changed, out, client=cluster.client, base_dir=corners)
    assert [r["cached"] for r in third] == [True, False, False]
    assert third[1]["rms_px"] != first[1]["rms_px"]
    corners_file(corners / "cam1_copy.npz", 15, seed=12)  # same name, new bytes
    fourth = run(changed, out, client=cluster.client, base_dir=corners)
    assert [r["cached"] for r in fourth] == [True, False, True]


def test_failed_jobs_and_other_calib_code_run_again(cluster, corners, tmp_path, monkeypatch):
    """A job that failed is never cached: it runs again, and succeeds once its input is
    there; a change of the calib code (its fingerprint) runs every job again."""
    jobs = [_intrinsics_jobs(1)[0], {"name": "late", "command": "fit-intrinsics",
                                     "args": ["--corners", "late.npz", "-q"]}]
    base = tmp_path / "in"
    base.mkdir()
    os.symlink(corners / "cam0.npz", base / "cam0.npz")
    out = tmp_path / "out"
    first = run(jobs, out, client=cluster.client, base_dir=base)
    assert [(r["status"], r["cached"]) for r in first] == [("ok", False), ("error", False)]
    second = run(jobs, out, client=cluster.client, base_dir=base)
    assert [(r["status"], r["cached"]) for r in second] == [("ok", True), ("error", False)]
    assert second[1]["worker"] in cluster.workers  # it ran again, on a worker
    corners_file(base / "late.npz", 15, seed=5)
    third = run(jobs, out, client=cluster.client, base_dir=base)
    assert [(r["status"], r["cached"]) for r in third] == [("ok", True), ("ok", False)]
    assert third[1]["rms_px"] < 0.32
    assert [r["cached"] for r in run(jobs, out, client=cluster.client, base_dir=base)] == \
        [True, True]
    monkeypatch.setattr("calib_cli.batch.code_fingerprint", lambda: "another calib")
    assert [r["cached"] for r in run(jobs, out, client=cluster.client, base_dir=base)] == \
        [False, False]


CACHED_RERUN = r"""
import json, sys
from calib_cli.main import run_command
code, err = run_command(sys.argv[1:])
print(json.dumps({"code": code, "err": err, "modules": sorted(sys.modules)}))
"""
#: What a re-run of a finished batch must not import (0.02-0.5 s each).
HEAVY = ("numpy", "scipy", "cv2", "open3d", "matplotlib", "dask", "distributed", "pydantic",
         "rich", "threadpoolctl", "yaml", "calib.solver", "calib.intrinsics", "calib.camera")


def test_a_cached_rerun_imports_nothing_heavy(cluster, corners, tmp_path, capsys):
    """The whole `calib batch` of a finished batch, in its own process: every job cached,
    the summary the first run's rows, and no numpy, Dask, pydantic, YAML, ... imported.
    An edited jobs file is read and checked again."""
    jobs = write_jobs(tmp_path, [{**j, "args": ["--corners", str(corners / f"cam{i}.npz"),
                                                "-q"]} for i, j in enumerate(_intrinsics_jobs())])
    out = tmp_path / "out"
    argv = ["batch", str(jobs), "-o", str(out), "--scheduler", cluster.address, "-q"]
    assert main(argv) == 0
    first = json.loads((out / "summary.json").read_text())
    env = {k: v for k, v in os.environ.items() if k != "CALIB_DEBUG"}
    proc = subprocess.run([sys.executable, "-c", CACHED_RERUN, *argv], capture_output=True,
                          text=True, timeout=120, env=env, check=True)
    res = json.loads(proc.stdout)
    assert (res["code"], res["err"]) == (0, None)
    assert [m for m in res["modules"] if m.startswith(HEAVY)] == []
    assert json.loads((out / "summary.json").read_text()) == [{**r, "cached": True}
                                                              for r in first]
    text = jobs.read_text()
    jobs.write_text(text.replace("- -q\n", "- -q\n  - --fix-k3\n", 1))  # cam0 only
    assert main(argv) == 0
    assert [r["cached"] for r in json.loads((out / "summary.json").read_text())] == \
        [False, True, True]
    jobs.write_text(text.replace("name: cam2", "name: cam1"))
    assert main(argv) == 2
    assert "job cam1: the name is used by two jobs" in capsys.readouterr().err


def test_a_worker_killed_mid_batch_every_job_reported_once(cluster, corners, tmp_path):
    """A third worker joins and is killed (SIGKILL) while it runs its first job (still
    importing calib); Dask runs that job again on another worker."""
    warm = set(cluster.workers)
    run(_intrinsics_jobs(), tmp_path / "warm", client=cluster.client, base_dir=corners)
    victim = cluster.add_worker()
    cluster.client.wait_for_workers(3, timeout=120)
    jobs = [{"name": f"j{i}", "command": "fit-intrinsics",
             "args": ["--corners", f"cam{i % 3}.npz", "-q", "--loss", "huber"]} for i in range(6)]

    def kill_the_new_worker(row):
        if cluster.workers[victim].poll() is None:
            cluster.workers[victim].send_signal(signal.SIGKILL)

    rows = run(jobs, tmp_path / "out", client=cluster.client, base_dir=corners,
               on_row=kill_the_new_worker)
    assert cluster.workers.pop(victim).wait(timeout=30) == -signal.SIGKILL
    assert [r["name"] for r in rows] == [f"j{i}" for i in range(6)]
    assert all(r["status"] == "ok" and r["worker"] in warm for r in rows), rows
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["name"] for r in summary] == [f"j{i}" for i in range(6)]
    log = cluster.client.run_on_scheduler(
        lambda dask_scheduler: [(str(t[0]), t[2]) for t in dask_scheduler.transition_log])
    starts = Counter(k for k, finish in log if k.startswith("calib-j") and finish == "processing")
    assert len(starts) == 6 and set(starts.values()) == {1, 2}, starts  # the victim's ran twice


def test_local_cluster_runs_every_command(corners, tmp_path, bundled, capsys):
    """The default --scheduler local, with a registration and a bundle adjustment."""
    from calib_datasets.cloud_synth import wavy_surface

    cloud = wavy_surface(3000, seed=1)
    T = se3.exp(np.array([0.05, -0.02, 0.03, 0.01, 0.02, -0.015]))
    np.save(tmp_path / "target.npy", cloud)
    np.save(tmp_path / "source.npy", (cloud - T[:3, 3]) @ T[:3, :3])  # source = T^-1 target
    (tmp_path / "I.txt").write_text("1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    jobs = write_jobs(tmp_path, [
        {"name": "reg", "command": "register-clouds",
         "args": ["source.npy", "target.npy", "--init", "I.txt", "-q"]},
        {"name": "ba", "command": "bundle-adjust",
         "args": [str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "-q", "--max-iterations", "5"]},
        {"name": "cam0", "command": "fit-intrinsics",
         "args": ["--corners", str(corners / "cam0.npz"), "-q"]}])
    out = tmp_path / "out"
    assert main(["batch", str(jobs), "-o", str(out), "--workers", "1", "-q"]) == 0
    rows = {r["name"]: r for r in json.loads((out / "summary.json").read_text())}
    assert all(r["status"] == "ok" and r["worker"].startswith("tcp://") for r in rows.values())
    T_est = np.loadtxt(out / "reg" / "T_target_source.txt")
    assert np.abs(T_est - T).max() < 1e-3
    assert rows["ba"]["final_cost"] < rows["ba"]["initial_cost"]
    assert rows["ba"]["iterations"] <= 5 and rows["reg"]["converged"] is True


def _bad(args, capsys) -> tuple[int, str]:
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return code, err[0]


@pytest.mark.parametrize(("jobs", "message"), [
    ("jobs: [", "not a valid YAML jobs file"),
    ("- a\n- b\n", "expected a mapping with 'jobs:'"),
    ("jobs:\n  - {name: a, command: fit-intrinsics, args: [-o, x.yaml]}",
     "job a: argument '-o': batch chooses -o and --report"),
    ("jobs:\n  - {name: a, command: fit-intrinsics, args: ['--report=r.json']}",
     "job a: argument '--report=r.json'"),
    ("jobs:\n  - {name: a, command: calibrate-all, args: []}",
     "job a: unknown command 'calibrate-all'"),
    ("jobs:\n  - {name: a, command: batch, args: []}", "job a: unknown command 'batch'"),
    ("jobs:\n  - {name: a, command: bundle-adjust}\n  - {name: a, command: bundle-adjust}",
     "job a: the name is used by two jobs"),
    ("jobs:\n  - {name: ../up, command: bundle-adjust}", "name '../up' must be a word"),
    ("jobs:\n  - {name: a, command: bundle-adjust, args: x}", "args must be a list"),
    ("jobs:\n  - {name: a, command: bundle-adjust, oops: 1}", "unknown key(s) oops"),
    ("jobs:\n  - {name: a, command: register-clouds, args: [s.ply, t.ply, --aligned, m.ply]}"
     "\n  - {name: b, command: register-clouds, args: [u.ply, t.ply, --aligned, m.ply]}",
     "job b: "),
])
def test_bad_jobs_are_refused_before_any_job_runs(tmp_path, capsys, jobs, message):
    (tmp_path / "jobs.yaml").write_text(jobs)
    out = tmp_path / "out"
    code, line = _bad(["batch", str(tmp_path / "jobs.yaml"), "-o", str(out),
                       "--scheduler", "tcp://127.0.0.1:1"], capsys)
    assert code == 2 and line.startswith("calib: error: ") and message in line, line
    if message == "job b: ":
        assert "m.ply is also written by job a" in line
    assert not out.exists()  # nothing written


def test_unreachable_scheduler_is_one_line(tmp_path, corners, capsys, monkeypatch):
    monkeypatch.setattr("calib_cli.batch.CONNECT_TIMEOUT_S", 1.0)
    jobs = write_jobs(corners, _intrinsics_jobs(1))
    t0 = time.monotonic()
    code, line = _bad(["batch", str(jobs), "-o", str(tmp_path / "o"), "--scheduler",
                       f"tcp://127.0.0.1:{_free_port()}"], capsys)
    assert code == 2 and "no Dask scheduler answered within 1 s" in line
    assert not (tmp_path / "o").exists()
    assert time.monotonic() - t0 < 30
    code, line = _bad(["batch", str(jobs), "-o", str(tmp_path / "o"), "--scheduler",
                       "localhost:8786"], capsys)
    assert code == 2 and "--scheduler 'localhost:8786'" in line


def test_isolated_jobs_give_the_same_answer_as_in_process(cluster, corners, tmp_path):
    """--isolate: each job in its own `python -m calib_cli.main` (slower, see
    bench/bench_batch.py); the same outputs, exit codes and one-line errors."""
    jobs = [_intrinsics_jobs(1)[0],
            {"name": "missing", "command": "fit-intrinsics", "args": ["--corners", "nope.npz"]}]
    a = run(jobs, tmp_path / "a", client=cluster.client, base_dir=corners)
    b = run(jobs, tmp_path / "b", client=cluster.client, base_dir=corners, isolate=True)
    assert [(r["status"], r["exit_code"], r["error"]) for r in a] == \
        [(r["status"], r["exit_code"], r["error"]) for r in b]
    assert (tmp_path / "a" / "cam0" / "camera.yaml").read_text() == \
        (tmp_path / "b" / "cam0" / "camera.yaml").read_text()
    assert a[0]["rms_px"] == b[0]["rms_px"]


def test_every_command_gets_a_named_output():
    """Each command's -o inside OUTDIR/<name>/ is named as in the README's examples (a
    file with an extension, or undistort's folder), not a bare 'output'."""
    from calib_cli.batch_jobs import Job, output_name
    from calib_cli.main import app

    names = {c.name for c in app.registered_commands} - {"batch"}
    got = {c: output_name(Job("j", c)) for c in names}
    assert got == {"fit-intrinsics": "camera.yaml", "fit-rig": "rig.yaml",
                   "register-clouds": "T_target_source.txt", "bundle-adjust": "refined_bal.txt",
                   "hand-eye": "X.txt", "camera-lidar": "T_camera_lidar.txt",
                   "undistort": "images"}, got
    assert output_name(Job("j", "fit-intrinsics", ("--format", "json"))) == "camera.json"
    assert output_name(Job("j", "fit-rig", ("--format", "json"))) == "rig.json"


def test_finished_undistort_job_is_reused(cluster, tmp_path):
    """undistort's output is a folder of images: a re-run finds it and reuses the job (it
    ran again every time, as only files counted as outputs still there)."""
    import cv2

    from calib.camera import Camera
    from calib.io.camera_files import write_camera

    write_camera(tmp_path / "cam.yaml", Camera([450.0, 452.0, 322.0, 238.0, -0.2, 0.05, 0.0,
                                                 0.0, 0.0], (64, 48)), "opencv")
    (tmp_path / "img").mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((48, 64), 128, np.uint8))
    jobs = [{"name": "und", "command": "undistort",
             "args": ["img", "--camera", "cam.yaml", "-q"]}]
    first = run(jobs, tmp_path / "out", client=cluster.client, base_dir=tmp_path)
    again = run(jobs, tmp_path / "out", client=cluster.client, base_dir=tmp_path)
    assert first[0]["status"] == "ok" and not first[0]["cached"]
    assert (tmp_path / "out" / "und" / "images" / "a.png").is_file()
    assert again[0]["cached"]
    for f in (tmp_path / "out" / "und" / "images").iterdir():
        f.unlink()  # an emptied folder is not a finished output
    assert not run(jobs, tmp_path / "out", client=cluster.client, base_dir=tmp_path)[0]["cached"]
