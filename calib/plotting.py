"""Matplotlib helpers shared by the report plots (headless Agg backend, atomic PNG writes)."""

from __future__ import annotations

import io
import os


def figure(*args, **kwargs):
    """A matplotlib figure on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> None:
    """Render ``fig`` to PNG and write it atomically, then close it."""
    import matplotlib.pyplot as plt

    from .io.atomic import atomic_write

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, buf.getvalue())
