"""``calib fit-rig`` from pre-detected corners: NPZ/JSON corner files (the same corners as
the image path, same answer), yac's AprilGrid CSVs (synthetic with ground truth, and
EuRoC's cam_april against EuRoC's published T_cam0_cam1), and bad corner files."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml

from calib.camera import get_model
from calib.lie import se3, so3
from calib.targets import detect_images, select_views
from calib.targets.aprilgrid import AprilGrid
from calib.targets.base import Observation
from calib.targets.chessboard import Chessboard
from calib_cli.main import main
from calib_datasets.board_render import render
from calib_datasets.rig_synth import make_rig

HEADER = "#ts,tag_rows,tag_cols,tag_size,tag_spacing,kp_x,kp_y,p_x,p_y,p_z,tag_id,corner_idx"


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


def _err_deg_m(T, T_true):
    D = T @ se3.inverse(T_true)
    return np.degrees(np.linalg.norm(so3.log(D[:3, :3]))), np.linalg.norm(D[:3, 3])


@pytest.fixture(scope="module")
def stereo(tmp_path_factory):
    """Rendered stereo images (5 shared frames, one left-only frame 99), and the corners
    calib detects in them written as one NPZ (left) and one JSON (right) file."""
    root = tmp_path_factory.mktemp("rigc")
    s = make_rig(2, 0, seed=3, yaw_deg=5, pair_frames=5)
    rng = np.random.default_rng(1)
    poses = [(f, T) for f, T in enumerate(s.T_rig_board)] + [(99, s.T_rig_board[0])]
    for k, side in enumerate(("left", "right")):
        (root / side).mkdir()
        for f, T_rb in poses if k == 0 else poses[:-1]:
            img = render(s.params[f"cam{k}"], s.T_cam_rig[k] @ T_rb, 9, 6, 0.04, (640, 480),
                         supersample=1, noise=1.0, rng=rng)
            cv2.imwrite(str(root / side / f"{side}{f:02d}.png"), img)
    board = Chessboard(9, 6, 0.04)
    for side, ext in (("left", "npz"), ("right", "json")):
        paths = sorted((root / side).glob("*.png"))
        used = select_views(detect_images(paths, board), board).used
        assert len(used) == len(paths)
        d = {"names": [o.view.rsplit("/", 1)[-1] for o in used],
             "image_points": np.stack([o.uv for o in used]),
             "object_points": board.points(), "image_size": [640, 480]}
        if ext == "npz":
            np.savez(root / f"{side}.npz", **d)
        else:
            (root / f"{side}.json").write_text(json.dumps(
                {k: np.asarray(v).tolist() for k, v in d.items()}))
    return root, s


def test_corner_files_give_the_image_path_answer(stereo, tmp_path, capsys):
    """Same corners, same fit: the extrinsic, its σ and the intrinsics from NPZ/JSON corner
    files equal the image path's (1e-9), and cover the truth (3σ); frames pair by the view
    names in the files (left99 has no partner in both runs)."""
    root, s = stereo
    reps = {}
    for how, cams in (("images", [f"left={root / 'left'}", f"right={root / 'right'}"]),
                      ("files", [f"left={root / 'left.npz'}", f"right={root / 'right.json'}"]),
                      ("mixed", [f"left={root / 'left'}", f"right={root / 'right.json'}"])):
        rep = tmp_path / f"{how}.json"
        argv = ["fit-rig", "--camera", cams[0], "--camera", cams[1], "-o",
                str(tmp_path / f"{how}.yaml"), "--report", str(rep), "--quiet"]
        if how != "files":  # the files carry the board; images need it
            argv += ["--board", "9x6", "--square", "0.04"]
        code, err = _run(argv, capsys)
        assert code == 0, err
        assert "1 view(s) without a partner" in err and "left99" in err
        reps[how] = json.loads(rep.read_text())
    ref = reps["images"]["extrinsics"]["right"]
    T_ref = np.array(ref["T_cam_ref"])
    rot, trans = _err_deg_m(T_ref, s.T_cam_rig[1])
    assert rot < 3 * ref["std_rot_deg"] and trans < 3 * ref["std_trans_m"]
    for how in ("files", "mixed"):
        e = reps[how]["extrinsics"]["right"]
        np.testing.assert_allclose(e["T_cam_ref"], T_ref, rtol=0, atol=1e-9)
        assert e["std_rot_deg"] == pytest.approx(ref["std_rot_deg"], rel=1e-6)
        assert e["std_trans_m"] == pytest.approx(ref["std_trans_m"], rel=1e-6)
        for cam in ("left", "right"):
            np.testing.assert_allclose(reps[how]["cameras"][cam]["K"],
                                       reps["images"]["cameras"][cam]["K"], rtol=1e-9)
    assert reps["files"]["inputs"]["sources"] == {"left": "corners", "right": "corners"}


def _write_yac(folder, stamp, grid, tags, uv_by_id):
    """One yac AprilGrid CSV: rows per corner of ``tags`` (Kalibr corner order)."""
    pts = grid.points()
    rows = [HEADER]
    for t in tags:
        for c, pid in enumerate(grid.point_ids(np.array([t]))[0]):
            x, y, z = pts[pid]
            u, v = uv_by_id[pid]
            rows.append(f"{stamp},{grid.tag_rows},{grid.tag_cols},{grid.tag_size:f},"
                        f"{grid.tag_spacing:f},{u:.10f},{v:.10f},{x:f},{y:f},{z:f},{t},{c}")
    (folder / f"{stamp}.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def april_csv(tmp_path_factory):
    """Synthetic stereo AprilGrid corners (known rig, 0.2 px noise, about 1 tag in 5 missing
    per view) as yac CSVs named by timestamp, plus a frame with no tag seen (header only)."""
    root = tmp_path_factory.mktemp("yac")
    grid = AprilGrid(6, 4, 0.03, 0.3)
    s = make_rig(2, 0, seed=4, yaw_deg=5, pair_frames=12)
    lens, rng = get_model("pinhole"), np.random.default_rng(2)
    pts = grid.points()
    truth = {}
    for k, cam in enumerate(("cam0", "cam1")):
        (root / cam).mkdir()
        for f, T_rb in enumerate(s.T_rig_board):
            uv, ok = lens.project(se3.act(s.T_cam_rig[k] @ T_rb, pts), s.params[f"cam{k}"])
            assert ok.all()
            uv = uv + rng.normal(0, 0.2, uv.shape)
            tags = np.flatnonzero(rng.random(grid.num_tags) > 0.2)
            stamp = 1403709385487836928 + 50_000_000 * f
            _write_yac(root / cam, stamp, grid, tags, uv)
            truth.setdefault(cam, {})[stamp] = (grid.point_ids(tags).ravel(),
                                                uv[grid.point_ids(tags).ravel()])
    (root / "cam1" / "1403709399999999999.csv").write_text(HEADER + "\n")
    return root, s, grid, truth


def test_aprilgrid_csvs_synthetic_truth_and_api(april_csv, tmp_path, capsys):
    """yac CSVs through the CLI: the grid from the files, frames paired by timestamp, the
    header-only frame skipped and named; the extrinsic within 3σ of the truth and equal to
    calib.fit_rig on the same corners (1e-9)."""
    from calib.rig import fit_rig

    root, s, grid, truth = april_csv
    rep = tmp_path / "rig.json"
    code, err = _run(["fit-rig", "--camera", f"cam0={root / 'cam0'}", "--camera",
                      f"cam1={root / 'cam1' / '*.csv'}", "--image-size", "640x480", "-o",
                      str(tmp_path / "rig.yaml"), "--report", str(rep), "--quiet"], capsys)
    assert code == 0, err
    assert "skipped cam1" in err and "1403709399999999999.csv" in err and "no AprilGrid" in err
    d = json.loads(rep.read_text())
    e = d["extrinsics"]["cam1"]
    rot, trans = _err_deg_m(np.array(e["T_cam_ref"]), s.T_cam_rig[1])
    assert rot < 3 * e["std_rot_deg"] and trans < 3 * e["std_trans_m"]
    assert d["inputs"]["sources"] == {"cam0": "csv", "cam1": "csv"}
    api = fit_rig({c: [Observation(f"{c}_{t}", (640, 480), *v) for t, v in views.items()]
                   for c, views in truth.items()}, grid.points())
    np.testing.assert_allclose(e["T_cam_ref"], api.T_cam_ref[1], rtol=0, atol=1e-9)
    assert d["rms_px"] == pytest.approx(api.rms_px, rel=1e-9)


def _euroc_api(root):
    """calib.fit_rig on the cam_april CSVs parsed here on their own (point id = 4 tag +
    corner, board points from the rows), as tests/test_rig_real.py does."""
    from calib.rig import fit_rig

    board, cams = np.zeros((144, 3)), {}
    for cam in ("cam0", "cam1"):
        cams[cam] = {}
        for f in sorted((root / cam).glob("*.csv")):
            a = np.loadtxt(f, delimiter=",", comments="#", ndmin=2)
            ids = (4 * a[:, 10] + a[:, 11]).astype(int)
            board[ids] = a[:, 7:10]
            cams[cam][int(f.stem)] = (ids, a[:, 5:7])
    return fit_rig(cams, board, {"cam0": (752, 480), "cam1": (752, 480)})


def test_euroc_cam_april_through_the_cli(shared_datasets, tmp_path, capsys):
    """EuRoC's cam_april corners (yac CSVs) from scratch through the CLI: the same answer
    as the Python API on the same corners, hence as close to EuRoC's published T_cam0_cam1
    (read from the dataset's imu_april/config.yaml) as the API test's bounds (0.2 deg,
    5 mm; measured 0.063 deg, 2.75 mm)."""
    euroc = shared_datasets / "yac_aprilgrid" / "euroc"
    cfg = yaml.safe_load((euroc / "imu_april" / "config.yaml").read_text())
    T_cam0_cam1 = np.array(cfg["T_cam0_cam1"]["data"], float).reshape(4, 4)
    rep = tmp_path / "rig.json"
    code, err = _run(["fit-rig", "--camera", f"cam0={euroc / 'cam_april' / 'cam0'}",
                      "--camera", f"cam1={euroc / 'cam_april' / 'cam1'}", "--image-size",
                      "752x480", "-o", str(tmp_path / "rig.yaml"), "--report", str(rep),
                      "--quiet"], capsys)
    assert code == 0, err
    d = json.loads(rep.read_text())
    T = np.array(d["extrinsics"]["cam1"]["T_cam_ref"])
    api = _euroc_api(euroc / "cam_april")
    np.testing.assert_allclose(T, api.T_cam_ref[1], rtol=0, atol=1e-7)
    assert d["rms_px"] == pytest.approx(api.rms_px, rel=1e-6) and d["rms_px"] < 0.15
    rot, trans = _err_deg_m(T, se3.inverse(T_cam0_cam1))  # T_cam1_cam0 = inv(T_cam0_cam1)
    assert rot < 0.2 and trans < 0.005


# ---- bad corner files: one line naming the file, exit 2, nothing written -----------------

def _npz(path, **over):
    b = Chessboard(9, 6, 0.04)
    rng = np.random.default_rng(0)
    d = {"names": ["a01.png", "a02.png", "a03.png"],
         "image_points": 100 + 300 * rng.random((3, 54, 2)),
         "object_points": b.points(), "image_size": [640, 480], **over}
    np.savez(path, **{k: v for k, v in d.items() if v is not None})
    return path


def _bad_files(tmp_path, case):
    """``(camera specs, extra argv, the file the message must name)``."""
    ok = _npz(tmp_path / "ok.npz")
    if case == "missing":
        bad = tmp_path / "nope.npz"
    elif case == "empty":
        bad = tmp_path / "empty.npz"
        bad.write_bytes(b"")
    elif case == "no views":
        bad = _npz(tmp_path / "none.npz", names=np.zeros(0, str),
                   image_points=np.zeros((0, 54, 2)))
    elif case == "nan":
        ip = 100 + 300 * np.random.default_rng(1).random((3, 54, 2))
        ip[1, 7, 0] = np.nan
        bad = _npz(tmp_path / "nan.npz", image_points=ip)
    elif case == "other board":  # 8x6 corners against the other file's 9x6
        bad = _npz(tmp_path / "b86.npz", image_points=np.zeros((3, 48, 2)) + 100,
                   object_points=Chessboard(8, 6, 0.04).points())
    elif case == "no frame number":
        bad = _npz(tmp_path / "names.npz", names=["a", "b", "c"])
    elif case == "csv nan":
        bad = tmp_path / "1403709385487836928.csv"
        bad.write_text(HEADER + "\n1,6,6,0.088,0.3,nan,57.4,0,0.1144,0,6,0\n")
    elif case == "csv board point":  # tag 6 corner 0 is at (0, 0.1144), not (0.5, 0.1144)
        bad = tmp_path / "1403709385487836928.csv"
        bad.write_text(HEADER + "\n1,6,6,0.088,0.3,274.6,57.4,0.5,0.1144,0,6,0\n")
    else:  # "csv header"
        bad = tmp_path / "1403709385487836928.csv"
        bad.write_text("ts,x,y\n1,2,3\n")
    extra = ["--image-size", "640x480"] if case.startswith("csv") else []
    return [f"a={ok}", f"b={bad}"], extra, bad


@pytest.mark.parametrize("case", ["missing", "empty", "no views", "nan", "other board",
                                  "no frame number", "csv nan", "csv board point",
                                  "csv header"])
def test_bad_corner_files(tmp_path, capsys, case):
    cams, extra, bad = _bad_files(tmp_path, case)
    out, rep = tmp_path / "rig.yaml", tmp_path / "rig.json"
    code, err = _run(["fit-rig", "--camera", cams[0], "--camera", cams[1], *extra, "-o",
                      str(out), "--report", str(rep), "--quiet"], capsys)
    assert code == 2 and str(bad) in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not rep.exists()


@pytest.mark.parametrize("argv,words", [
    (["--board", "8x6", "--square", "0.04"], "differs from --board 8x6"),  # file vs option
    (["--image-size", "b=640x480"], "NAME one of a"),  # no camera b
    (["--image-size", "a=641x480"], "corners file says 640x480"),
])
def test_corner_file_against_options(tmp_path, capsys, argv, words):
    ok = _npz(tmp_path / "ok.npz")
    out = tmp_path / "rig.yaml"
    code, err = _run(["fit-rig", "--camera", f"a={ok}", *argv, "-o", str(out), "--quiet"],
                     capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_csv_camera_needs_an_image_size_and_one_kind_of_input(tmp_path, capsys):
    csv = tmp_path / "1403709385487836928.csv"
    csv.write_text(HEADER + "\n1,6,6,0.088,0.3,274.6,57.4,0,0.1144,0,6,0\n")
    npz = _npz(tmp_path / "ok.npz")
    out = tmp_path / "rig.yaml"
    code, err = _run(["fit-rig", "--camera", f"a={csv}", "-o", str(out)], capsys)
    assert code == 2 and "--image-size a=WIDTHxHEIGHT" in err, err
    code, err = _run(["fit-rig", "--camera", f"a={csv},{npz}", "-o", str(out)], capsys)
    assert code == 2 and "not a mix" in err, err
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a01.png").write_bytes(b"not read")
    code, err = _run(["fit-rig", "--camera", f"a={tmp_path / 'img'}", "--image-size",
                      "a=640x480", "--board", "9x6", "--square", "0.04", "-o", str(out)], capsys)
    assert code == 2 and "given as images" in err, err
    assert not out.exists()


def test_aprilgrid_csvs_against_target_yaml(april_csv, tmp_path, capsys):
    """--target with the CSVs: the same grid is accepted (same answer as without it),
    another tag size is an error naming the first CSV, exit 2, nothing written."""
    root, _, grid, _ = april_csv
    outs = []
    for size in (grid.tag_size, 0.04):
        t = tmp_path / f"t{size}.yaml"
        t.write_text(yaml.safe_dump({"target_type": "aprilgrid", "tagCols": grid.tag_cols,
                                     "tagRows": grid.tag_rows, "tagSize": size,
                                     "tagSpacing": grid.tag_spacing}))
        rep = tmp_path / f"r{size}.json"
        code, err = _run(["fit-rig", "--camera", f"cam0={root / 'cam0'}", "--camera",
                          f"cam1={root / 'cam1'}", "--image-size", "640x480", "--target",
                          str(t), "-o", str(tmp_path / f"r{size}.yaml"), "--report", str(rep),
                          "--quiet"], capsys)
        outs.append((code, err, rep))
    assert outs[0][0] == 0, outs[0][1]
    code, err, rep = outs[1]
    first = sorted((root / "cam0").glob("*.csv"))[0]
    assert code == 2 and f"{first}: the file's board" in err and f"--target {tmp_path}" in err
    assert len(err.strip().splitlines()) == 1 and not rep.exists()


_CELLS = ["1", "6", "0", "-3", "0.088", "0.3", "1e308", "inf", "nan", "x", "", "1e9", "0.5",
          "2.5", "274.6"]


def test_aprilgrid_csv_reader_hostile_rows(tmp_path):
    """A valid header then random rows of plausible and hostile cells (seeded): the reader
    returns a grid with ids on it and finite pixels, or one InputError line naming the file,
    never another exception (huge grids are refused by the tag family's size)."""
    from calib.errors import InputError
    from calib.io.corners import read_aprilgrid_csv

    rng = np.random.default_rng(0)
    p = tmp_path / "1.csv"
    good = "1,6,6,0.088,0.3,274.6,57.4,0,0.1144,0,6,0"
    answers = set()
    for _ in range(300):
        rows = [good if rng.random() < 0.5 else
                ",".join(rng.choice(_CELLS, int(rng.integers(10, 14)))) for _ in range(3)]
        p.write_text(HEADER + "\n" + "\n".join(rows) + "\n")
        try:
            grid, ids, uv = read_aprilgrid_csv(p, AprilGrid)
        except InputError as exc:
            assert str(p) in str(exc) and "\n" not in str(exc)
            answers.add("error")
            continue
        assert np.isfinite(uv).all() and ids.min() >= 0 and ids.max() < len(grid.points())
        answers.add("read")
    assert answers == {"read", "error"}
