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
                                                       "histogram.png", "per_view_rms.png",
                                                       "projection_uncertainty.png",
                                                       "residuals.png"]


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
    # one column too few: OpenCV finds an 8x6 sub-grid in 12 of the 13 images
    code, msg = _run_bad(tmp_path, [str(bundled / "chessboard_left"), "--board", "8x6",
                                    "--square", "0.025"], capsys)
    assert code == 2 and "--board 8x6: the board has more inner corners" in msg
    assert "in 12 of 12 images" in msg
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
    assert code == 2 and "NaN" in msg and str(tmp_path / "nan.npz") in msg  # names the file
    code, msg = _run_bad(tmp_path, [str(bundled / "chessboard_left"), "--board", "9x6"], capsys)
    assert code == 2 and "--square" in msg


def _images_and_junk(tmp_path, bundled, n: int) -> tuple[list[str], object]:
    junk = tmp_path / "broken.jpg"
    junk.write_bytes(b"not a jpeg")
    imgs = sorted((bundled / "chessboard_left").glob("*.jpg"))[:n]
    return [*map(str, imgs), str(junk)], junk


def test_unreadable_image_is_listed_and_skipped(tmp_path, bundled, capsys):
    files, _ = _images_and_junk(tmp_path, bundled, 4)
    out = tmp_path / "cam.yaml"
    code = main(["fit-intrinsics", *files, "--board", "9x6", "--square", "0.025", "-o",
                 str(out)])
    err = capsys.readouterr().err
    assert code == 0 and out.exists()
    assert "skipped" in err and "broken.jpg" in err and "not a readable image" in err


# ---- review findings (2026-12-01): each reproduced first, then fixed -----------------------

def _corners_file(tmp_path, shared_datasets, noise: float = 0.0, name: str = "c.npz"):
    d = np.load(shared_datasets / "opencv_stereo_chessboard_left" / "corners_9x6.npz")
    ip = d["image_points"].astype(float)
    ip += np.random.default_rng(0).normal(0, noise, ip.shape)
    path = tmp_path / name
    np.savez(path, image_points=ip, object_points=d["object_points"],
             image_size=d["image_size"])
    return path


def test_tukey_loss_starts_from_least_squares(tmp_path, shared_datasets, bundled, capsys):
    """A redescending loss from the rough closed-form start ignored whole views (exit 3,
    'views do not determine...'). Now least squares first, then the loss: on OpenCV's corners
    (whose left02 corners are off by about a pixel) Tukey down-weights left02 and lands next
    to the least-squares fit of calib's own sub-pixel corners, the independent reference."""
    from calib.intrinsics import Chessboard, detect_images, fit_intrinsics

    b = Chessboard(9, 6, 0.025)
    dets = detect_images(sorted((bundled / "chessboard_left").glob("*.jpg")), b)
    ref = fit_intrinsics(b.object_points(), [d.corners for d in dets], dets[0].image_size)
    c = _corners_file(tmp_path, shared_datasets)
    rep = tmp_path / "r.json"
    for scale in ("0.5", "1", "2"):
        assert main(["fit-intrinsics", "--corners", str(c), "-o", str(tmp_path / "t.yaml"),
                     "--report", str(rep), "--loss", "tukey", "--loss-scale", scale,
                     "--quiet"]) == 0
        r = json.loads(rep.read_text())
        assert r["verdict"] != "FAIL"
        worst = max(r["per_view"], key=lambda v: v["rms_px"])
        assert worst["image"] == "view1"  # left02: its off corners get little or no weight
        # least squares on OpenCV's corners: fx 536.07, 2.6 px from the reference
        assert abs(r["K"][0][0] - ref.camera.params[0]) < 0.5
        assert abs(r["K"][1][1] - ref.camera.params[1]) < 0.5


def test_detector_and_option_values_checked_before_any_work(tmp_path, bundled, capsys):
    folder = str(bundled / "chessboard_left")
    base = [folder, "--board", "9x6", "--square", "0.025"]
    for extra, text in ((["--detector", "foo"], "--detector"), (["--timeout", "0"], "--timeout"),
                        (["--workers", "-3"], "--workers"), (["--loss", "bogus"], "--loss"),
                        (["--loss-scale", "0"], "--loss-scale")):
        code, msg = _run_bad(tmp_path, base + extra, capsys)
        assert code == 2 and text in msg and "Traceback" not in msg
    code, msg = _run_bad(tmp_path, [folder, "--board", "9x6", "--square", "0"], capsys)
    assert code == 2 and "positive" in msg


def test_tiny_image_is_a_listed_skip_not_a_timeout(tmp_path, bundled, capsys):
    imgs = sorted((bundled / "chessboard_left").glob("*.jpg"))[:4]
    cv2.imwrite(str(tmp_path / "tiny.png"), np.full((5, 5), 128, np.uint8))
    code = main(["fit-intrinsics", *map(str, imgs), str(tmp_path / "tiny.png"), "--board", "9x6",
                 "--square", "0.025", "-o", str(tmp_path / "c.yaml"), "--timeout", "20"])
    err = capsys.readouterr().err
    assert code == 0
    assert "tiny.png" in err and "too small" in err and "timed out" not in err


def test_plot_path_problems_fail_before_writing_anything(tmp_path, shared_datasets, capsys):
    c = _corners_file(tmp_path, shared_datasets)
    keep_yaml, keep_json, blocker = tmp_path / "k.yaml", tmp_path / "k.json", tmp_path / "pf"
    keep_yaml.write_text("prev")
    keep_json.write_text("prev")
    blocker.write_text("x")
    code = main(["fit-intrinsics", "--corners", str(c), "-o", str(keep_yaml), "--report",
                 str(keep_json), "--plot", str(blocker), "--quiet"])
    assert code == 2
    assert keep_yaml.read_text() == "prev" and keep_json.read_text() == "prev"
    assert "--plot" in capsys.readouterr().err
    assert not list(tmp_path.glob(".calib-plots-*"))


def test_fail_verdict_is_shown_when_quiet_and_strict_writes_nothing(tmp_path, shared_datasets,
                                                                    capsys):
    c = _corners_file(tmp_path, shared_datasets, noise=3.0)  # RMS > 2 px: FAIL
    out, rep = tmp_path / "n.yaml", tmp_path / "n.json"
    assert main(["fit-intrinsics", "--corners", str(c), "-o", str(out), "-q"]) == 0
    assert "verdict FAIL" in capsys.readouterr().err and out.exists()
    out.unlink()
    code = main(["fit-intrinsics", "--corners", str(c), "-o", str(out), "--report", str(rep),
                 "--plot", str(tmp_path / "p"), "--strict", "-q"])
    assert code == 3
    assert not out.exists() and not rep.exists() and not (tmp_path / "p").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"calib: error: {c}: verdict FAIL")


def test_outputs_never_overwrite_each_other_or_inputs(tmp_path, bundled, capsys):
    imgs = sorted((bundled / "chessboard_left").glob("*.jpg"))[:4]
    copies = []
    for p in imgs:
        copies.append(tmp_path / p.name)
        copies[-1].write_bytes(p.read_bytes())
    before = copies[0].read_bytes()
    code = main(["fit-intrinsics", *map(str, copies), "--board", "9x6", "--square", "0.025",
                 "-o", str(copies[0]), "-q"])
    assert code == 2 and copies[0].read_bytes() == before
    assert "overwrite an input" in capsys.readouterr().err
    same = tmp_path / "same.out"
    code = main(["fit-intrinsics", *map(str, copies), "--board", "9x6", "--square", "0.025",
                 "-o", str(same), "--report", str(same), "-q"])
    assert code == 2 and not same.exists()


def test_corners_file_board_must_match_board_option(tmp_path, shared_datasets, capsys):
    c = shared_datasets / "opencv_stereo_chessboard_left" / "corners_9x6.json"
    code, msg = _run_bad(tmp_path, ["--corners", str(c), "--board", "8x6", "--square", "0.05"],
                         capsys)
    assert code == 2 and "differs from --board 8x6" in msg


def test_report_records_inputs_options_and_fixed_parameters(tmp_path, bundled, capsys):
    files, junk = _images_and_junk(tmp_path, bundled, 5)
    rep = tmp_path / "r.json"
    assert main(["fit-intrinsics", *files, "--board", "9x6", "--square", "0.025", "-o",
                 str(tmp_path / "c.yaml"), "--report", str(rep), "--fix-k3", "--zero-tangent",
                 "-q"]) == 0
    r = json.loads(rep.read_text())
    assert r["inputs"]["board"] == "9x6" and r["inputs"]["square_m"] == 0.025
    assert r["inputs"]["detector"] == "classic"
    assert [s["image"] for s in r["inputs"]["skipped"]] == [str(junk)]
    assert "not a readable image" in r["inputs"]["skipped"][0]["reason"]
    assert r["options"]["fix_k3"] is True and r["options"]["zero_tangent"] is True
    assert sorted(r["fixed"]) == ["k3", "p1", "p2"]
    assert r["std"]["k3"] is None and r["std"]["fx"] > 0
    assert r["dist"][4] == 0.0 and r["dist"][2] == 0.0


def test_plots_never_replace_inputs_or_folders(tmp_path, bundled, capsys):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((bundled / "chessboard_left").glob("*.jpg"))[:5]:
        (imgs / p.name).write_bytes(p.read_bytes())
    cv2.imwrite(str(imgs / "coverage.png"), np.full((60, 80), 200, np.uint8))  # an input
    before = (imgs / "coverage.png").read_bytes()
    out = tmp_path / "c.yaml"
    code = main(["fit-intrinsics", str(imgs), "--board", "9x6", "--square", "0.025", "-o",
                 str(out), "--plot", str(imgs), "-q"])
    assert code == 2 and (imgs / "coverage.png").read_bytes() == before and not out.exists()
    assert "would overwrite an input" in capsys.readouterr().err
    plots = tmp_path / "plots"
    (plots / "coverage.png").mkdir(parents=True)  # a folder where a plot goes
    out.write_text("prev")
    code = main(["fit-intrinsics", str(imgs / "left01.jpg"), str(imgs / "left02.jpg"),
                 str(imgs / "left03.jpg"), str(imgs / "left04.jpg"), "--board", "9x6",
                 "--square", "0.025", "-o", str(out), "--plot", str(plots), "-q"])
    assert code == 2 and out.read_text() == "prev"
    assert "a folder is in the way" in capsys.readouterr().err


def test_uneven_grids_from_a_wrong_board_are_skipped(tmp_path, bundled, capsys):
    """The SB detector asked for 6x5 on the 9x6 board returns corners that skip columns in
    some images: those are skipped as uneven grids, never fitted."""
    code = main(["fit-intrinsics", str(bundled / "chessboard_left"), "--board", "6x5",
                 "--square", "0.025", "--detector", "sb", "-o", str(tmp_path / "c.yaml"), "-q"])
    err = capsys.readouterr().err
    assert code != 0 and not (tmp_path / "c.yaml").exists()
    assert "do not form an even 6x5 grid" in err


def test_loss_names_are_case_insensitive(tmp_path, shared_datasets, capsys):
    c = _corners_file(tmp_path, shared_datasets)
    assert main(["fit-intrinsics", "--corners", str(c), "-o", str(tmp_path / "h.yaml"),
                 "--loss", "Huber", "-q"]) == 0
