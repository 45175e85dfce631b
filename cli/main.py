"""The ``calib`` command: one typer app; each command lives in its own module.

Errors: every :class:`calib.errors.CalibError` becomes one line on stderr
(``calib: error: ...``) and its exit code (input 2, degenerate geometry 3, no
convergence 4, other 1); Ctrl-C or SIGTERM exits with 130 after temporary files are
removed; ``--debug`` (or ``CALIB_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys

import typer

import calib
from calib.errors import CalibError

try:  # typer >= 0.20 vendors click; usage errors come from its copy
    from typer._click.exceptions import ClickException as _VendoredClickException
except ImportError:  # pragma: no cover - older typer
    _VendoredClickException = None
try:
    from click.exceptions import ClickException as _ClickException
except ImportError:  # pragma: no cover - click is optional with typer >= 0.20
    _ClickException = None

USAGE_ERRORS = tuple(c for c in (_ClickException, _VendoredClickException) if c is not None)

COMMAND_MODULES = ("fit_intrinsics", "register_clouds", "bundle_adjust", "undistort",
                   "fit_rig", "hand_eye", "camera_lidar")

app = typer.Typer(
    name="calib", add_completion=False, no_args_is_help=True,
    help="Camera and point-cloud calibration: intrinsics, registration, bundle adjustment.",
    pretty_exceptions_enable=False)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"calib {calib.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """calib: camera and point-cloud calibration that tells you how far to trust it."""
    if debug:
        os.environ["CALIB_DEBUG"] = "1"


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __package__)
    except ModuleNotFoundError as _exc:  # a command not written yet
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _mod.register(app)


_signalled = False  # set when SIGINT/SIGTERM arrived (an import may mask the interrupt)


def _interrupt(signum, frame):  # SIGINT and SIGTERM: the same clean exit as Ctrl-C
    global _signalled
    _signalled = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``calib`` console script; returns the exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    if not logging.getLogger().handlers:  # library warnings: one line each on stderr
        logging.basicConfig(level=logging.WARNING, format="calib: warning: %(message)s")
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or \
        os.environ.get("CALIB_DEBUG") == "1"
    try:
        rv = app(args=argv, standalone_mode=False)
        if rv == 130:  # typer turns KeyboardInterrupt into an exit code of 130
            typer.echo("calib: interrupted", err=True)
            return 130
        if isinstance(rv, int) and rv:
            return rv
    except CalibError as exc:
        if debug:
            raise
        typer.echo(f"calib: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("calib: interrupted", err=True)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("calib: aborted", err=True)
        return 130
    except USAGE_ERRORS as exc:  # bad command line: click's message and exit code (2)
        exc.show()
        return exc.exit_code
    except Exception as exc:  # anything unexpected
        if _signalled:  # e.g. an extension module's import turned the interrupt into an error
            typer.echo("calib: interrupted", err=True)
            return 130
        if debug:
            raise
        typer.echo(f"calib: internal error: {type(exc).__name__}: {exc} "
                   "(rerun with --debug for the traceback)", err=True)
        return 1
    return 0


def run() -> None:
    code = main()
    if code == 130:  # interrupted: skip interpreter teardown (open3d may have been cut
        sys.stdout.flush()  # short in its import); outputs are already safe on disk
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
