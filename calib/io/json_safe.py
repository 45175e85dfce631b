"""Strict JSON for reports: numpy scalars as Python numbers, NaN and infinity as null."""

from __future__ import annotations

import numpy as np


def json_safe(v):
    """``v`` (nested dicts, lists, tuples, arrays) with numpy arrays and scalars as Python
    lists and numbers and NaN/inf as None, so ``json.dumps(..., allow_nan=False)`` accepts
    it."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
