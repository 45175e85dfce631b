"""Hostile files and output targets found by the infrastructure review (issue 6).

Each case names the file it exercises; all were bugs once and are fixed.
"""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from calib.errors import CalibError
from calib.io.atomic import atomic_write
from calib.io.clouds import read_cloud
from calib_cli.main import main

PCD_HEADER = ("# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
              "WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA ascii\n")
PLY_HEADER = ("ply\nformat ascii 1.0\nelement vertex {n}\nproperty float x\nproperty float y\n"
              "property float z\nend_header\n")


def _rows(k: int) -> str:
    pts = np.random.default_rng(0).uniform(-1, 1, (k, 3))
    return "".join(f"{a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in pts)


@pytest.mark.parametrize("header", [PCD_HEADER, PLY_HEADER], ids=["pcd", "ply"])
def test_complete_ascii_cloud_reads(tmp_path, header):
    p = tmp_path / ("c.pcd" if header is PCD_HEADER else "c.ply")
    p.write_text(header.format(n=50) + _rows(50))
    pts = read_cloud(p)
    assert pts.shape == (50, 3) and np.abs(pts).max() <= 1


@pytest.mark.parametrize("header", [PCD_HEADER, PLY_HEADER], ids=["pcd", "ply"])
def test_truncated_ascii_cloud_is_refused(tmp_path, header):
    p = tmp_path / ("c.pcd" if header is PCD_HEADER else "c.ply")
    p.write_text(header.format(n=5000) + _rows(50))
    with pytest.raises(CalibError):
        pts = read_cloud(p)
        print(f"read {pts.shape} points, rows 50..52: {pts[50:53]}")


def test_ascii_ply_with_absurd_count_is_refused(tmp_path):
    p = tmp_path / "c.ply"
    p.write_text(PLY_HEADER.format(n=99_999_999_999) + _rows(2))
    with pytest.raises(CalibError):
        read_cloud(p)


@pytest.mark.parametrize("header", [
    b"ply\nformat binary_little_endian 1.0\nelement vertex abc\nproperty float x\nend_header\n",
    b"ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty\nend_header\n",
    b"ply\nformat binary_little_endian 1.0\nelement\nend_header\n",
], ids=["count-not-int", "bare-property", "bare-element"])
def test_malformed_binary_ply_header(tmp_path, header):
    p = tmp_path / "c.ply"
    p.write_bytes(header + b"\x00" * 64)
    with pytest.raises(CalibError):
        read_cloud(p)


@pytest.mark.parametrize("content", [
    [1, 2, 3],
    {"image_points": "x", "object_points": [[1]], "image_size": [640]},
    {"image_points": [[[1, 2]]] * 3, "object_points": [[0, 0, 0]], "image_size": ["a", "b"]},
], ids=["top-level-list", "string-points", "string-size"])
def test_corners_json_of_the_wrong_shape(tmp_path, capsys, content):
    p = tmp_path / "corners.json"
    p.write_text(json.dumps(content))
    out = tmp_path / "cam.yaml"
    code = main(["fit-intrinsics", "--corners", str(p), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().startswith("calib: error:") and "internal error" not in err
    assert not out.exists()


# --- output targets -------------------------------------------------------------------------

def test_atomic_write_keeps_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.txt", "x")
        assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o644
        p = tmp_path / "old.txt"
        p.write_text("a")
        os.chmod(p, 0o640)
        atomic_write(p, "b")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    finally:
        os.umask(old)


def test_atomic_write_through_symlink(tmp_path):
    (tmp_path / "real.txt").write_text("old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    atomic_write(tmp_path / "link.txt", "new")
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "new"


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_atomic_write_to_a_device_keeps_the_device(tmp_path):
    dev = tmp_path / "null"
    os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null
    atomic_write(dev, "data")
    assert stat.S_ISCHR(os.stat(dev).st_mode)


def test_every_sources_md_lists_exactly_what_is_shipped():
    """datasets/*/SOURCES.md name in their "Shipped here:" paragraph every file of their
    folder and nothing else (issue 15: they listed files that are not shipped)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "datasets"
    folders = [d for d in root.iterdir() if (d / "SOURCES.md").is_file()]
    assert len(folders) >= 3
    for d in folders:
        text = (d / "SOURCES.md").read_text()
        para = text.split("Shipped here:", 1)[1].split("\n\n", 1)[0]
        listed = set(re.findall(r"`([^`]+)`", para)) | {"SOURCES.md"}
        shipped = {f.name for f in d.iterdir() if f.is_file()}
        assert listed == shipped, (d.name, listed ^ shipped)
