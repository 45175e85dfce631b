"""The detection runner (worker processes, time-out) and ``fit-intrinsics --target``."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import cv2
import numpy as np
import yaml

from calib.targets import detect_images
from calib.targets.aprilgrid import AprilGrid
from calib_cli.main import main
from calib_datasets.board_render import render_target_set

SLOW = """
import os, time
import numpy as np
from dataclasses import dataclass
from calib.targets.base import Target

@dataclass(frozen=True)
class SlowTarget(Target):
    name = "slow"
    pid_dir: str

    def points(self):
        return np.zeros((4, 3))

    def detect(self, gray):
        open(os.path.join(self.pid_dir, f"{os.getpid()}.pid"), "w").close()
        if gray.mean() > 100:   # the bright image hangs
            time.sleep(600)
        return "nothing here"
"""


def test_runner_kills_a_timed_out_worker(tmp_path, monkeypatch):
    """A worker still busy after the time-out is killed (not abandoned) and replaced; the
    other images are still detected, results come back in input order."""
    (tmp_path / "slow_target.py").write_text(textwrap.dedent(SLOW))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), *sys.path]))
    from slow_target import SlowTarget

    imgs = []
    for k, level in enumerate([20, 200, 20, 20]):
        p = tmp_path / f"im{k}.png"
        cv2.imwrite(str(p), np.full((40, 40), level, np.uint8))
        imgs.append(p)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    done = []
    obs = detect_images(imgs, SlowTarget(str(pid_dir)), workers=2, timeout_s=3.0,
                        on_done=done.append)
    assert [o.view for o in obs] == [str(p) for p in imgs] and len(done) == 4
    assert obs[1].reason == "timed out after 3 s"
    assert [o.reason for o in obs[::2]] == ["nothing here"] * 2
    pids = [int(p.stem) for p in pid_dir.iterdir()]
    assert len(pids) >= 2
    for pid in pids:  # every worker is gone: the hung one killed, the others stopped
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"worker {pid} still running")


def _write_set(tmp_path, rs):
    d = tmp_path / "imgs"
    d.mkdir()
    for k, img in enumerate(rs.images):
        cv2.imwrite(str(d / f"v{k:02d}.png"), img)
    return d


def test_fit_intrinsics_with_aprilgrid_target(tmp_path, capsys):
    grid = AprilGrid(6, 6, 0.03, 0.3)
    rs = render_target_set(grid, n_views=8, seed=7, min_inside=0.75, tilt=0.45, noise=2.0)
    d = _write_set(tmp_path, rs)
    cv2.imwrite(str(d / "blank.png"), np.full((480, 640), 128, np.uint8))
    target = tmp_path / "target.yaml"
    target.write_text(yaml.safe_dump({"target_type": "aprilgrid", "tagCols": 6, "tagRows": 6,
                                      "tagSize": 0.03, "tagSpacing": 0.3}))
    out, rep = tmp_path / "cam.yaml", tmp_path / "r.json"
    code = main(["fit-intrinsics", str(d), "--target", str(target), "-o", str(out),
                 "--report", str(rep), "--quiet", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 0, err
    r = json.loads(rep.read_text())
    assert "blank.png" in err and "no t36h11 tags found" in err
    views = r["views"]
    assert len(views) == 8 and {"file", "corners", "rms_px"} <= set(views[0])
    assert any(v["corners"] < 144 for v in views)  # partial views are used
    assert all(0 < v["rms_px"] < 0.5 for v in views)
    assert r["inputs"]["target_type"] == "aprilgrid"
    K = np.array(r["K"])
    true = rs.params
    np.testing.assert_allclose([K[0, 0], K[1, 1], K[0, 2], K[1, 2]], true[:4], atol=3.0)


def test_target_option_errors(tmp_path, bundled, capsys):
    imgs = str(bundled / "chessboard_left")
    bad = tmp_path / "t.yaml"
    bad.write_text("target_type: aprilgrid\ntagCols: 6\ntagRows: 6\ntagSize: -1\n"
                   "tagSpacing: 0.3\n")
    out = tmp_path / "c.yaml"
    for args, words in [
        (["--target", str(bad)], "tagSize must be positive"),
        (["--target", str(tmp_path / "none.yaml")], "target file does not exist"),
        (["--target", str(bad), "--board", "9x6", "--square", "0.025"], "--target replaces"),
    ]:
        code = main(["fit-intrinsics", imgs, *args, "-o", str(out), "--quiet"])
        msg = capsys.readouterr().err.strip().splitlines()[-1]
        assert code == 2 and words in msg and not out.exists()


def test_square_in_millimetres_warns(tmp_path, bundled, capsys):
    out = tmp_path / "c.yaml"
    code = main(["fit-intrinsics", str(bundled / "chessboard_left"), "--board", "9x6",
                 "--square", "25", "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "larger than 0.5 m" in err and "0.025" in err


def test_checkerboard_target_yaml_equals_board_option(tmp_path, bundled, capsys):
    t = tmp_path / "cb.yaml"
    t.write_text(yaml.safe_dump({"target_type": "checkerboard", "targetCols": 9,
                                 "targetRows": 6, "rowSpacingMeters": 0.025,
                                 "colSpacingMeters": 0.025}))
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    imgs = str(bundled / "chessboard_left")
    assert main(["fit-intrinsics", imgs, "--target", str(t), "-o", str(tmp_path / "a.yaml"),
                 "--format", "json", "--report", str(a), "--quiet"]) == 0
    assert main(["fit-intrinsics", imgs, "--board", "9x6", "--square", "0.025", "-o",
                 str(tmp_path / "b.yaml"), "--format", "json", "--report", str(b),
                 "--quiet"]) == 0
    ka, kb = json.loads(a.read_text())["K"], json.loads(b.read_text())["K"]
    np.testing.assert_allclose(ka, kb, rtol=1e-9)
    assert all(v["corners"] == 54 for v in json.loads(a.read_text())["views"])
