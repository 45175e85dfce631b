"""Atomic writes: a writer killed at any moment leaves the old file or the complete new one."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from calib.errors import InputError
from calib.io.atomic import atomic_open, atomic_write
from calib.io.validate import check_output_path


def test_exception_keeps_old_file(tmp_path):
    p = tmp_path / "out.txt"
    atomic_write(p, "old\n")
    with pytest.raises(RuntimeError), atomic_open(p) as fh:
        fh.write("half")
        raise RuntimeError("boom")
    assert p.read_text() == "old\n"
    assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]


WRITER = """
import sys, time
from calib.io.atomic import atomic_open
with atomic_open(sys.argv[1]) as fh:
    for i in range(200000):
        fh.write("line %d\\n" % i)
        if i == 1000:
            print("writing", flush=True)
            time.sleep(30)
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_writer_leaves_old_content(tmp_path, sig):
    p = tmp_path / "out.txt"
    atomic_write(p, "old complete content\n")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(p)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(sig)
    proc.wait(timeout=20)
    assert p.read_text() == "old complete content\n"
    if sig == signal.SIGINT:  # KeyboardInterrupt also removes the temporary file (the CLI
        time.sleep(0.1)      # turns SIGTERM into the same; see test_hostile_cli)
        assert [q.name for q in tmp_path.iterdir()] == ["out.txt"]


def test_complete_write_replaces(tmp_path):
    p = tmp_path / "out.bin"
    atomic_write(p, b"\x00\x01")
    atomic_write(p, b"new")
    assert p.read_bytes() == b"new"
    assert os.stat(p).st_size == 3


# --- environment failures: one InputError naming the file, nothing stray (issue 15) ---

def _only(folder, *names):
    assert sorted(q.name for q in folder.iterdir()) == sorted(names)


def test_device_without_space_is_an_input_error():
    with pytest.raises(InputError, match=r"^/dev/full: cannot write \(No space left"):
        atomic_write("/dev/full", "x" * 100_000)


@pytest.mark.parametrize("where", ["write", "fsync", "mkstemp", "replace"])
def test_full_or_read_only_file_system(tmp_path, monkeypatch, where):
    p = tmp_path / "out.txt"
    atomic_write(p, "old\n")
    err = OSError(errno.ENOSPC if where in ("write", "fsync") else errno.EROFS,
                  os.strerror(errno.ENOSPC if where in ("write", "fsync") else errno.EROFS))

    def fail(*args, **kwargs):
        raise err
    if where == "write":
        with pytest.raises(InputError, match=f"^{p}: cannot write \\(No space left"), \
                atomic_open(p) as fh:
            fh.write("new\n")
            raise err  # what a full disk does inside the caller's write
    else:
        target = {"fsync": os, "replace": os, "mkstemp": tempfile}[where]
        monkeypatch.setattr(target, where, fail)
        with pytest.raises(InputError, match=f"^{p}: cannot write \\({err.strerror}\\)$"):
            atomic_write(p, "new\n")
    assert p.read_text() == "old\n"
    _only(tmp_path, "out.txt")


def test_read_only_folder_and_dangling_symlink(tmp_path):
    with pytest.raises(InputError, match="^/proc/self/x.txt: output folder /proc/self is not "
                       "writable"):
        check_output_path("/proc/self/x.txt")
    link = tmp_path / "link.txt"
    link.symlink_to(tmp_path / "missing" / "x.txt")
    with pytest.raises(InputError, match=f"^{link}: output folder .*missing \\(the target of "
                       "the symlink"):
        check_output_path(link)
    with pytest.raises(InputError, match=f"^{link}: cannot write \\(No such file .*; {link} is "
                       "a symlink to"):
        atomic_write(link, "x")
    _only(tmp_path, "link.txt")
    (tmp_path / "missing").mkdir()  # a dangling link into an existing folder is written through
    atomic_write(link, "y")
    assert (tmp_path / "missing" / "x.txt").read_text() == "y"


def test_names_at_the_length_limit(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    p = tmp_path / ("a" * limit)
    check_output_path(p)
    atomic_write(p, "x")  # the temporary name must fit too
    _only(tmp_path, p.name)
    q = tmp_path / ("b" * (limit + 1))
    with pytest.raises(InputError, match="^.*b: .*(limit|too long)"):
        check_output_path(q)
    with pytest.raises(InputError, match=r"^.*b: cannot write \(File name too long\)$"):
        atomic_write(q, "x")
    _only(tmp_path, p.name)


PIPE_WRITER = """
import sys
from calib.errors import InputError
from calib.io.atomic import atomic_write
sys.stdout.write("") ; sys.stdin.read()  # wait until the test has set the pipe up
try:
    atomic_write("/dev/stdout", "data\\n" * 1000)
except InputError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
"""


def test_dev_stdout_through_a_pipe():
    ok = subprocess.run([sys.executable, "-c", PIPE_WRITER], input="", capture_output=True,
                        text=True, timeout=60)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "data\n" * 1000, "")
    proc = subprocess.Popen([sys.executable, "-c", PIPE_WRITER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # the reader went away (``| head -c 0``)
    _, err = proc.communicate("", timeout=60)
    assert proc.returncode == 2
    assert err.strip() == "/dev/stdout: cannot write (Broken pipe)"
