"""Atomic file output: write to a temporary file in the same folder, fsync, rename.

A run that fails or is killed part-way leaves either the old file or the complete new one,
never a truncated file that a later pipeline stage would read as valid.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import InputError

#: Characters of the final name kept in the temporary name (the rest is ``.`` + 8 random
#: characters + ``.tmp``), so a name at the file system's length limit still fits.
TMP_NAME_CHARS = 20


def _error(path: str | os.PathLike, exc: OSError) -> InputError:
    """One line naming the file and the system's reason (full disk, read-only, ...)."""
    reason = exc.strerror or type(exc).__name__
    if os.path.islink(path) and not os.path.exists(path):
        reason += f"; {path} is a symlink to {os.readlink(path)}, which cannot be created"
    return InputError(f"{path}: cannot write ({reason})")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
    """Open ``path`` for writing atomically (``mode`` ``'w'`` or ``'wb'``).

    The data goes to a hidden temporary file next to ``path`` (next to its target when
    ``path`` is a symlink); on a clean exit it is flushed, fsynced and renamed over it (and
    the folder fsynced), keeping the replaced file's permissions (new files get the umask's).
    On any exception, including ``KeyboardInterrupt``, the temporary file is removed and
    ``path`` is untouched. A target that is not a regular file (``/dev/null``, a FIFO, a pipe
    as ``/dev/stdout``) is written directly. Any system error (full disk, read-only folder,
    dangling symlink, name too long, closed pipe) raises :class:`InputError` naming ``path``.
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open supports modes 'w' and 'wb'")
    enc = None if "b" in mode else encoding
    try:
        st = os.stat(path)  # follows symlinks: /dev/stdout -> the pipe or terminal
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise _error(path, exc) from None
    try:
        if st is not None and not stat.S_ISREG(st.st_mode):  # a device or FIFO: no rename
            with open(path, mode, encoding=enc) as fh:
                yield fh
        else:
            with _replacing(Path(os.path.realpath(path)), mode, enc) as fh:
                yield fh
    except OSError as exc:
        raise _error(path, exc) from None


@contextlib.contextmanager
def _replacing(target: Path, mode: str, encoding: str | None) -> Iterator[IO]:
    """Write a temporary file beside ``target`` and rename it over ``target`` on success."""
    folder = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:TMP_NAME_CHARS]}.", suffix=".tmp",
                               dir=folder)
    try:
        if target.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:  # what open() would have created: 0666 minus the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (bytes or text) to ``path`` atomically."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as fh:
        fh.write(data)
