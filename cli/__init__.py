"""The ``calib`` command-line interface (installed as ``calib_cli``)."""


def run() -> None:
    """Console-script entry: Ctrl-C or SIGTERM while the CLI is still importing exits 130
    with one line instead of a traceback (nothing has been written yet)."""
    import os
    import signal
    import sys

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        from .main import run as run_main
    except KeyboardInterrupt:
        sys.stderr.write("calib: interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    run_main()
