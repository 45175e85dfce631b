"""``calib camera-lidar`` end to end on rendered frames; bad input."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest

from calib.camera import CameraModel
from calib.extrinsics.uncertainty import pose_error
from calib.io.camera_files import write_camera
from calib.io.clouds import write_ply
from calib_cli.main import main
from calib_datasets import lidar_synth

CAM = np.array([560.0, 561.0, 322.0, 238.5, -0.12, 0.05, 0.0004, -0.0003, 0.0])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = lidar_synth.frames(5, 32, seed=11, az_step_deg=0.4, params=CAM, image_size=(640, 480))
    p = tmp_path_factory.mktemp("cl")
    (p / "img").mkdir()
    (p / "pc").mkdir()
    for i, im in enumerate(lidar_synth.images(d, supersample=2)):
        cv2.imwrite(str(p / "img" / f"cam_{i + 10:04d}.png"), im)
        write_ply(p / "pc" / f"velo{i + 10}.ply", d.clouds[i])
    write_camera(p / "cam.yaml", CameraModel(CAM, (640, 480)))
    return d, p


def _args(p, *extra):
    return ["camera-lidar", "--images", str(p / "img"), "--clouds", str(p / "pc"), "--camera",
            str(p / "cam.yaml"), "--board", "7x5", "--square", "0.12", "--workers", "1",
            "--timeout", "120",
            *extra]


def test_end_to_end(scene):
    d, p = scene
    out, rep, png = p / "T.txt", p / "r.json", p / "check.png"
    assert main(_args(p, "-o", str(out), "--report", str(rep), "--plot", str(png), "-q")) == 0
    T = np.loadtxt(out)
    r = json.loads(rep.read_text())
    np.testing.assert_allclose(T, r["T_camera_lidar"], atol=1e-15)
    er, et = pose_error(T, d.T_camera_lidar)
    assert er < 3 * r["std_rot_deg"] and et < 3 * r["std_trans_m"] and et < 0.01
    assert [f["name"] for f in r["frames"]] == [f"velo{i}.ply" for i in range(10, 15)]
    assert all(0.003 < f["plane_rms_m"] < 0.02 for f in r["frames"])
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 200


def test_frame_without_partner(scene, tmp_path, capsys):
    d, p = scene
    (p / "pc" / "velo14.ply").rename(tmp_path / "velo14.ply")
    try:
        assert main(_args(p, "-o", str(tmp_path / "T.txt"))) == 2
    finally:
        (tmp_path / "velo14.ply").rename(p / "pc" / "velo14.ply")
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"calib: error: .*cam_0014\.png: frame 14 has no cloud partner.*", err)
    assert not (tmp_path / "T.txt").exists()


def test_mispaired_frames_write_nothing(scene, tmp_path, capsys):
    """Clouds paired with the wrong images (each frame's scan is the next frame's): most
    frames then disagree with any one transform: exit 4 and nothing written, where a
    warning used to come with a transform decimetres off."""
    d, p = scene
    (tmp_path / "pc").mkdir()
    for i in range(5):
        write_ply(tmp_path / "pc" / f"velo{i + 10}.ply", d.clouds[(i + 1) % 5])
    args = _args(p, "-o", str(tmp_path / "T.txt"), "--report", str(tmp_path / "r.json"))
    args[args.index("--clouds") + 1] = str(tmp_path / "pc")
    assert main(args) == 4
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"calib: error: [345] of 5 frames do not fit the result \(velo.*\): "
                        r"are the images and clouds paired frame by frame.*", err), err
    assert not (tmp_path / "T.txt").exists() and not (tmp_path / "r.json").exists()


def test_bad_roi(scene, tmp_path, capsys):
    _, p = scene
    assert main(_args(p, "-o", str(tmp_path / "T.txt"), "--roi", "1,2,3")) == 2
    assert "--roi '1,2,3': expected xmin,xmax" in capsys.readouterr().err
    assert main(_args(p, "-o", str(tmp_path / "T.txt"), "--roi", "-1,1,-1,1,-1,1")) == 2
    assert "no plane of the board's size" in capsys.readouterr().err


def test_correspondences_on_heethesh(shared_datasets, tmp_path, capsys):
    """Real hand-picked pairs with a weak reference (solvePnPRansac, 13.4 px RMS on all
    pairs): a sanity check. calib's robust fit explains all 16 pairs better than the
    reference does, and the camera centre agrees with the reference's to 15 cm."""
    from calib.lie import se3

    src = shared_datasets / "heethesh_lidar_camera"
    np.savez(tmp_path / "pairs.npz",
             image_points=np.load(src / "lidar_camera_calibration" / "img_corners.npy"),
             lidar_points=np.load(src / "lidar_camera_calibration" / "pcl_corners.npy"))
    out, rep = tmp_path / "T.txt", tmp_path / "r.json"
    assert main(["camera-lidar", "--correspondences", str(tmp_path / "pairs.npz"), "--camera",
                 str(src / "camera_calibration" / "ost.yaml"), "-o", str(out), "--report",
                 str(rep), "-q"]) == 0
    r = json.loads(rep.read_text())
    assert r["rms_all_px"] < 13.4
    ref = np.load(src / "lidar_camera_calibration" / "extrinsics.npz")
    c_ref = -ref["R"].T @ ref["T"].ravel()
    c = se3.inverse(np.loadtxt(out))[:3, 3]
    assert np.linalg.norm(c - c_ref) < 0.15
    assert main(["camera-lidar", "--correspondences", str(tmp_path / "pairs.npz"), "--camera",
                 str(src / "camera_calibration" / "ost.yaml"), "--images", "x", "-o",
                 str(tmp_path / "T2.txt")]) == 2
    assert "--correspondences replaces" in capsys.readouterr().err


def test_target_yaml(scene, tmp_path):
    d, p = scene
    (tmp_path / "t.yaml").write_text("target_type: checkerboard\ntargetCols: 7\ntargetRows: 5\n"
                                     "rowSpacingMeters: 0.12\ncolSpacingMeters: 0.12\n")
    out = tmp_path / "T.txt"
    assert main(["camera-lidar", "--images", str(p / "img"), "--clouds", str(p / "pc"),
                 "--camera", str(p / "cam.yaml"), "--target", str(tmp_path / "t.yaml"),
                 "--workers", "1", "--timeout", "120", "-o", str(out), "-q"]) == 0
    assert pose_error(np.loadtxt(out), d.T_camera_lidar)[1] < 0.01


def test_edges(scene, tmp_path, capsys):
    d, p = scene
    x0, x1, y0, y1 = d.board_extent
    rep = tmp_path / "r.json"
    assert main(_args(p, "-o", str(tmp_path / "T.txt"), "--report", str(rep), "-q", "--edges",
                      "--board-size", f"{y1 - y0:.4f}x{x1 - x0:.4f}")) == 0  # either order
    r = json.loads(rep.read_text())
    er, et = pose_error(np.loadtxt(tmp_path / "T.txt"), d.T_camera_lidar)
    assert er < 3 * r["std_rot_deg"] and et < 3 * r["std_trans_m"] and et < 0.01
    assert r["edges_used"] is True and all(f["edge_rays"] > 5 for f in r["frames"])
    assert 0.7 < r["edge_rms_sigma"] < 1.3  # the crossings fit their stated uniform error
    assert main(_args(p, "-o", str(tmp_path / "T2.txt"), "--edges")) == 2
    assert "--edges needs the board's exact outer size" in capsys.readouterr().err
    assert not (tmp_path / "T2.txt").exists()


def test_most_outliers_rule_used_by_hand_eye_and_camera_lidar():
    from calib.errors import NotConvergedError
    from calib_cli.common import refuse_most_outliers

    refuse_most_outliers(("a", "b"), 4, "stations", "hint")  # half: the rest still agree
    with pytest.raises(NotConvergedError, match=r"^3 of 5 stations do not fit the result "
                                                r"\(a, b, c\): hint \(nothing written\)$"):
        refuse_most_outliers(("a", "b", "c"), 5, "stations", "hint")
