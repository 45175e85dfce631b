"""CLI hardening (issue 15): outputs never overwrite inputs or each other and are committed
together, untrustworthy registrations write nothing (exit 3 / 4), named inputs must exist,
library parameter names become flags, bundle adjustment refuses absurd values and plots."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
from bunny import pair

import calib
from calib.errors import InputError
from calib_cli import common
from calib_cli.main import main


def _run(args, capsys):
    code = main([*args, "--quiet"])
    cap = capsys.readouterr()
    return code, cap.err.strip().splitlines()


@pytest.fixture()
def clouds(tmp_path, bundled):
    src = tmp_path / "src.ply"
    shutil.copy(bundled / "bunny" / "bun045.ply", src)
    _, _, G = pair(bundled / "bunny", "bun045.ply", "bun000.ply")
    np.savetxt(tmp_path / "G.txt", G)
    return src, bundled / "bunny" / "bun000.ply", tmp_path / "G.txt"


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path, bundled, clouds, capsys):
    src, tgt, G = clouds
    before = src.read_bytes()
    out = tmp_path / "T.txt"
    reg = ["register-clouds", str(src), str(tgt), "--init", str(G)]
    for extra, flag in ((["-o", str(src)], "-o"), (["-o", str(out), "--aligned", str(src)],
                                                    "--aligned"),
                        (["-o", str(out), "--report", str(out)], "--report and -o"),
                        (["-o", str(out), "--plot", str(G)], "--plot")):
        code, err = _run(reg + extra, capsys)
        assert code == 2 and flag in err[-1], err
        assert src.read_bytes() == before and not out.exists()
    bal = tmp_path / "p.txt"
    shutil.copy(bundled / "bal" / "dubrovnik-3-7-pre.txt", bal)
    text = bal.read_text()
    for extra in (["-o", str(bal)], ["-o", str(out), "--report", str(bal)],
                  ["-o", str(out), "--plot", str(out)]):
        code, err = _run(["bundle-adjust", str(bal), *extra], capsys)
        assert code == 2 and "calib: error:" in err[-1], err
        assert bal.read_text() == text and not out.exists()


def test_write_outputs_commits_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.json"
    a.write_text("old a")
    b.write_text("old b")

    def fail(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(InputError, match="b.json: cannot write"):
        common.write_outputs([(a, lambda p: common.write_text(p, "new a")), (b, fail)])
    assert a.read_text() == "old a" and b.read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]  # no temporaries
    common.write_outputs([(a, lambda p: common.write_text(p, "new a")), (None, fail),
                          (b, lambda p: common.write_json(p, {"x": 1})),
                          ("/dev/null", lambda p: common.write_text(p, "discarded"))])
    assert a.read_text() == "new a" and json.loads(b.read_text()) == {"x": 1}


def test_failed_report_leaves_old_transform_and_report(tmp_path, clouds, capsys, monkeypatch):
    src, tgt, G = clouds
    out, rep = tmp_path / "T.txt", tmp_path / "r.json"
    out.write_text("old")
    rep.write_text("{}")

    def boom(path, data):
        raise InputError(f"{path}: cannot write (simulated)")

    import calib_cli.register_clouds as rc

    monkeypatch.setattr(rc, "write_json", boom)
    code, err = _run(["register-clouds", str(src), str(tgt), "--init", str(G), "--voxel",
                      "0.002", "-o", str(out), "--report", str(rep)], capsys)
    assert code == 2 and "simulated" in err[-1]
    assert out.read_text() == "old" and rep.read_text() == "{}"


def test_nonfinite_transform_is_exit_1_before_writing(tmp_path, clouds, capsys, monkeypatch):
    src, tgt, G = clouds
    real = calib.registration.register

    def broken(*a, **k):
        res = real(*a, **k)
        return dataclasses.replace(res, T_target_source=np.full((4, 4), np.nan))

    monkeypatch.setattr(calib.registration, "register", broken)
    out = tmp_path / "T.txt"
    code, err = _run(["register-clouds", str(src), str(tgt), "--init", str(G), "--voxel",
                      "0.002", "-o", str(out)], capsys)
    assert code == 1 and "non-finite" in err[-1] and not out.exists()


def test_untrustworthy_registrations_write_nothing(tmp_path, capsys):
    t = np.linspace(0, 1, 400)
    line = tmp_path / "line.npy"
    np.save(line, np.c_[t, 2 * t, 0 * t])
    eye = tmp_path / "eye.txt"
    np.savetxt(eye, np.eye(4))
    out, rep = tmp_path / "T.txt", tmp_path / "r.json"
    args = ["register-clouds", str(line), str(line), "--init", str(eye), "-o", str(out),
            "--report", str(rep)]
    code, err = _run(args, capsys)
    assert code == 3 and "do not determine the pose: free" in err[-1]
    assert "rotation about [0.45, 0.89, 0.00]" in err[-1]
    assert not out.exists() and not rep.exists()
    code, err = _run([*args, "--keep-unconverged"], capsys)
    assert code == 0 and out.exists()
    d = json.loads(rep.read_text())  # strict JSON: no Infinity even for a singular problem
    assert d["ok"] is False and d["degeneracy"]["singular"] is True


def test_inverted_init_exit_4_with_hint(tmp_path, clouds, capsys):
    src, tgt, G = clouds
    inv = tmp_path / "inv.txt"
    np.savetxt(inv, np.linalg.inv(np.loadtxt(G)))
    out = tmp_path / "T.txt"
    code, err = _run(["register-clouds", str(src), str(tgt), "--init", str(inv), "--voxel",
                      "0.002", "-o", str(out)], capsys)
    assert code == 4 and "may be inverted" in err[-1] and "nothing written" in err[-1]
    assert not out.exists()


def test_library_names_become_flags_and_ranges_checked(tmp_path, clouds, capsys):
    src, tgt, G = clouds
    out = tmp_path / "T.txt"
    for extra, flag in ((["--voxel", "1e-11"], "--voxel 1e-11"),
                        (["--loss-scale", "1e-300"], "--loss-scale"),
                        (["--max-distance", "1e300"], "--max-distance"),
                        (["--min-fitness", "3"], "--min-fitness")):
        code, err = _run(["register-clouds", str(src), str(tgt), "-o", str(out), *extra],
                         capsys)
        assert code == 2 and err[-1].startswith(f"calib: error: {flag}"), err
    scaled = tmp_path / "scaled.txt"
    np.savetxt(scaled, np.diag([1.05, 1.05, 1.05, 1.0]))
    code, err = _run(["register-clouds", str(src), str(tgt), "-o", str(out), "--init",
                      str(scaled)], capsys)
    assert code == 2 and "--init: not a rigid transform" in err[-1] and "0.1" in err[-1]


def test_named_inputs_must_exist_and_are_taken_literally(tmp_path, bundled, capsys):
    folder = bundled / "chessboard_left"
    code, err = _run(["fit-intrinsics", str(folder), "--board", "9x6", "--square", "0.025",
                      "--fix-k3", "true", "-o", str(tmp_path / "c.yaml")], capsys)
    assert code == 2 and "true: no such image file" in err[-1]
    odd = tmp_path / "img[1].png"
    shutil.copy(folder / "left01.jpg", odd)
    assert common.expand_inputs([str(odd)], {".png"}) == [odd]
    assert common.expand_inputs([str(folder / "left0[12].jpg")], {".jpg"}) == [
        folder / "left01.jpg", folder / "left02.jpg"]
    with pytest.raises(InputError, match="matches no file"):
        common.expand_inputs([str(tmp_path / "*.tif")], {".tif"})


def test_registration_warning_printed_once(tmp_path, clouds, capsys):
    src, tgt, G = clouds
    rounded = tmp_path / "r.txt"
    np.savetxt(rounded, np.round(np.loadtxt(G), 4), fmt="%.4f")
    png = tmp_path / "p.png"
    code = main(["register-clouds", str(src), str(tgt), "--init", str(rounded), "--voxel",
                 "0.002", "-o", str(tmp_path / "T.txt"), "--plot", str(png)])
    cap = capsys.readouterr()
    assert code == 0
    assert (cap.out + cap.err).count("from orthonormal") == 1
    assert f"plot: {png}" in cap.err and png.stat().st_size > 10000
    assert "] mm" in cap.out or "] µm" in cap.out  # pose std in a unit that fits


def test_bundle_adjust_refuses_huge_values_and_plots(tmp_path, bundled, capsys, caplog):
    bal = calib.read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    huge = tmp_path / "huge.txt"
    calib.write_bal(huge, dataclasses.replace(bal, points=np.full_like(bal.points, 1e200)))
    out = tmp_path / "o.txt"
    code, err = _run(["bundle-adjust", str(huge), "-o", str(out)], capsys)
    assert code == 2 and "points[0, 0] = 1e+200" in err[-1] and not out.exists()
    png, rep = tmp_path / "ba.png", tmp_path / "r.json"
    code, err = _run(["bundle-adjust", str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "-o",
                      str(out), "--plot", str(png), "--report", str(rep)], capsys)
    assert code == 0 and png.stat().st_size > 10000
    assert "under-determined: 38 residuals for 41 unknowns" in caplog.text
    assert "under-determined" in json.loads(rep.read_text())["warnings"][0]


def test_fit_intrinsics_camera_and_report_committed_together(tmp_path, bundled, capsys,
                                                             monkeypatch):
    import calib_cli.fit_intrinsics as fi

    cam, rep = tmp_path / "cam.yaml", tmp_path / "r.json"
    cam.write_text("old")

    def boom(path, data):
        raise InputError(f"{path}: cannot write (simulated)")

    monkeypatch.setattr(fi, "write_json", boom)
    code, err = _run(["fit-intrinsics", "--corners", str(bundled / "chessboard_left" /
                                                         "corners_9x6.npz"),
                      "-o", str(cam), "--report", str(rep)], capsys)
    assert code == 2 and "simulated" in err[-1]
    assert cam.read_text() == "old" and not rep.exists()
