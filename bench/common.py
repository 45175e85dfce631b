"""Shared benchmark helpers: timing medians, shared-data location, table printing."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CALIB_SHARED", ROOT.parent / "shared")) / "datasets"


def median_time(fn, repeat: int = 5, warmup: int = 1) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeat`` runs (after ``warmup``) and its last
    result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
