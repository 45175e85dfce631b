"""``calib fit-intrinsics`` end to end on the bundled sample and on bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from calib_cli.main import main


def test_fit_intrinsics_on_bundled_images(tmp_path, bundled, capsys):
    out, rep, plots = tmp_path / "camera.yaml", tmp_path / "report.json", tmp_path / "plots"
    code = main(["fit-intrinsics", str(bundled / "chessboard_left"), "--board", "9x6",
                 "--square", "0.025", "-o", str(out), "--report", str(rep), "--plot",
                 str(plots), "--quiet"])
    assert code == 0
    fs = cv2.FileStorage(str(out), cv2.FILE_STORAGE_READ)
    K = fs.getNode("camera_matrix").mat()
    fs.release()
    r = json.loads(rep.read_text())
    for key in ("image_size", "K", "dist", "rms_px", "per_view", "std", "verdict", "solver"):
        assert key in r
    assert r["image_size"] == [640, 480]
    np.testing.assert_allclose(K, r["K"])
    assert len(r["per_view"]) == 13 and all(v["used"] for v in r["per_view"])
    assert r["rms_px"] < 0.3  # OpenCV's own corners give 0.41 px on these images
    assert abs(r["K"][0][0] - 536) < 5
    assert sorted(p.name for p in plots.iterdir()) == ["coverage.png", "distortion.png",
                                                       "histogram.png", "residuals.png"]


@pytest.mark.parametrize("fmt", ["ros", "json"])
def test_formats_and_corners_file(tmp_path, shared_datasets, fmt):
    out = tmp_path / f"camera.{fmt}"
    corners = shared_datasets / "opencv_stereo_chessboard_left" / "corners_9x6.json"
    assert main(["fit-intrinsics", "--corners", str(corners), "-o", str(out), "--format", fmt,
                 "--quiet"]) == 0
    from calib.io.camera_files import read_camera

    cam = read_camera(out)
    assert abs(cam.params[0] - 536.07) < 0.01  # same corners as OpenCV: same answer


def _run_bad(tmp_path, args, capsys):
    out = tmp_path / "camera.yaml"
    code = main(["fit-intrinsics", *args, "-o", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert not out.exists()
    assert not list(tmp_path.glob(".camera.yaml*"))  # no temporary file left behind
    return code, err[-1]


def test_bad_inputs(tmp_path, bundled, capsys):
    imgs = sorted((bundled / "chessboard_left").glob("*.jpg"))
    code, msg = _run_bad(tmp_path, [str(p) for p in imgs[:2]] + ["--board", "9x6", "--square",
                                                                 "0.025"], capsys)
    assert code == 2 and "need at least 3" in msg
    code, msg = _run_bad(tmp_path, [str(bundled / "chessboard_left"), "--board", "10x7",
                                    "--square", "0.025"], capsys)
    assert code == 2 and "no 10x7 chessboard found" in msg and "INNER corners" in msg
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG garbage")
    code, msg = _run_bad(tmp_path, [str(junk), "--board", "9x6", "--square", "0.025"], capsys)
    assert code == 2
    npz = np.load(bundled / "chessboard_left" / "corners_9x6.npz")
    ip = npz["image_points"].astype(float)
    ip[2, 3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", image_points=ip, object_points=npz["object_points"],
             image_size=npz["image_size"])
    code, msg = _run_bad(tmp_path, ["--corners", str(tmp_path / "nan.npz")], capsys)
    assert code == 2 and "NaN" in msg
    code, msg = _run_bad(tmp_path, [str(bundled / "chessboard_left"), "--board", "9x6"], capsys)
    assert code == 2 and "--square" in msg


def test_unreadable_image_is_listed_and_skipped(tmp_path, bundled, capsys):
    imgs = sorted((bundled / "chessboard_left").glob("*.jpg"))[:4]
    junk = tmp_path / "broken.jpg"
    junk.write_bytes(b"not a jpeg")
    out = tmp_path / "cam.yaml"
    code = main(["fit-intrinsics", *map(str, imgs), str(junk), "--board", "9x6", "--square",
                 "0.025", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and out.exists()
    assert "skipped" in err and "broken.jpg" in err and "not a readable image" in err
