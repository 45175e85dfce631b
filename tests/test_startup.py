"""Start-up of the ``calib`` program: help without heavy imports, Ctrl-C while importing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

#: Packages no ``--help`` may import (each costs 0.1-1 s of start-up).
HEAVY = ("numpy", "scipy", "cv2", "open3d", "matplotlib", "dask", "distributed", "pydantic",
         "rich", "threadpoolctl", "calib.solver", "calib.intrinsics", "calib.registration",
         "calib.bundle", "calib.camera", "calib.lie")

HELP_EVERYTHING = r"""
import contextlib, io, json, sys
from calib_cli.main import command_group, run_command
with contextlib.redirect_stdout(io.StringIO()) as out:
    codes = [run_command(["--help"])[0]]
    codes += [run_command([name, "--help"])[0] for name in command_group().commands]
heavy = sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:])))
print(json.dumps({"codes": codes, "heavy": heavy, "commands": list(command_group().commands)}))
"""


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "CALIB_DEBUG"}


def test_help_of_every_command_imports_no_heavy_module():
    proc = subprocess.run([sys.executable, "-c", HELP_EVERYTHING, *HEAVY], capture_output=True,
                          text=True, timeout=120, env=_env(), check=True)
    res = json.loads(proc.stdout)
    assert {"fit-intrinsics", "register-clouds", "bundle-adjust", "batch"} <= \
        set(res["commands"])
    assert res["codes"] == [0] * (1 + len(res["commands"]))
    assert res["heavy"] == []


SLOW_IMPORT = r"""
import importlib.abc, os, signal, sys, time
SIG = int(sys.argv[1])
class SignalDuringImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "typer":  # imported by calib_cli.main, before any command runs
            os.kill(os.getpid(), SIG)
            time.sleep(5)
        return None
sys.meta_path.insert(0, SignalDuringImport())
sys.argv = ["calib", "--help"]
from calib_cli import run
run()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_while_importing_is_one_line_exit_130(sig):
    proc = subprocess.run([sys.executable, "-c", SLOW_IMPORT, str(int(sig))],
                          capture_output=True, text=True, timeout=60, env=_env())
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "calib: interrupted\n"
    assert proc.stdout == ""
