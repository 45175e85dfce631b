"""What a Dask worker runs for one ``calib batch`` job: the command through
:func:`calib_cli.main.run_command` in this process (the default: no interpreter start-up
per job), or in a new ``python -m calib_cli.main`` process (``--isolate``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .batch_jobs import LOG_NAME


def run_job(argv: tuple[str, ...], folder: str, report: str | None,
            isolate: bool = False) -> dict:
    """Run one job (in a Dask worker): ``{exit_code, error, seconds, worker, figures}``;
    stdout, stderr and warnings go to ``folder``/log.txt. Never raises for a job's failure."""
    from .batch_summary import key_figures, worker_address

    t0 = time.perf_counter()
    if isolate:
        code, error, log = _run_subprocess(argv)
    else:
        code, error, log = _run_in_process(argv)
    seconds = time.perf_counter() - t0
    try:
        from calib.io.atomic import atomic_write

        atomic_write(Path(folder) / LOG_NAME, log + (error + "\n" if error else ""))
    except OSError:
        pass  # the log is a convenience; the row still says what happened
    figures = key_figures(report) if code == 0 and report else {}
    return {"exit_code": code, "error": error, "seconds": seconds,
            "worker": worker_address(), "figures": figures}


def _run_in_process(argv) -> tuple[int, str | None, str]:
    import io
    import logging
    from contextlib import redirect_stderr, redirect_stdout

    from threadpoolctl import threadpool_limits

    from .main import run_command

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter("calib: warning: %(message)s"))
    log = logging.getLogger("calib")
    log.addHandler(handler)
    try:
        with redirect_stdout(buf), redirect_stderr(buf), threadpool_limits(1):
            code, error = run_command(list(argv))
    finally:
        log.removeHandler(handler)
    return code, error, buf.getvalue()


def _run_subprocess(argv) -> tuple[int, str | None, str]:
    import subprocess

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    env.pop("CALIB_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "calib_cli.main", *argv], env=env,
                          capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("calib: ")]
    error = lines[-1] if proc.returncode and lines else (
        f"calib: error: exit {proc.returncode}" if proc.returncode else None)
    return proc.returncode, error, proc.stdout + proc.stderr
