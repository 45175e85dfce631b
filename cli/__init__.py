"""The ``calib`` command-line interface (installed as the package ``calib_cli``)."""
