"""Open3D imported without its plotly/dash web viewer.

``import open3d`` (0.20) imports ``open3d.visualization``, whose ``draw_plotly`` module
imports plotly and dash at once: 700 more modules and 0.4-0.5 s of every process that
registers clouds, for a browser viewer calib never uses. :func:`import_open3d` imports
Open3D with that one module deferred: ``open3d.visualization.draw_plotly``,
``get_plotly_fig`` and ``draw_plotly_server`` become functions that import the real
module on their first call and hand it the call, so a user's own code that calls them still
works (as does ``import open3d.visualization.draw_plotly``, which then loads the real
module). Everything else of ``open3d.visualization`` is Open3D's own. When Open3D is
already imported (by the user, before calib) nothing changes.
"""

from __future__ import annotations

import importlib
import sys
import types

#: the Open3D module whose import pulls in plotly and dash, and the names it exports
#: to ``open3d.visualization``
VIEWER = "open3d.visualization.draw_plotly"
VIEWER_NAMES = ("get_plotly_fig", "draw_plotly", "draw_plotly_server")


def _deferred(name: str):
    def call(*args, **kwargs):
        return getattr(importlib.import_module(VIEWER), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Open3D's ``{name}``, its module (plotly, dash) imported on first call."
    return call


def import_open3d() -> types.ModuleType:
    """The ``open3d`` module; imported here without its plotly viewer when not yet loaded."""
    if "open3d" in sys.modules or VIEWER in sys.modules:
        return importlib.import_module("open3d")
    stand_in = types.ModuleType(VIEWER)
    for name in VIEWER_NAMES:
        setattr(stand_in, name, _deferred(name))
    sys.modules[VIEWER] = stand_in
    try:
        return importlib.import_module("open3d")
    finally:  # an explicit import of the viewer module from now on loads the real one
        if sys.modules.get(VIEWER) is stand_in:
            del sys.modules[VIEWER]
