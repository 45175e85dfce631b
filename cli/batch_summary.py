"""What ``calib batch`` reports: one row per job (summary.json, summary.csv), the marker
that lets a re-run skip a finished job, the key figures read from a job's report, and the
progress bar over jobs."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .batch_jobs import MARKER_NAME, Prepared
from .common import show_progress, to_json, write_json, write_text

COLUMNS = ("name", "command", "status", "exit_code", "seconds", "worker", "error", "cached")
#: Text fields of a report shown in the summary (besides every top-level number and flag).
TEXT_FIGURES = ("verdict", "termination", "method", "linear_solver")


def key_figures(report: str | Path) -> dict:
    """The verdict and the top-level numbers and flags of a job's JSON report."""
    try:
        data = json.loads(Path(report).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    figures = {}
    for k, v in data.items():
        if (k in TEXT_FIGURES and isinstance(v, str)) or isinstance(v, bool | int | float):
            figures[k if k not in COLUMNS else f"report_{k}"] = v
    return figures


def worker_address() -> str | None:
    """The address of the Dask worker running the calling task (None outside one)."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return None


def finished_row(p: Prepared, future) -> dict:
    """The summary row of a finished future; marks the job done when it succeeded."""
    try:
        res = future.result()
    except Exception as exc:  # the task itself failed: its worker died too often, say
        from distributed import KilledWorker

        why = ("its worker died each time it ran (a crash in the job, or the workers were "
               "stopped)" if isinstance(exc, KilledWorker) else f"{type(exc).__name__}: {exc}")
        res = {"exit_code": 1, "error": f"calib: error: job {p.job.name}: {why}".replace(
            "\n", " "), "seconds": None, "worker": None, "figures": {}}
    row = {"name": p.job.name, "command": p.job.command,
           "status": "ok" if res["exit_code"] == 0 else "error",
           "exit_code": res["exit_code"],
           "seconds": None if res["seconds"] is None else round(res["seconds"], 3),
           "worker": res["worker"], "error": res["error"], "cached": False,
           **res["figures"]}
    if row["status"] == "ok":
        files = [a for a in (_output_of(p.argv), p.report) if a is not None]
        write_json(p.folder / MARKER_NAME, {"key": p.key, "row": row,
                                            "files": [str(f) for f in files]})
    return row


def _output_of(argv) -> Path | None:
    for opt in ("-o", "--output"):
        if opt in argv[:-1]:
            return Path(argv[list(argv).index(opt) + 1])
    return None


def _still_there(path: Path) -> bool:
    """An output file, or an output folder (undistort's images) that still holds files."""
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def cached_row(p: Prepared) -> dict | None:
    """The stored row when ``p`` finished before with the same content hash and its
    outputs are still there; None when it must run."""
    try:
        data = json.loads((p.folder / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != p.key:
        return None
    if not all(_still_there(Path(f)) for f in data.get("files", [])):
        return None
    return {**data["row"], "cached": True}


def write_summary(out: Path, rows: list[dict]) -> None:
    """OUTDIR/summary.json (a list of rows) and summary.csv (the same rows), atomically
    (a file that already holds them is left as it is)."""
    _write_changed(out / "summary.json", to_json(rows))
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in COLUMNS))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*COLUMNS, *extra], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(v) for k, v in r.items()})
    _write_changed(out / "summary.csv", buf.getvalue())


def _write_changed(path: Path, text: str) -> None:
    """Write ``text`` atomically unless ``path`` holds it already (no fsync on a re-run)."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, ValueError):
        pass
    write_text(path, text)


def _csv_value(v):
    """As in the JSON: ``true``/``false``, and an empty cell for null."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else v


@contextmanager
def progress(total: int, done: int, nthreads: int, quiet: bool) -> Iterator:
    """A bar over jobs on a terminal (done, failed, running); yields ``update(row, left)``."""
    if not show_progress(quiet):
        yield lambda row, left: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    counts = {"ok": done, "error": 0}

    def label(left: int) -> str:
        return (f"jobs: {counts['ok']} done, {counts['error']} failed, "
                f"{min(left, nthreads)} running")

    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                  transient=True) as prog:
        task = prog.add_task(label(total - done), total=total, completed=done)

        def update(row: dict, left: int) -> None:
            counts[row["status"]] += 1
            prog.update(task, advance=1, description=label(left))

        yield update
