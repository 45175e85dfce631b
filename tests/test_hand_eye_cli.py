"""``calib hand-eye`` end to end: corners, target poses and rendered images; bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from calib.camera import CameraModel
from calib.extrinsics import poses_to_xyzq
from calib.extrinsics.uncertainty import pose_error
from calib.io.camera_files import write_camera
from calib_cli.main import main
from calib_datasets import handeye_synth


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = handeye_synth.stations(15, "eye-to-hand", 0.3, 0.2, 0.02, seed=21)
    p = tmp_path_factory.mktemp("he")
    np.savetxt(p / "poses.csv", poses_to_xyzq(d.robot_measured), delimiter=",",
               header="x,y,z,qx,qy,qz,qw", comments="")
    np.savetxt(p / "target.csv", poses_to_xyzq(d.target_poses))
    np.savez(p / "corners.npz", image_points=d.corners, object_points=d.object_points,
             image_size=np.array(d.image_size))
    write_camera(p / "cam.yaml", CameraModel(d.params, d.image_size))
    return d, p


def test_corners_report_and_matrix(files, capsys):
    d, p = files
    out, rep = p / "X.txt", p / "he.json"
    assert main(["hand-eye", "--robot-poses", str(p / "poses.csv"), "--corners",
                 str(p / "corners.npz"), "--camera", str(p / "cam.yaml"), "--setup",
                 "eye-to-hand", "-o", str(out), "--report", str(rep)]) == 0
    X = np.loadtxt(out)
    r = json.loads(rep.read_text())
    np.testing.assert_allclose(X, r["T_base_camera"], atol=1e-15)
    assert set(r) >= {"T_base_camera", "T_gripper_target", "std_rot_deg", "std_trans_m",
                      "converged"}
    er, et = pose_error(X, d.X)
    assert er < 3 * r["std_rot_deg"] and et < 3 * r["std_trans_m"]
    assert r["converged"] is True and et < 1e-3
    assert "T_base_camera: t = " in capsys.readouterr().out


def test_target_poses(files):
    d, p = files
    out = p / "X2.txt"
    assert main(["hand-eye", "--robot-poses", str(p / "poses.csv"), "--target-poses",
                 str(p / "target.csv"), "--setup", "eye-to-hand", "-o", str(out), "-q"]) == 0
    assert pose_error(np.loadtxt(out), d.X)[1] < 1e-3


@pytest.mark.parametrize("n, name", [(6, "st{:02d}.png"), (11, "st{}.png")])
def test_images(tmp_path, n, name):
    """Board images paired with a pose CSV's rows in the order of the numbers in their
    names: unpadded names (st0 .. st10) too, where name order puts st10 third (a wrong
    pairing that used to pass with exit 0); the truth within 3σ."""
    d = handeye_synth.stations(n, "eye-in-hand", 0.0, 0.1, 0.01, seed=3, tilt=0.25)
    for i, im in enumerate(handeye_synth.images(d, supersample=2)):
        cv2.imwrite(str(tmp_path / name.format(i)), im)
    np.savetxt(tmp_path / "poses.csv", poses_to_xyzq(d.robot_measured))
    write_camera(tmp_path / "cam.yaml", CameraModel(d.params, d.image_size))
    out, rep = tmp_path / "X.txt", tmp_path / "r.json"
    assert main(["hand-eye", str(tmp_path), "--robot-poses", str(tmp_path / "poses.csv"),
                 "--camera", str(tmp_path / "cam.yaml"), "--board", "9x6", "--square", "0.03",
                 "--setup", "eye-in-hand", "-o", str(out), "--report", str(rep), "-q",
                 "--workers", "1", "--timeout", "120"]) == 0
    r = json.loads(rep.read_text())
    assert [s["name"] for s in r["stations"]] == [name.format(i) for i in range(n)]
    er, et = pose_error(np.loadtxt(out), d.X)
    assert et < 3 * r["std_trans_m"] and er < 3 * r["std_rot_deg"] and et < 2e-3


@pytest.mark.parametrize("extra, msg", [
    (["--setup", "eye-on-hand"], "--setup 'eye-on-hand'"),
    (["--setup", "eye-to-hand", "--target-poses", "{p}/target.csv"], "give exactly one of"),
    (["--setup", "eye-to-hand", "--corners", "{p}/short.npz"],
     "short.npz: 10 views but .*poses.csv has 15 stations"),
])
def test_bad_input(files, capsys, extra, msg):
    import re

    d, p = files
    np.savez(p / "short.npz", image_points=d.corners[:10], object_points=d.object_points,
             image_size=np.array(d.image_size))
    args = ["hand-eye", "--robot-poses", str(p / "poses.csv"), "--camera", str(p / "cam.yaml"),
            "-o", str(p / "bad.txt")] + [a.format(p=p) for a in extra]
    if "--corners" not in extra and "--target-poses" not in extra or "--target-poses" in extra:
        args += ["--corners", str(p / "corners.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(msg, err), err
    assert not (p / "bad.txt").exists()


def test_degenerate_exit_3(tmp_path, capsys):
    from calib.lie import se3, so3

    d = handeye_synth.stations(15, "eye-in-hand", seed=1)
    ang = np.linspace(-1.0, 1.0, 10)
    B = se3.from_rt(so3.exp(np.c_[ang, np.zeros(10), np.zeros(10)]),
                    np.c_[0.4 + 0.02 * ang, 0.05 * np.sin(2 * ang), np.full(10, 0.45)])
    C = se3.compose(se3.compose(se3.inverse(d.X), se3.inverse(B)), d.Y)
    np.savetxt(tmp_path / "b.csv", poses_to_xyzq(B))
    np.savetxt(tmp_path / "c.csv", poses_to_xyzq(C))
    assert main(["hand-eye", "--robot-poses", str(tmp_path / "b.csv"), "--target-poses",
                 str(tmp_path / "c.csv"), "--setup", "eye-in-hand", "-o",
                 str(tmp_path / "X.txt")]) == 3
    assert "share one axis (gripper axis [1.000, 0.000, 0.000]" in capsys.readouterr().err
    assert not (tmp_path / "X.txt").exists()


def test_pose_folder_pairs_with_images_by_number(tmp_path, capsys):
    """ROS-Industrial's layout: images/N.png with poses/N.yaml; 11 stations, so sorting by
    name (0, 1, 10, 2, ...) would pair them wrongly."""
    import yaml

    d = handeye_synth.stations(11, "eye-in-hand", 0.0, 0.1, 0.01, seed=5, tilt=0.25)
    (tmp_path / "im").mkdir()
    (tmp_path / "po").mkdir()
    for i, (im, row) in enumerate(zip(handeye_synth.images(d, supersample=2),
                                      poses_to_xyzq(d.robot_measured), strict=True)):
        cv2.imwrite(str(tmp_path / "im" / f"{i}.png"), im)
        (tmp_path / "po" / f"pose_{i}.yaml").write_text(yaml.safe_dump(dict(zip(
            ("x", "y", "z", "qx", "qy", "qz", "qw"), map(float, row), strict=True))))
    write_camera(tmp_path / "cam.yaml", CameraModel(d.params, d.image_size))
    args = ["hand-eye", str(tmp_path / "im"), "--robot-poses", str(tmp_path / "po"),
            "--camera", str(tmp_path / "cam.yaml"), "--board", "9x6", "--square", "0.03",
            "--setup", "eye-in-hand", "-o", str(tmp_path / "X.txt"), "-q", "--workers", "1",
            "--timeout", "120"]
    assert main(args + ["--report", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert [s["name"] for s in r["stations"]] == [f"{i}.png" for i in range(11)]
    er, et = pose_error(np.loadtxt(tmp_path / "X.txt"), d.X)
    assert et < 3 * r["std_trans_m"] and er < 3 * r["std_rot_deg"] and et < 2e-3
    (tmp_path / "po" / "pose_3.yaml").rename(tmp_path / "pose_3.yaml")
    (tmp_path / "X.txt").unlink()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "station 3: image" in err and "has no pose file" in err and "\n" not in err
    (tmp_path / "po" / "pose_3.yaml").write_text("x: 1\ny: 2\n")
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "pose_3.yaml: expected a mapping with numbers x, y, z, qx, qy, qz, qw" in err
    assert not (tmp_path / "X.txt").exists()
