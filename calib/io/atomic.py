"""Atomic file output: write to a temporary file in the same folder, fsync, rename.

A run that fails or is killed part-way leaves either the old file or the complete new one,
never a truncated file that a later pipeline stage would read as valid.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
    """Open ``path`` for writing atomically (``mode`` ``'w'`` or ``'wb'``).

    The data goes to a hidden temporary file next to ``path`` (next to its target when
    ``path`` is a symlink); on a clean exit it is flushed, fsynced and renamed over it (and
    the folder fsynced), keeping the replaced file's permissions (new files get the umask's).
    On any exception, including ``KeyboardInterrupt``, the temporary file is removed and
    ``path`` is untouched. A target that is not a regular file (``/dev/null``, a FIFO) is
    written directly.
    """
    if mode not in ("w", "wb"):
        raise ValueError("atomic_open supports modes 'w' and 'wb'")
    target = Path(os.path.realpath(path))  # write through symlinks to their target
    if target.exists() and not target.is_file():  # a device or FIFO (/dev/null): no rename
        with open(target, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
        return
    folder = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        if target.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        else:  # what open() would have created: 0666 minus the umask
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
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
