"""The ``calib`` command: one typer app; each command lives in its own module.

Errors: every :class:`calib.errors.CalibError` becomes one line on stderr
(``calib: error: ...``) and its exit code (input 2, degenerate geometry 3, no
convergence 4, other 1); Ctrl-C or SIGTERM exits with 130 after temporary files are
removed; ``--debug`` (or ``CALIB_DEBUG=1``) shows the traceback instead.

Two entry points share one dispatch: :func:`run_command` runs one command in the calling
thread and touches nothing process-wide (no signal handlers, environment, logging set-up or
excepthook), so a Dask worker can run many jobs in one process; :func:`main` adds the
process-level start-up of the ``calib`` program around it.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import signal
import sys

import typer

from calib.errors import CalibError

from .coercion import light_coercion

try:  # typer >= 0.20 vendors click; usage errors come from its copy
    from typer._click.exceptions import ClickException as _VendoredClickException
except ImportError:  # pragma: no cover - older typer
    _VendoredClickException = None


def _usage_errors() -> tuple[type, ...]:
    """click's usage-error classes: typer's copy, and click's own once something imported
    click (typer >= 0.20 does not; importing it here would add 15 ms to every start-up)."""
    click_exceptions = sys.modules.get("click.exceptions")
    return tuple(c for c in (getattr(click_exceptions, "ClickException", None),
                             _VendoredClickException) if c is not None)


COMMAND_MODULES = ("fit_intrinsics", "register_clouds", "bundle_adjust", "undistort",
                   "fit_rig", "hand_eye", "camera_lidar", "batch")

app = typer.Typer(
    name="calib", add_completion=False, no_args_is_help=True,
    help="Camera and point-cloud calibration: intrinsics, registration, bundle adjustment.",
    pretty_exceptions_enable=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        import calib

        typer.echo(f"calib {calib.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks of errors."),
) -> None:
    """calib: camera and point-cloud calibration that tells you how far to trust it."""
    # --debug is read from the command line by run_command (never written to os.environ:
    # a Dask worker runs many jobs in one process)


for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f".{_name}", __package__)
    except ModuleNotFoundError as _exc:  # a command not written yet
        if _exc.name != f"{__package__}.{_name}":
            raise
        continue
    _mod.register(app)


def command_group():
    """The click group of the app, built once per process; flags are shown without a value
    type in the help, and plain option values are converted without pydantic (start-up:
    :mod:`calib_cli.coercion`)."""
    return _group_of(app)


@functools.cache
def _group_of(typer_app: typer.Typer):
    group = typer.main.get_command(typer_app)
    for cmd in (group, *getattr(group, "commands", {}).values()):
        params = (*cmd.params, cmd.get_help_option(cmd.context_class(cmd)))
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # typer would show "<bool>" as if the flag took a value
        light_coercion(params)
    return group


_signalled = False  # set when SIGINT/SIGTERM arrived (an import may mask the interrupt)


def _interrupt(signum, frame):  # SIGINT and SIGTERM: the same clean exit as Ctrl-C
    global _signalled
    _signalled = True
    raise KeyboardInterrupt


def _dispatch(argv: list[str], debug: bool) -> tuple[int, str | None, Exception | None]:
    """``(exit_code, error line or None, usage exception or None)``; re-raises with debug."""
    try:
        rv = command_group().main(args=list(argv), prog_name="calib", standalone_mode=False)
        if rv == 130:  # click turns KeyboardInterrupt into an exit code of 130
            return 130, "calib: interrupted", None
        return (rv if isinstance(rv, int) else 0), None, None
    except CalibError as exc:
        if debug:
            raise
        return exc.exit_code, f"calib: error: {exc}", None
    except KeyboardInterrupt:
        return 130, "calib: interrupted", None
    except typer.Exit as exc:
        return exc.exit_code, None, None
    except typer.Abort:
        return 130, "calib: aborted", None
    except _usage_errors() as exc:  # bad command line: click's message and exit code (2)
        return exc.exit_code, f"calib: error: {exc.format_message()}", exc
    except Exception as exc:  # anything unexpected
        if _signalled:  # e.g. an extension module's import turned the interrupt into an error
            return 130, "calib: interrupted", None
        if debug:
            raise
        return 1, (f"calib: internal error: {type(exc).__name__}: {exc} "
                   "(rerun with --debug for the traceback)").replace("\n", " "), None


def run_command(argv: list[str], debug: bool = False) -> tuple[int, str | None]:
    """Run one calib command (``argv`` without the program name) in the calling thread.

    Returns ``(exit_code, error)``: ``error`` is the one line the ``calib`` program would
    print on stderr (``None`` on success). Output and warnings go to the current
    ``sys.stdout``/``sys.stderr``. With ``debug`` (or ``--debug`` in ``argv``) errors are
    raised instead. Nothing process-wide is changed, so it is safe in any thread.
    """
    code, error, _ = _dispatch(argv, debug or "--debug" in argv)
    return code, error


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``calib`` console script; returns the exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
    if not logging.getLogger().handlers:  # library warnings: one line each on stderr
        logging.basicConfig(level=logging.WARNING, format="calib: warning: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("CALIB_DEBUG") == "1"
    code, error, usage = _dispatch(argv, debug)
    if usage is not None:
        usage.show()
    elif error is not None:
        typer.echo(error, err=True)
    return code


def run() -> None:
    code = main()
    if code == 130:  # interrupted: skip interpreter teardown (open3d may have been cut
        sys.stdout.flush()  # short in its import); outputs are already safe on disk
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
