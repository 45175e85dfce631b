"""Helpers shared by the CLI commands: progress, inputs, output files, error formatting."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer

from calib.errors import CalibError, InputError
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


def refuse_most_outliers(outliers: Sequence[str], total: int, what: str, hint: str) -> None:
    """Exit 4 (nothing written) when more than half of the ``total`` frames or stations
    (``what``) are ``outliers``: the result then rests on no consistent majority (frames
    paired with the wrong clouds or poses gave a wrong transform with a warning only)."""
    if 2 * len(outliers) > total:
        from calib.errors import NotConvergedError

        listed = ", ".join(outliers[:6]) + (", ..." if len(outliers) > 6 else "")
        raise NotConvergedError(f"{len(outliers)} of {total} {what} do not fit the result "
                                f"({listed}): {hint} (nothing written)")


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


def check_distinct(outputs: dict, inputs: Sequence[Path]) -> None:
    """No output may overwrite another output or an input (``outputs``: flag -> path or
    None); checked on resolved paths, so a symlink or ``./`` does not hide a collision."""
    seen: dict[Path, str] = {}
    ins = {Path(p).resolve(): p for p in inputs if p is not None and Path(p).exists()}
    for flag, p in outputs.items():
        if p is None:
            continue
        key = Path(p).resolve()
        if key in seen:
            raise InputError(f"{p}: {flag} and {seen[key]} name the same file")
        if key in ins:
            raise InputError(f"{p}: {flag} would overwrite an input file")
        seen[key] = flag


GLOB_CHARS = "*?["
#: Image file suffixes a folder of images is searched for (every command).
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def expand_inputs(items: Sequence[str], suffixes: set[str], what: str = "input") -> list[Path]:
    """Input paths from the command line, the same way for every command: a folder gives
    its files with one of ``suffixes`` (sorted); an existing file is taken literally (even
    when its name has glob characters, ``img[1].png``); otherwise an item with ``*?[`` is a
    glob that must match something. An item that names nothing is an error (a stray word
    after a flag that takes no value, ``--fix-k3 true``, is not silently skipped)."""
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"{item}: no {what} files in this folder "
                                 f"({', '.join(sorted(suffixes))})")
            paths += found
        elif p.exists() or p.is_symlink():
            paths.append(p)
        elif any(c in item for c in GLOB_CHARS):
            found = sorted(Path(q) for q in glob.glob(item))
            if not found:
                raise InputError(f"{item}: the pattern matches no file")
            paths += found
        else:
            raise InputError(f"{item}: no such {what} file or folder (a word after a flag that "
                             "takes no value?)")
    if not paths:
        raise InputError(f"no {what} files given")
    return paths


@contextmanager
def flags(names: dict[str, str]) -> Iterator[None]:
    """Re-raise a library error with its parameter names (``voxel_size``) as this command's
    flags (``--voxel``), same class, one line (STYLE B2: the library names its arguments)."""
    try:
        yield
    except CalibError as exc:
        msg = str(exc)
        for name, flag in names.items():
            msg = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", flag, msg)
        if msg == str(exc):
            raise
        raise type(exc)(msg) from None


def write_outputs(outputs: Sequence[tuple[str | os.PathLike | None, Callable[[Path], None]]]
                  ) -> None:
    """Write several outputs as one: each ``write(path)`` goes to a temporary file beside
    its destination, and only when all succeeded are they renamed into place (a failed
    report never leaves a new transform beside an old report). Destinations that are not
    regular files (``/dev/null``, a pipe) are written directly, last. ``None`` is skipped.
    An OS error (full disk, read-only folder, a name too long) is an :class:`InputError`
    naming the file; the temporaries are removed on any failure or interrupt."""
    staged: list[tuple[Path, Path]] = []
    direct = []
    try:
        for path, write in outputs:
            if path is None:
                continue
            dest = Path(os.path.realpath(path))
            if Path(path).exists() and not dest.is_file():
                direct.append((Path(path), write))
                continue
            with _os_errors(path):
                fd, tmp = tempfile.mkstemp(prefix=".calib-", suffix=dest.suffix,
                                           dir=dest.parent)
                os.close(fd)
                staged.append((Path(tmp), dest))
            with _os_errors(path):
                write(Path(tmp))
        for path, write in direct:
            with _os_errors(path):
                write(path)
        for tmp, dest in staged:
            with _os_errors(dest):
                _keep_mode(tmp, dest)
                os.replace(tmp, dest)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _keep_mode(tmp: Path, dest: Path) -> None:
    """The replaced file's permissions, or what ``open()`` would give a new file."""
    if dest.exists():
        os.chmod(tmp, dest.stat().st_mode & 0o7777)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)


@contextmanager
def _os_errors(path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def matrix_text(T) -> str:
    """A 4x4 transform as four lines of round-trip exact numbers (``numpy.loadtxt`` reads it
    back)."""
    return "\n".join(" ".join(f"{float(v):.17g}" for v in row) for row in T) + "\n"
