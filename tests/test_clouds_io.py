"""Cloud files: every format reads the same points; bad files give InputError naming them."""

from __future__ import annotations

import json

import numpy as np
import open3d as o3d
import pytest

from calib.errors import InputError
from calib.io.clouds import read_cloud, read_transform, write_ply


@pytest.fixture()
def pts():
    return np.random.default_rng(0).normal(size=(500, 3))


@pytest.mark.parametrize("ext", ["ply", "pcd", "xyz", "pts"])
def test_formats_roundtrip(tmp_path, pts, ext):
    path = tmp_path / f"cloud.{ext}"
    o3d.io.write_point_cloud(str(path), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts)),
                             write_ascii=True)
    np.testing.assert_allclose(read_cloud(path), pts, atol=1e-5)


def test_npy_and_wrong_extension(tmp_path, pts):
    np.save(tmp_path / "c.npy", pts)
    np.testing.assert_array_equal(read_cloud(tmp_path / "c.npy"), pts)
    (tmp_path / "c.npy").rename(tmp_path / "c.ply")  # content decides, not the extension
    np.testing.assert_array_equal(read_cloud(tmp_path / "c.ply"), pts)


def test_write_ply_atomic_roundtrip(tmp_path, pts):
    write_ply(tmp_path / "out.ply", pts)
    np.testing.assert_allclose(read_cloud(tmp_path / "out.ply"), pts, atol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["out.ply"]


def test_nan_points_dropped_or_refused(tmp_path, pts):
    a = pts.copy()
    a[:10] = np.nan
    np.save(tmp_path / "n.npy", a)
    assert len(read_cloud(tmp_path / "n.npy")) == len(pts) - 10
    with pytest.raises(InputError, match="NaN"):
        read_cloud(tmp_path / "n.npy", drop_non_finite=False)
    np.save(tmp_path / "all.npy", np.full((5, 3), np.nan))
    with pytest.raises(InputError, match="n.npy|all.npy"):
        read_cloud(tmp_path / "all.npy")


@pytest.mark.parametrize(("content", "match"), [
    (b"", "empty"),
    (b"ply\nformat ascii 1.0\nelement vertex 10\nproperty float x\n", "end_header"),
    (b"\x00\x01\x02binary junk", "binary"),
    (b"1 2\n3 4\n", "XYZ"),
    (b"hello world foo\n", "XYZ"),
])
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.ply"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match):
        read_cloud(p)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_cloud(tmp_path / "nope.pcd")


def test_transform_files(tmp_path):
    T = np.eye(4)
    T[:3, 3] = [1, 2, 3]
    np.savetxt(tmp_path / "t.txt", T)
    np.testing.assert_array_equal(read_transform(tmp_path / "t.txt"), T)
    (tmp_path / "t.json").write_text(json.dumps({"T_target_source": T.tolist()}))
    np.testing.assert_array_equal(read_transform(tmp_path / "t.json"), T)
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(InputError, match="4x4"):
        read_transform(tmp_path / "bad.txt")
