"""Shape/finiteness checks at the public boundary of :mod:`calib.lie`."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

#: Largest accepted magnitude of any element (radians or metres): far beyond any real pose,
#: small enough that squared norms never overflow.
MAX_MAGNITUDE = 1e15


def as_batch(x: np.ndarray, shape: tuple[int, ...], name: str) -> tuple[np.ndarray, bool]:
    """Return ``(batch, single)``: ``x`` as float ``(N, *shape)`` and whether it had no batch axis.

    Raises :class:`InputError` naming ``name`` on a wrong shape or a non-finite value.
    """
    try:
        kind = np.asarray(x).dtype.kind
        if kind in "cSU":
            raise TypeError("complex values" if kind == "c" else "text, not numbers")
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc})") from None
    if a.shape == shape:
        a, single = a[None], True
    elif a.ndim == len(shape) + 1 and a.shape[1:] == shape:
        single = False
    else:
        raise InputError(f"{name}: expected shape {shape} or (N, {', '.join(map(str, shape))}), "
                         f"got {a.shape}")
    if not a.flags.aligned:  # a legal view (packed records, odd offsets) C cannot read
        a = a.copy()
    if not np.isfinite(a).all():
        raise InputError(f"{name}: contains NaN or inf")
    if a.size and np.abs(a).max() > MAX_MAGNITUDE:
        raise InputError(f"{name}: values up to {np.abs(a).max():.3g} exceed {MAX_MAGNITUDE:g} "
                         "(corrupt input or wrong units?)")
    return a, single


def unbatch(a: np.ndarray, single: bool) -> np.ndarray:
    """Drop the batch axis again if the input had none."""
    return a[0] if single else a
