"""The compiled module ``calib._kernels`` (C sources in csrc), with a clear message when
a source tree was never built."""

try:
    from . import _kernels as kernels
except ImportError as e:  # pragma: no cover - a checkout without 'pip install'
    raise ImportError(
        "calib's compiled kernels (csrc) are not built: install calib with "
        "'pip install -e .' (or 'bash setup.sh'), which compiles them with the C compiler "
        "and the Python headers") from e

__all__ = ["kernels"]
