"""``calib fit-rig`` end to end: rendered stereo images with ground truth, the output files,
and bad input (one line, non-zero exit, nothing written)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from calib.lie import so3
from calib_cli.main import main
from calib_datasets.board_render import render
from calib_datasets.rig_synth import make_rig


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Two cameras, 4 shared frames rendered as PNGs, plus one left-only frame (99)."""
    root = tmp_path_factory.mktemp("rig")
    s = make_rig(2, 0, seed=1, yaw_deg=5, pair_frames=4)
    rng = np.random.default_rng(0)
    for k, side in enumerate(("left", "right")):
        (root / side).mkdir()
        for f, T_rb in enumerate(s.T_rig_board):
            img = render(s.params[f"cam{k}"], s.T_cam_rig[k] @ T_rb, 9, 6, 0.04, (640, 480),
                         supersample=1, noise=1.0, rng=rng)
            cv2.imwrite(str(root / side / f"{side}{f:02d}.png"), img)
    img = render(s.params["cam0"], s.T_rig_board[0], 9, 6, 0.04, (640, 480), supersample=1,
                 noise=1.0, rng=rng)
    cv2.imwrite(str(root / "left" / "left99.png"), img)
    return root, s


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_rendered_stereo_end_to_end(rendered, tmp_path, capsys):
    root, s = rendered
    out, rep, plots = tmp_path / "rig.yaml", tmp_path / "rig.json", tmp_path / "plots"
    code, err = _run(["fit-rig", "--camera", f"left={root / 'left'}", "--camera",
                      f"right={root / 'right' / 'right*.png'}", "--board", "9x6", "--square",
                      "0.04", "-o", str(out), "--report", str(rep), "--plot", str(plots),
                      "--quiet"], capsys)
    assert code == 0, err
    assert "1 view(s) without a partner" in err and "left99.png" in err
    d = json.loads(rep.read_text())
    assert set(d["cameras"]) == {"left", "right"} and d["rms_px"] < 0.5
    e = d["extrinsics"]["right"]
    T = np.array(e["T_cam_ref"])
    rot_err = np.degrees(np.linalg.norm(so3.log(T[:3, :3] @ s.T_cam_rig[1, :3, :3].T)))
    t_err = np.linalg.norm(T[:3, 3] - s.T_cam_rig[1, :3, 3])
    assert rot_err < 3 * e["std_rot_deg"] and t_err < 3 * e["std_trans_m"]
    assert d["stereo"]["epipolar_rms_px"] < 0.5 and d["stereo"]["rectified_row_rms_px"] < 0.5
    fs = cv2.FileStorage(str(out), cv2.FILE_STORAGE_READ)
    assert np.allclose(fs.getNode("R").mat(), T[:3, :3])
    assert np.allclose(fs.getNode("T").mat().ravel(), T[:3, 3])
    assert fs.getNode("P2").mat().shape == (3, 4) and fs.getNode("Q").mat().shape == (4, 4)
    assert sorted(p.name for p in plots.iterdir()) == ["covisibility.png", "residuals.png",
                                                        "rig_3d.png"]
    # Kalibr's radtan has no k3: --format kalibr holds it at 0
    kal = tmp_path / "camchain.yaml"
    code, err = _run(["fit-rig", "--camera", f"left={root / 'left'}", "--camera",
                      f"right={root / 'right'}", "--board", "9x6", "--square", "0.04", "-o",
                      str(kal), "--format", "kalibr", "--quiet"], capsys)
    assert code == 0, err
    text = kal.read_text()
    assert "T_cn_cnm1" in text and "distortion_model: radtan" in text
    rows = [ln for ln in text.splitlines() if ln.startswith("  - [")]
    T_cn = np.array([[float(v) for v in ln.strip()[3:-1].split(",")] for ln in rows])
    assert np.allclose(T_cn, T, atol=5e-3)  # camera 1 from camera 0 (k3 held: close to T)


def test_known_intrinsics_held(rendered, tmp_path, capsys):
    """--intrinsics NAME=FILE with --fix-intrinsics: the true cameras held, the extrinsic
    within 3σ of the truth; a camera without a file is refused before any work."""
    from calib.camera import Camera
    from calib.io.camera_files import write_camera

    root, s = rendered
    files = []
    for k, side in enumerate(("left", "right")):
        f = tmp_path / f"{side}.yaml"
        write_camera(f, Camera(s.params[f"cam{k}"], (640, 480), "pinhole"), "opencv")
        files.append(f)
    rep = tmp_path / "rig.json"
    base = ["fit-rig", "--camera", f"left={root / 'left'}", "--camera",
            f"right={root / 'right'}", "--board", "9x6", "--square", "0.04", "-o",
            str(tmp_path / "rig.yaml"), "--report", str(rep), "--quiet", "--fix-intrinsics"]
    code, err = _run(base + ["--intrinsics", f"left={files[0]}"], capsys)
    assert code == 2 and "missing: right" in err and not rep.exists()
    code, err = _run(base + ["--intrinsics", f"left={files[0]}", "--intrinsics",
                             f"right={files[1]}"], capsys)
    assert code == 0, err
    d = json.loads(rep.read_text())
    assert np.allclose(d["cameras"]["right"]["K"], Camera(s.params["cam1"], (640, 480)).K)
    e = d["extrinsics"]["right"]
    T = np.array(e["T_cam_ref"])
    rot_err = np.degrees(np.linalg.norm(so3.log(T[:3, :3] @ s.T_cam_rig[1, :3, :3].T)))
    assert rot_err < 3 * e["std_rot_deg"]
    assert np.linalg.norm(T[:3, 3] - s.T_cam_rig[1, :3, 3]) < 3 * e["std_trans_m"]


@pytest.mark.parametrize("argv,code,words", [
    (["--camera", "a=x", "--camera", "a=y"], 2, "named twice"),
    (["--camera", "noequals"], 2, "NAME=IMAGES"),
    (["--camera", "a=x", "--model", "b=fisheye"], 2, "--model"),
    (["--camera", "a=x", "--format", "xml"], 2, "--format"),
])
def test_bad_command_lines(tmp_path, capsys, argv, code, words):
    out = tmp_path / "rig.yaml"
    got, err = _run(["fit-rig", *argv, "--board", "9x6", "--square", "0.025", "-o", str(out)],
                    capsys)
    assert got == code and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_disconnected_camera_is_named(tmp_path, capsys, shared_datasets):
    STEREO_L = shared_datasets / "opencv_stereo_chessboard_left"
    STEREO_R = shared_datasets / "opencv_stereo_chessboard_right"
    left = ",".join(str(STEREO_L / f"left0{i}.jpg") for i in (1, 2, 3))
    right = ",".join(str(STEREO_R / f"right0{i}.jpg") for i in (4, 5, 6))
    out = tmp_path / "rig.yaml"
    code, err = _run(["fit-rig", "--camera", f"left={left}", "--camera", f"right={right}",
                      "--board", "9x6", "--square", "0.025", "-o", str(out), "--quiet"], capsys)
    assert code == 3 and "'right' never sees the board" in err, err
    assert not out.exists()
