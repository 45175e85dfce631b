"""Helpers shared by the CLI commands: progress, output files, error formatting."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from calib.io.atomic import atomic_write


def show_progress(quiet: bool) -> bool:
    """Progress bars only on an interactive terminal and without ``--quiet``."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def progress_bar(total: int, label: str, quiet: bool) -> Iterator:
    """A rich progress bar on stderr (silent when not a TTY or quiet); yields ``advance(n=1)``."""
    if not show_progress(quiet):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(label, total=total)
        yield lambda n=1: prog.advance(task, n)


def track(items: Iterable, total: int, label: str, quiet: bool) -> Iterator:
    with progress_bar(total, label, quiet) as advance:
        for item in items:
            yield item
            advance()


def info(message: str, quiet: bool = False) -> None:
    """A line of human output on stderr (results go to stdout or files)."""
    if not quiet:
        typer.echo(message, err=True)


class _NumpyEncoder(json.JSONEncoder):
    def default(self, o):
        import numpy as np

        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.integer | np.floating | np.bool_):
            return o.item()
        if isinstance(o, Path):
            return str(o)
        return super().default(o)


def to_json(data) -> str:
    return json.dumps(data, indent=2, cls=_NumpyEncoder, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data) -> None:
    """Write JSON atomically (NumPy-aware; NaN is refused rather than written)."""
    atomic_write(path, to_json(data))


def write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, text)


def check_outputs(*paths) -> None:
    """Fail before any work if an output folder is missing or not writable."""
    from calib.io.validate import check_output_path

    for p in paths:
        if p is not None:
            check_output_path(p)
