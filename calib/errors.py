"""One error hierarchy for calib.

Every failure the library detects raises a subclass of :class:`CalibError`;
the CLI maps each class to a documented exit code (see ``EXIT_CODES``).
"""

from __future__ import annotations


class CalibError(Exception):
    """Base class of every error calib raises on purpose."""

    exit_code = 1


class InputError(CalibError, ValueError):
    """Bad input: wrong shape/dtype, NaN/inf, unreadable or malformed file, too few items."""

    exit_code = 2


class DegenerateError(CalibError):
    """The data cannot determine the answer (collinear points, a flat board seen once, ...)."""

    exit_code = 3


class NotConvergedError(CalibError):
    """The solver stopped without converging (iteration/time cap, NaN in residuals, ...)."""

    exit_code = 4


EXIT_CODES = {
    "CalibError": CalibError.exit_code,
    "InputError": InputError.exit_code,
    "DegenerateError": DegenerateError.exit_code,
    "NotConvergedError": NotConvergedError.exit_code,
    "KeyboardInterrupt": 130,
}
