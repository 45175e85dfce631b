"""Open3D imported without its plotly/dash viewer (calib.registration.open3d_import)."""

from __future__ import annotations

import json
import subprocess
import sys

DEFERRED = r"""
import json, sys
import numpy as np
from calib.registration.spatial import open3d
o3d = open3d()
out = {"loaded_at_import": sorted(m for m in ("dash", "plotly") if m in sys.modules)}
pts = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.5]])
pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
fig = o3d.visualization.get_plotly_fig([pcd])
out["x"] = [float(v) for v in fig.data[0].x]
out["z"] = [float(v) for v in fig.data[0].z]
out["loaded_after_call"] = sorted(m for m in ("dash", "plotly") if m in sys.modules)
import open3d.visualization.draw_plotly as viewer
out["viewer_file"] = viewer.__file__
out["draw_geometries"] = callable(o3d.visualization.draw_geometries)
print(json.dumps(out))
"""

USER_FIRST = r"""
import json, sys
import open3d
from calib.registration.spatial import open3d as calib_open3d
o3d = calib_open3d()
print(json.dumps({"same": o3d is open3d,
                  "module": o3d.visualization.draw_plotly.__module__}))
"""


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(proc.stdout)


def test_viewer_is_deferred_until_called_and_then_works():
    out = _run(DEFERRED)
    assert out["loaded_at_import"] == []
    # the real viewer drew the three points given
    assert out["x"] == [0.0, 3.0, 6.0] and out["z"] == [2.0, 5.0, 8.5]
    assert out["loaded_after_call"] == ["dash", "plotly"]
    assert out["viewer_file"].endswith("draw_plotly.py")
    assert out["draw_geometries"]


def test_open3d_imported_by_the_user_first_is_left_alone():
    out = _run(USER_FIRST)
    assert out == {"same": True, "module": "open3d.visualization.draw_plotly"}
