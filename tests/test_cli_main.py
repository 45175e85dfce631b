"""The ``calib`` entry point: version, help, error mapping to one stderr line and exit code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import typer

import calib
import calib_cli.main as cli_main
from calib.errors import CalibError, DegenerateError, InputError, NotConvergedError


def test_version(capsys):
    assert cli_main.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"calib {calib.__version__}"


def test_help_lists_the_commands(capsys):
    assert cli_main.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("fit-intrinsics", "register-clouds", "bundle-adjust"):
        assert name in out


@pytest.mark.parametrize("args", [["no-such-command"], ["fit-intrinsics", "--no-such-option"],
                                  ["bundle-adjust"]])
def test_usage_errors_exit_2_with_usage_not_internal_error(capsys, args):
    code = cli_main.main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "internal error" not in err and "Traceback" not in err


@pytest.fixture
def fake_app(monkeypatch):
    """The real root callback (--version, --debug) with commands that fail on purpose."""
    app = typer.Typer(pretty_exceptions_enable=False)
    app.callback()(cli_main._root)
    errors = {"input": InputError, "degenerate": DegenerateError,
              "notconverged": NotConvergedError, "calib": CalibError,
              "unexpected": ZeroDivisionError, "interrupt": KeyboardInterrupt}

    @app.command()
    def fail(kind: str) -> None:
        raise errors[kind](f"{kind} went wrong")

    @app.command()
    def ok() -> None:
        typer.echo("fine")

    monkeypatch.setattr(cli_main, "app", app)
    # CALIB_DEBUG=0: the environment must not turn on tracebacks for these tests
    monkeypatch.setenv("CALIB_DEBUG", "0")
    return app


@pytest.mark.parametrize(("kind", "code"), [("input", 2), ("degenerate", 3),
                                            ("notconverged", 4), ("calib", 1)])
def test_calib_errors_are_one_line_and_their_exit_code(fake_app, capsys, kind, code):
    assert cli_main.main(["fail", kind]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"calib: error: {kind} went wrong"]


def test_unexpected_exception_is_one_line_exit_1_with_debug_hint(fake_app, capsys):
    assert cli_main.main(["fail", "unexpected"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ZeroDivisionError" in err[0] and "--debug" in err[0]


def test_keyboard_interrupt_exits_130(fake_app, capsys):
    assert cli_main.main(["fail", "interrupt"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_success_exits_0(fake_app, capsys):
    assert cli_main.main(["ok"]) == 0
    assert capsys.readouterr().out == "fine\n"


def test_debug_flag_and_env_show_the_exception(fake_app, monkeypatch):
    with pytest.raises(InputError):
        cli_main.main(["--debug", "fail", "input"])
    monkeypatch.setenv("CALIB_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli_main.main(["fail", "unexpected"])


def test_console_script_error_in_a_subprocess(tmp_path):
    """The real process: one line on stderr, exit 2, no traceback, no output file."""
    out = tmp_path / "T.txt"
    proc = subprocess.run([sys.executable, "-m", "calib_cli.main", "register-clouds",
                           str(tmp_path / "missing.ply"), str(tmp_path / "missing2.ply"),
                           "-o", str(out), "--quiet"], capture_output=True, text=True,
                          timeout=120, env={k: v for k, v in os.environ.items()
                                            if k != "CALIB_DEBUG"})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("calib: error: "), lines
    assert "missing.ply" in lines[0]
    assert not out.exists()


def test_flags_show_no_value_type_in_the_help(capsys):
    assert cli_main.main(["fit-intrinsics", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    flag = next(ln for ln in lines if "--fix-k3" in ln)
    assert "<bool>" not in "\n".join(lines) and flag.split()[:4] == ["--fix-k3", "Hold", "k3",
                                                                     "="]
    assert any("--square <float>" in ln for ln in lines)  # options with values keep theirs


def test_run_command_in_a_thread_changes_nothing_process_wide(tmp_path, monkeypatch):
    """Where Dask runs jobs: not the main thread (signal.signal would raise there), and
    --debug must not reach os.environ (later jobs on the same worker would see it)."""
    import threading

    monkeypatch.delenv("CALIB_DEBUG", raising=False)
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    results = []
    missing = str(tmp_path / "missing.ply")
    argv = ["register-clouds", missing, missing, "-o", str(tmp_path / "T.txt"), "-q"]

    def job():
        results.append(cli_main.run_command(argv))
        try:
            cli_main.run_command(["--debug", *argv])
        except InputError as exc:
            results.append(("raised", str(exc)))

    t = threading.Thread(target=job)
    t.start()
    t.join(timeout=120)
    assert results[0][0] == 2 and results[0][1].startswith(f"calib: error: {missing}")
    assert results[1][0] == "raised" and missing in results[1][1]
    assert "CALIB_DEBUG" not in os.environ
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert not (tmp_path / "T.txt").exists()


def test_run_command_usage_error_is_one_line():
    code, line = cli_main.run_command(["fit-intrinsics", "--no-such-option"])
    assert code == 2 and line == "calib: error: No such option: --no-such-option"
