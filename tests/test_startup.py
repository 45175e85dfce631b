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


# Option values: calib_cli.coercion converts plain values without pydantic; typer's own
# (pydantic) converter is the truth for every value, ordinary or not.
VALUES = {
    int: ["5", "-5", "+5", "05", "0", "-0", "123456789012345678901", "1_000", "5.0", "1e3",
          "0x10", "", " 5", "5\n", "abc", "٣", 7],
    float: ["1", "1.5", "-1.5", ".5", "5.", "1.e5", "1e3", "-1E-3", "+2.5e+2", "1e400", "-0",
            "1e-400", "inf", "nan", "1_0", "", " 1", "abc", "1e", ".", 0.25, 3],
    str: ["", "abc", "-q", "päth"],
    "path": ["x.npz", "a/b/c.yaml", "~/a", "", "-", "a\0b", "/tmp"],
    "list": [("a", "b"), ["x"], ()],
}


def _coerce(runtime, value, param, ctx):
    """``("ok", value, type)`` or ``("error", message)``, as a user would see it."""
    from typer._click.exceptions import BadParameter

    try:
        out = runtime._coerce_value(value, param=param, ctx=ctx)
    except BadParameter as exc:
        return ("error", exc.format_message())
    return ("ok", repr(out), type(out))  # repr: nan == nan


def test_plain_option_values_convert_exactly_as_typer_does():
    from typer._coercion import build_runtime_param

    from calib_cli.coercion import _LightParam
    from calib_cli.main import command_group

    group = command_group()
    seen = set()
    for cmd in group.commands.values():
        ctx = cmd.context_class(cmd, info_name=cmd.name)
        for param in cmd.params:
            runtime = param.get_runtime_param()
            desc = param.type_descriptor
            kind = {list[str]: "list"}.get(desc.annotation, "path" if desc.is_path
                                           else desc.annotation)
            if not isinstance(runtime, _LightParam) or kind not in VALUES:
                continue
            seen.add(str(kind))
            truth = build_runtime_param(desc)
            for value in VALUES[kind]:
                assert _coerce(runtime, value, param, ctx) == _coerce(truth, value, param, ctx), \
                    (cmd.name, param.name, value)
    assert seen == {"<class 'int'>", "<class 'float'>", "<class 'str'>", "path", "list"}


CACHED_PATH = r"""
import json, sys
from calib_cli.main import run_command
code, err = run_command(sys.argv[2:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1].split(","))
print(json.dumps({"code": code, "err": err, "heavy": heavy}))
"""


def run_light(argv: list[str], heavy=HEAVY) -> dict:
    """Run a calib command in a new process: its exit code, error and the heavy modules it
    imported."""
    proc = subprocess.run([sys.executable, "-c", CACHED_PATH, ",".join(heavy), *argv],
                          capture_output=True, text=True, timeout=120, env=_env(), check=True)
    return json.loads(proc.stdout)


def test_a_command_line_with_values_imports_no_pydantic(tmp_path):
    """Options with values (a path, a number, a word) are parsed without pydantic; a bad
    number is still refused with typer's message."""
    res = run_light(["batch", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o"),
                     "--workers", "3", "--scheduler", "local"])
    assert res["code"] == 2 and "missing.yaml: jobs file does not exist" in res["err"]
    assert res["heavy"] == []
    res = run_light(["batch", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o"),
                     "--workers", "three"])
    assert res["code"] == 2 and "--workers" in res["err"] and "valid integer" in res["err"]
