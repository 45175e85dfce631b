"""``calib batch``: many calib commands as Dask tasks, one summary.

Thin over ``dask.distributed``: a ``LocalCluster`` of single-threaded worker processes (or
an existing scheduler, or a client the caller already has) runs each job through
:func:`calib_cli.main.run_command` in the worker process (no new interpreter per job:
measured in bench/bench_batch.py). Every finished job leaves its folder complete (atomic
outputs) and updates OUTDIR/summary.json and summary.csv; a re-run skips jobs whose content
hash (inputs' bytes + arguments + calib's code) is unchanged and marks them ``cached``.
A re-run that finds every job done imports neither Dask nor numpy nor YAML (the jobs of an
unchanged jobs file are kept in OUTDIR): its cost is the interpreter, typer and hashing.

Python API::

    from calib_cli.batch import run
    rows = run("jobs.yaml", "out/", client=my_dask_client)
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import typer

from calib.errors import CalibError, InputError

from .batch_jobs import (
    MARKER_NAME,
    PARSED_NAME,
    REPORT_NAME,
    Job,
    Prepared,
    absolute_args,
    check_distinct_outputs,
    check_jobs,
    code_fingerprint,
    extra_outputs,
    job_from_mapping,
    job_key,
    keep_parsed,
    output_name,
    path_options,
    read_jobs_file,
)
from .batch_summary import cached_row, write_summary
from .batch_worker import run_job

CONNECT_TIMEOUT_S = 5.0
#: Up to this many jobs the summary is rewritten after every job; beyond, once a second (a
#: batch killed with SIGKILL may then miss the last second's rows in the summary, never
#: their outputs or done-markers: a re-run reports them as cached).
SUMMARY_EVERY_JOB = 200


def run(jobs, outdir, client=None, scheduler: str = "local", workers: int | None = None,
        base_dir=None, isolate: bool = False, quiet: bool = True,
        on_row: Callable[[dict], None] | None = None,
        connect_timeout: float | None = None) -> list[dict]:
    """Run ``jobs`` (a jobs.yaml path, or a list of :class:`Job` / ``{name, command, args}``)
    into ``outdir``; returns the summary rows (job order) and writes summary.json/csv.

    ``client``: an existing ``distributed.Client`` (else ``scheduler``: ``"local"`` starts a
    LocalCluster of ``workers`` single-threaded processes, default: the cores; or a
    ``tcp://host:port`` address). Relative paths in the jobs are relative to the jobs file
    (or ``base_dir``, default: the current folder). ``isolate`` runs each job in its own
    ``python -m calib_cli.main`` process. ``on_row`` is called with each finished row.
    ``connect_timeout``: seconds to reach ``scheduler`` (default :data:`CONNECT_TIMEOUT_S`).
    Raises :class:`InputError` for a bad job before any job runs.
    """
    digest = None  # of the jobs file
    if isinstance(jobs, str | os.PathLike):
        base = Path(jobs).resolve().parent
        jobs, digest = read_jobs_file(jobs, Path(outdir).resolve() / PARSED_NAME)
    else:
        base = Path(base_dir or ".").resolve()
        jobs = [job_from_mapping(j, f"job {i + 1}") for i, j in enumerate(jobs)]
    if not jobs:
        raise InputError("the batch has no jobs")
    out = _check_outdir(outdir)
    prepared = prepare(jobs, base, out)
    rows: dict[int, dict] = {}
    todo = []
    for p in prepared:
        row = cached_row(p)
        if row is not None:
            rows[p.index] = row
        else:
            (p.folder / MARKER_NAME).unlink(missing_ok=True)
            todo.append(p)
    try:
        if todo:
            _run_on_dask(todo, rows, out, client, scheduler, workers, isolate, quiet, on_row,
                         connect_timeout or CONNECT_TIMEOUT_S, len(prepared))
    finally:  # also when interrupted: the summary of what finished
        if out.is_dir():
            write_summary(out, [rows[i] for i in sorted(rows)])
            if digest is not None:
                keep_parsed(out / PARSED_NAME, digest, jobs)
    return [rows[i] for i in sorted(rows)]


def _check_outdir(outdir) -> Path:
    """OUTDIR, absolute: an existing writable folder, or one that can be made (it is made
    only when the first job is submitted)."""
    out = Path(outdir).resolve()
    if out.exists() and not out.is_dir():
        raise InputError(f"{outdir}: -o needs a folder, and a file of that name exists")
    folder = out if out.exists() else out.parent
    if not folder.is_dir():
        raise InputError(f"{outdir}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"{outdir}: folder {folder} is not writable")
    return out


def prepare(jobs: list[Job], base: Path, out: Path) -> list[Prepared]:
    """Check every job and build its command line, before any job runs (nothing is
    written)."""
    from .main import command_group

    commands = command_group().commands
    check_jobs(jobs, commands)
    code, digests, path_opts = code_fingerprint(), {}, {}
    prepared = []
    for i, job in enumerate(jobs):
        cmd = commands[job.command]
        opts = {o for p in cmd.params for o in p.opts}
        if job.command not in path_opts:
            path_opts[job.command] = path_options(cmd)
        folder = out / job.name
        argv = [job.command, *absolute_args(job.args, base, path_opts[job.command])]
        key = job_key(job.command, tuple(argv), code, digests)
        if "-o" in opts or "--output" in opts:
            argv += ["-o" if "-o" in opts else "--output", str(folder / output_name(job))]
        report = folder / REPORT_NAME if "--report" in opts else None
        if report is not None:
            argv += ["--report", str(report)]
        argv = tuple(argv)
        prepared.append(Prepared(job, i, argv, folder, report, key, extra_outputs(argv)))
    check_distinct_outputs(prepared)
    return prepared


def _run_on_dask(todo, rows, out, client, scheduler, workers, isolate, quiet, on_row,
                 connect_timeout, total) -> None:
    from distributed import as_completed

    from .batch_summary import finished_row, progress

    with _client(client, scheduler, workers, connect_timeout) as c:
        out.mkdir(exist_ok=True)
        for p in todo:
            p.folder.mkdir(exist_ok=True)
        run_id = uuid.uuid4().hex[:8]  # a task key per run: a re-run never reuses a result
        futures = {c.submit(run_job, p.argv, str(p.folder), p.report and str(p.report),
                            isolate, key=f"calib-{p.job.name}-{run_id}", pure=False): p
                   for p in todo}
        written = 0.0
        with progress(total, len(rows), _nthreads(c), quiet) as update:
            try:
                for fut in as_completed(futures):
                    p = futures[fut]
                    row = finished_row(p, fut)
                    rows[p.index] = row
                    update(row, len(futures) - sum(f.done() for f in futures))
                    if len(todo) <= SUMMARY_EVERY_JOB or time.monotonic() - written > 1.0:
                        write_summary(out, [rows[i] for i in sorted(rows)])  # a kill keeps it
                        written = time.monotonic()
                    if on_row is not None:
                        on_row(row)
            except BaseException:
                c.cancel(list(futures))
                raise


def _nthreads(client) -> int:
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # pragma: no cover - scheduler gone
        return 1


class _client:
    """The given client (kept open), or one on a new LocalCluster / a scheduler address."""

    def __init__(self, client, scheduler, workers, connect_timeout):
        self.given, self.scheduler, self.workers = client, scheduler, workers
        self.timeout, self.cluster, self.client = connect_timeout, None, None

    def __enter__(self):
        if self.given is not None:
            return self.given
        from distributed import Client

        _quiet_dask_logs()
        if self.scheduler in (None, "local"):
            self.cluster = local_cluster(self.workers)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler {self.scheduler}: no Dask scheduler answered "
                                 f"within {self.timeout:g} s ({type(exc).__name__})") from None
        return self.client

    def __exit__(self, *exc):
        for obj in (self.client, self.cluster):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # pragma: no cover - shutting down after an interrupt
                    pass


def _quiet_dask_logs() -> None:
    """Dask's INFO messages (scheduler start, workers joining) are not calib's warnings."""
    import logging

    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "tornado", "bokeh"):
            logging.getLogger(name).setLevel(logging.ERROR)


def local_cluster(workers: int | None):
    """A LocalCluster of ``workers`` processes (default: the cores), one thread and one
    BLAS thread each, quiet, with its status page on a free port.

    The workers are forked where the platform can (under load, a spawned pair of workers
    took 4.5 s to start and 4 s to stop, a forked pair 0.9 s and 0.2 s), after the solver
    is imported here once; elsewhere they are spawned, Dask's default."""
    import logging
    import multiprocessing

    import dask
    from distributed import LocalCluster

    n = workers or os.cpu_count() or 1
    one = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if method == "fork":  # every command runs on the one engine: import it once, not per
        import calib.solver  # noqa: F401  worker (forked workers inherit it)
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        return LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                            dashboard_address=":0", silence_logs=logging.ERROR, env=one)


def register(app: typer.Typer) -> None:
    @app.command("batch")
    def batch_cmd(
        jobs_file: Path = typer.Argument(..., help="jobs.yaml: 'jobs:' a list of "
                                         "{name, command, args}."),
        outdir: Path = typer.Option(..., "-o", "--output",
                                    help="Folder for OUTDIR/<name>/ and summary.json/csv."),
        scheduler: str = typer.Option("local", "--scheduler",
                                      help="local (a LocalCluster) or tcp://HOST:PORT."),
        workers: int = typer.Option(0, "--workers",
                                    help="Local worker processes (0: the cores)."),
        isolate: bool = typer.Option(False, "--isolate",
                                     help="Each job in its own Python process."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Run many calib commands as Dask tasks; one summary (summary.json, summary.csv)."""
        if scheduler != "local" and "://" not in scheduler:
            raise InputError(f"--scheduler {scheduler!r}: give local or tcp://HOST:PORT")
        if workers < 0:
            raise InputError(f"--workers {workers}: must be 0 (the cores) or a positive count")
        if workers and scheduler != "local":
            raise InputError("--workers applies to --scheduler local only (a cluster's "
                             "workers are started with `dask worker`)")
        rows = run(jobs_file, outdir, scheduler=scheduler, workers=workers or None,
                   isolate=isolate, quiet=quiet)
        _report(rows, Path(outdir), quiet)


def _report(rows: Iterable[dict], outdir: Path, quiet: bool) -> None:
    rows = list(rows)
    failed = [r for r in rows if r["status"] != "ok"]
    cached = sum(r["cached"] for r in rows)
    if not quiet:
        typer.echo(f"{len(rows) - len(failed)} ok ({cached} cached), {len(failed)} failed; "
                   f"summary: {outdir / 'summary.json'}")
        for r in failed:
            typer.echo(f"  {r['name']}: exit {r['exit_code']}: {r['error']}", err=True)
    if failed:
        raise CalibError(f"{len(failed)} of {len(rows)} jobs failed "
                         f"({', '.join(r['name'] for r in failed[:5])}"
                         f"{' ...' if len(failed) > 5 else ''}); see "
                         f"{outdir / 'summary.json'}")
