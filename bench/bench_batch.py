"""``calib batch``: 8 intrinsics fits on 2 workers vs the same 8 run one after another.

Side by side, alternating, whole processes timed from outside (what a user waits for):

* ``loop``: ``calib fit-intrinsics --corners ci.npz -o ... --report ...`` eight times in
  a row, one process each (today's shell loop);
* ``one process``: the eight commands through ``run_command`` in one Python process (the
  fits alone, no start-up per job);
* ``batch``: ``calib batch jobs.yaml -o OUT --workers 2`` into an empty folder (includes
  starting the LocalCluster);
* ``batch --isolate``: the same with each job in its own ``python -m calib_cli.main``
  (isolation vs speed: the worker's in-process run is the default);
* ``re-run``: ``calib batch`` again on the finished folder (every job cached).

The corner files are synthetic (a 9x6 board, ``--views`` views each, 0.2 px noise).
Default environment (no BLAS variables set), with Python's bytecode cache on (in a temporary
folder: an installed calib has its ``.pyc`` files; ``PYTHONDONTWRITEBYTECODE=1``, which this
machine sets, would compile calib's modules in every process); ``--no-bytecode`` keeps the
environment as it is. Prints a markdown table (wall time, and the CPU time of the processes
started, which the load changes less) and the load.

Usage: python bench/bench_batch.py [--repeat 3] [--views 400] [--jobs 8] [--workers 2]
                                   [--no-bytecode]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ENV = {k: v for k, v in os.environ.items()
       if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CALIB_DEBUG")}
ONE_PROCESS = r"""
import sys
from calib_cli.main import run_command
for line in open(sys.argv[1]):
    code, err = run_command(line.split())
    assert code == 0, err
"""


def make_inputs(folder: Path, n_jobs: int, views: int) -> Path:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_batch import corners_file, write_jobs

    jobs = []
    for i in range(n_jobs):
        corners_file(folder / f"c{i}.npz", views, seed=i)
        jobs.append({"name": f"cam{i}", "command": "fit-intrinsics",
                     "args": ["--corners", f"c{i}.npz", "-q"]})
    return write_jobs(folder, jobs)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall and CPU seconds (every process started, Dask's workers included) of ``cmds``
    run one after another."""
    t0, c0 = time.perf_counter(), _cpu()
    for cmd in cmds:
        subprocess.run(cmd, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu() - c0


def loop_commands(folder: Path, n_jobs: int, out: Path) -> list[list[str]]:
    out.mkdir(exist_ok=True)
    return [["fit-intrinsics", "--corners", str(folder / f"c{i}.npz"), "-q", "-o",
             str(out / f"cam{i}.yaml"), "--report", str(out / f"cam{i}.json")]
            for i in range(n_jobs)]


def one_round(folder: Path, jobs: Path, n_jobs: int, workers: int) -> dict:
    """``{run: (wall s, cpu s)}`` of each way of running the jobs, side by side."""
    calib = str(Path(sys.executable).parent / "calib")
    t = {}
    cmds = loop_commands(folder, n_jobs, folder / "loop")
    t["loop"] = timed([[calib, *c] for c in cmds])
    lines = folder / "cmds.txt"
    lines.write_text("".join(" ".join(c) + "\n" for c in cmds))
    t["one process"] = timed([[sys.executable, "-c", ONE_PROCESS, str(lines)]])
    for label, extra in (("batch", []), ("batch --isolate", ["--isolate"])):
        out = folder / "out"
        shutil.rmtree(out, ignore_errors=True)
        t[label] = timed([[calib, "batch", str(jobs), "-o", str(out), "--workers",
                           str(workers), "-q", *extra]])
    t["re-run"] = timed([[calib, "batch", str(jobs), "-o", str(folder / "out"), "--workers",
                          str(workers), "-q"]])
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--views", type=int, default=400)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-bytecode", action="store_true",
                    help="keep PYTHONDONTWRITEBYTECODE from the environment")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(tmp)
        if not a.no_bytecode:
            ENV.pop("PYTHONDONTWRITEBYTECODE", None)
            ENV["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        jobs = make_inputs(folder, a.jobs, a.views)
        load0 = os.getloadavg()
        rounds = [one_round(folder, jobs, a.jobs, a.workers) for _ in range(a.repeat)]
        load1 = os.getloadavg()
    med = {k: statistics.median(r[k][0] for r in rounds) for k in rounds[0]}
    cpu = {k: statistics.median(r[k][1] for r in rounds) for k in rounds[0]}
    print(f"{a.jobs} fit-intrinsics jobs, {a.views} views each, {a.workers} workers, "
          f"bytecode cache {'off' if a.no_bytecode else 'on'}, median of {a.repeat} "
          "(all wall: " + "; ".join(f"{k} " + " ".join(f"{r[k][0]:.2f}" for r in rounds)
                                    for k in med) + ")")
    print("\n| run | wall time (s) | / loop | / one process | CPU time (s) |\n"
          "| --- | --- | --- | --- | --- |")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {v / med['loop']:.2f} | {v / med['one process']:.2f} | "
              f"{cpu[k]:.2f} |")
    ratios = sorted(r["re-run"][0] / r["batch"][0] for r in rounds)
    print(f"\nre-run / batch: {med['re-run'] / med['batch']:.3f} (medians; per round "
          + " ".join(f"{x:.3f}" for x in ratios) + f"); CPU {cpu['re-run'] / cpu['batch']:.3f}")
    print(f"load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} "
          f"{load1[1]:.2f} ({os.cpu_count()} cores), "
          f"{time.strftime('%H:%M UTC', time.gmtime())}; numpy {np.__version__}")


if __name__ == "__main__":
    main()
