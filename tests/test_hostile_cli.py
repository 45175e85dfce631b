"""Every command on hostile input: a one-line error, a documented exit code, no output file;
and a command killed part-way (SIGTERM / SIGINT) exits 130 leaving the old output intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from calib_cli.main import main

BAD_FILES = {
    "empty": b"",
    "random": bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)),
    "text": b"hello, this is not data\n",
    "nan": b"nan nan nan\n1 2 3\n4 5 6\n",
    "binary-ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\n"
                  b"property float x\nproperty float y\nproperty float z\nend_header\n\x00\x01",
}


def _check(capsys, code, out, allowed=(2, 3, 4)):
    err = capsys.readouterr().err.strip().splitlines()
    assert code in allowed, (code, err)
    assert err and err[-1].startswith("calib: error:"), err
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_register_clouds_bad_files(tmp_path, bundled, capsys, kind):
    bad = tmp_path / f"bad.{'ply' if 'ply' in kind else 'pcd'}"
    bad.write_bytes(BAD_FILES[kind])
    out = tmp_path / "T.txt"
    good = bundled / "bunny" / "bun045.ply"
    for a, b in ((bad, good), (good, bad)):
        code = main(["register-clouds", str(a), str(b), "-o", str(out), "--quiet"])
        _check(capsys, code, out)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bundle_adjust_bad_files(tmp_path, capsys, kind):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(BAD_FILES[kind])
    out = tmp_path / "solved.txt"
    _check(capsys, main(["bundle-adjust", str(bad), "-o", str(out), "--quiet"]), out)


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_fit_intrinsics_bad_corner_files(tmp_path, capsys, kind):
    bad = tmp_path / "corners.npz"
    bad.write_bytes(BAD_FILES[kind])
    out = tmp_path / "cam.yaml"
    _check(capsys, main(["fit-intrinsics", "--corners", str(bad), "-o", str(out), "--quiet"]),
           out)


def test_bad_options_and_paths(tmp_path, bundled, capsys):
    out = tmp_path / "x.txt"
    img = str(bundled / "chessboard_left")
    cases = [
        ["fit-intrinsics", img, "--board", "1x6", "--square", "0.025", "-o", str(out)],
        ["fit-intrinsics", img, "--board", "9x6", "--square", "-1", "-o", str(out)],
        ["fit-intrinsics", img, "--board", "9x6", "--square", "0.025", "--format", "xml",
         "-o", str(out)],
        ["fit-intrinsics", img, "--board", "9x6", "--square", "0.025", "-o",
         str(tmp_path / "missing_dir" / "cam.yaml")],
        ["register-clouds", str(bundled / "bunny" / "bun045.ply"),
         str(bundled / "bunny" / "bun000.ply"), "--voxel", "-1", "-o", str(out)],
        ["bundle-adjust", str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "--linear-solver",
         "magic", "-o", str(out)],
        ["bundle-adjust", str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "--loss", "l3",
         "-o", str(out)],
    ]
    for args in cases:
        _check(capsys, main([*args, "--quiet"]), out)


def test_single_view_and_duplicate_images(tmp_path, bundled, capsys):
    img = bundled / "chessboard_left" / "left01.jpg"
    out = tmp_path / "cam.yaml"
    _check(capsys, main(["fit-intrinsics", str(img), "--board", "9x6", "--square", "0.025",
                         "-o", str(out), "--quiet"]), out)
    copies = []
    for k in range(4):  # the same view four times: the focal length is not determined
        q = tmp_path / f"copy{k}.jpg"
        q.write_bytes(img.read_bytes())
        copies.append(str(q))
    _check(capsys, main(["fit-intrinsics", *copies, "--board", "9x6", "--square", "0.025",
                         "-o", str(out), "--quiet"]), out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_killed_command_exits_130_and_keeps_old_output(tmp_path, sig):
    from calib.bundle import write_bal
    from calib_datasets.bal_synth import synthetic_bal

    start, _ = synthetic_bal(n_cameras=300, n_points=30000, seed=3)
    prob = tmp_path / "big.txt"
    write_bal(prob, start)
    out = tmp_path / "solved.txt"
    out.write_text("previous result\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "calib_cli.main", "bundle-adjust", str(prob),
                             "-o", str(out), "--max-iterations", "500"],
                            stderr=subprocess.PIPE, text=True, env=env)
    for line in proc.stderr:  # wait until the solver is iterating
        if line.startswith("iter"):
            break
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert out.read_text() == "previous result\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.txt", "solved.txt"]


@pytest.mark.parametrize("where", ["/dev/full", "dangling", "too-long"])
def test_output_that_cannot_be_written_is_exit_2(tmp_path, bundled, capsys, where):
    """Environment problems when writing are exit 2 with one line naming the file, and leave
    no temporary file (issue 15: they were internal errors, exit 1)."""
    out = {"/dev/full": "/dev/full", "dangling": str(tmp_path / "link.txt"),
           "too-long": str(tmp_path / ("n" * (os.pathconf(tmp_path, "PC_NAME_MAX") + 1)))}[where]
    if where == "dangling":
        os.symlink(tmp_path / "missing" / "x.txt", out)
    code = main(["bundle-adjust", str(bundled / "bal" / "dubrovnik-3-7-pre.txt"), "-o", out,
                 "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"calib: error: {out}: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == (["link.txt"] if where == "dangling"
                                                          else [])
