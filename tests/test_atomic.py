"""Atomic writes: a writer killed at any moment leaves the old file or the complete new one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from calib.io.atomic import atomic_open, atomic_write


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
