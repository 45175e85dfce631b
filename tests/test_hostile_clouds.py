"""Cloud files that were misread (issue 15): each one is built here from known points and
must read back exactly those points, or be refused with an InputError naming the file."""

from __future__ import annotations

import struct

import numpy as np
import open3d as o3d
import pytest

from calib.errors import InputError
from calib.io.clouds import read_cloud

PTS = np.random.default_rng(7).normal(size=(200, 3))


def _ply_binary(path, props, pts, endian="<", faces=None, comments=()):
    """A binary PLY with vertex properties ``props`` [(name, ply type, numpy code)] whose
    x, y, z columns hold ``pts`` (other columns get the row number)."""
    fmt = "binary_little_endian" if endian == "<" else "binary_big_endian"
    n = len(pts[0])
    head = ["ply", f"format {fmt} 1.0", *[f"comment {c}" for c in comments],
            f"element vertex {n}", *[f"property {t} {k}" for k, t, _ in props]]
    if faces is not None:
        head += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    dt = np.dtype([(n, endian + c) for n, _, c in props])
    rows = np.zeros(n, dt)
    for k, _, _ in props:
        rows[k] = pts["xyz".index(k)] if k in "xyz" else np.arange(n)
    body = rows.tobytes()
    if faces is not None:
        for f in faces:
            body += struct.pack(endian + "B3i", 3, *f)
    path.write_bytes(("\n".join(head + ["end_header"]) + "\n").encode() + body)
    return path


def _columns(pts):
    return [pts[:, 0], pts[:, 1], pts[:, 2]]


@pytest.mark.parametrize(("order", "ptype", "code", "endian"), [
    ("zyx", "float", "f4", "<"), ("zyx", "double", "f8", ">"), ("yxz", "double", "f8", "<"),
    ("xyz", "float", "f4", ">"),
])
def test_binary_ply_any_property_order_type_and_endian(tmp_path, order, ptype, code, endian):
    props = [("nx", "float", "f4")] + [(c, ptype, code) for c in order] + \
        [("red", "uchar", "u1")]
    p = _ply_binary(tmp_path / "c.ply", props, _columns(PTS), endian)
    want = PTS.astype(np.float32).astype(float) if code == "f4" else PTS
    np.testing.assert_array_equal(read_cloud(p), want)


def test_binary_ply_mesh_vertices_then_faces(tmp_path):
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=0.5, resolution=6)
    p = tmp_path / "mesh.ply"
    assert o3d.io.write_triangle_mesh(str(p), mesh, write_ascii=False)
    np.testing.assert_allclose(read_cloud(p), np.asarray(mesh.vertices), atol=1e-6)
    props = [(c, "double", "f8") for c in "zxy"]
    q = _ply_binary(tmp_path / "m2.ply", props, _columns(PTS), ">", faces=[(0, 1, 2)] * 5)
    np.testing.assert_array_equal(read_cloud(q), PTS)
    data = q.read_bytes()
    q.write_bytes(data[:-30])  # faces cut short: the vertices before them are still whole
    np.testing.assert_array_equal(read_cloud(q), PTS)
    q.write_bytes(data[:-70])  # into the vertices (65 bytes of faces)
    with pytest.raises(InputError, match="m2.ply: truncated"):
        read_cloud(q)


def test_binary_ply_list_in_vertex_is_refused(tmp_path):
    p = tmp_path / "l.ply"
    p.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty list "
                  b"uchar float v\nproperty float x\nproperty float y\nproperty float z\n"
                  b"end_header\n" + struct.pack("<B4f", 1, 9, 1, 2, 3))
    with pytest.raises(InputError, match="l.ply: binary PLY with a list property"):
        read_cloud(p)


def test_ascii_ply_with_list_property_in_vertices(tmp_path):
    rows = "".join(f"{x!r} {y!r} {z!r} {k % 3} " + " ".join(["7"] * (k % 3)) + "\n"
                   for k, (x, y, z) in enumerate(PTS.tolist()))
    head = (f"ply\nformat ascii 1.0\nelement vertex {len(PTS)}\nproperty double x\n"
            "property double y\nproperty double z\nproperty list uchar int extra\nend_header\n")
    (tmp_path / "a.ply").write_text(head + rows)
    np.testing.assert_array_equal(read_cloud(tmp_path / "a.ply"), PTS)
    before = head.replace("property list uchar int extra\n", "").replace(
        "property double x\n", "property list uchar int extra\nproperty double x\n")
    rows_before = "".join(f"{k % 3} " + " ".join(["7"] * (k % 3)) + f" {x!r} {y!r} {z!r}\n"
                          for k, (x, y, z) in enumerate(PTS.tolist()))
    (tmp_path / "b.ply").write_text(before + rows_before)  # columns move from row to row
    np.testing.assert_array_equal(read_cloud(tmp_path / "b.ply"), PTS)
    (tmp_path / "c.ply").write_text(before + rows_before.replace("\n2 7 7 ", "\n1 7 7 ", 1))
    with pytest.raises(InputError, match="c.ply: vertex row 3 has 6 values, the header "
                       "describes 5"):
        read_cloud(tmp_path / "c.ply")


def test_long_ply_header_and_end_header_in_a_comment(tmp_path):
    comments = ["this comment mentions end_header on purpose"] + ["x" * 70] * 1500
    p = _ply_binary(tmp_path / "c.ply", [(c, "double", "f8") for c in "xyz"], _columns(PTS),
                    comments=comments)
    assert p.stat().st_size > 100_000 + PTS.nbytes
    np.testing.assert_array_equal(read_cloud(p), PTS)


def _pcd(path, fields, data_kind, body, points, width=None):
    names = " ".join(n for n, _, _ in fields)
    head = (f"# .PCD v0.7\nVERSION 0.7\nFIELDS {names}\n"
            f"SIZE {' '.join(str(s) for _, s, _ in fields)}\n"
            f"TYPE {' '.join(t for _, _, t in fields)}\nCOUNT {' '.join('1' for _ in fields)}\n"
            f"WIDTH {points if width is None else width}\nHEIGHT 1\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {points}\nDATA {data_kind}\n")
    path.write_bytes(head.encode() + body)
    return path


def _literal_lzf(raw: bytes) -> bytes:
    """LZF stream of literal runs only (valid LZF, no compression)."""
    return b"".join(bytes([len(raw[i:i + 32]) - 1]) + raw[i:i + 32]
                    for i in range(0, len(raw), 32))


def test_pcd_double_coordinates_binary_and_compressed(tmp_path):
    fields = [("intensity", 4, "F"), ("z", 8, "F"), ("x", 8, "F"), ("y", 8, "F")]
    dt = np.dtype([("i", "<f4"), ("z", "<f8"), ("x", "<f8"), ("y", "<f8")])
    rows = np.zeros(len(PTS), dt)
    rows["x"], rows["y"], rows["z"] = _columns(PTS)
    p = _pcd(tmp_path / "d.pcd", fields, "binary", rows.tobytes(), len(PTS))
    np.testing.assert_array_equal(read_cloud(p), PTS)
    soa = b"".join(rows[n].tobytes() for n in ("i", "z", "x", "y"))
    packed = _literal_lzf(soa)
    q = _pcd(tmp_path / "c.pcd", fields, "binary_compressed",
             struct.pack("<II", len(packed), len(soa)) + packed, len(PTS))
    np.testing.assert_array_equal(read_cloud(q), PTS)


def test_pcd_compressed_by_open3d_reads_back(tmp_path):
    pts = np.round(PTS, 2)  # repeated bytes, so LZF back references occur
    p = tmp_path / "o.pcd"
    assert o3d.io.write_point_cloud(str(p), o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(pts)), write_ascii=False, compressed=True)
    assert b"binary_compressed" in p.read_bytes()[:400]
    np.testing.assert_allclose(read_cloud(p), pts, atol=1e-6)


@pytest.mark.parametrize("points", [5, 199, 201, 10_000_000])
def test_pcd_compressed_with_wrong_point_count_is_refused(tmp_path, points):
    src = tmp_path / "o.pcd"
    o3d.io.write_point_cloud(str(src), o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(PTS)), write_ascii=False, compressed=True)
    data = src.read_bytes()
    for key in (b"WIDTH", b"POINTS"):
        i = data.index(key)
        data = data[:i] + data[i:].replace(b"200", str(points).encode(), 1)
    (tmp_path / "bad.pcd").write_bytes(data)
    with pytest.raises(InputError, match="bad.pcd: binary_compressed PCD holds"):
        read_cloud(tmp_path / "bad.pcd")
    i = data.index(b"WIDTH")  # WIDTH alone changed: the header contradicts itself
    (tmp_path / "w.pcd").write_bytes(src.read_bytes().replace(b"WIDTH 200", b"WIDTH 20"))
    with pytest.raises(InputError, match="w.pcd: PCD header disagrees"):
        read_cloud(tmp_path / "w.pcd")


def test_pcd_compressed_corrupt_stream_is_refused(tmp_path):
    fields = [("x", 4, "F"), ("y", 4, "F"), ("z", 4, "F")]
    raw = PTS.astype("<f4").T.tobytes()
    bad = bytes([0xE0, 0xFF, 0xFF]) + _literal_lzf(raw)[:-10]  # reference before the start
    p = _pcd(tmp_path / "z.pcd", fields, "binary_compressed",
             struct.pack("<II", len(bad), len(raw)) + bad, len(PTS))
    with pytest.raises(InputError, match="z.pcd: corrupt binary_compressed"):
        read_cloud(p)


@pytest.mark.parametrize("token", ["1_0", "1__0", "\u0661"])
def test_xyz_refuses_what_python_float_would_accept(tmp_path, token):
    p = tmp_path / "c.xyz"
    p.write_text(f"1 2 3\n{token} 2 3\n", encoding="utf-8")
    with pytest.raises(InputError, match="c.xyz: malformed XYZ"):
        read_cloud(p)


def test_xyz_pts_with_count_and_comments(tmp_path):
    body = "".join(f"{x!r} {y!r} {z!r} 0.5 # c\n" for x, y, z in PTS.tolist())
    (tmp_path / "c.pts").write_text(f"# scanner export\n{len(PTS)}\n" + body)
    np.testing.assert_array_equal(read_cloud(tmp_path / "c.pts"), PTS)
