"""Point-cloud files cut at every byte: the reader must raise a CalibError or return exactly
the original cloud; a cloud of other points is a silent wrong answer (issue 6).

XYZ/PTS text has no point count, so a cut there can only be caught when it breaks a row; it
is not swept here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib.errors import CalibError
from calib.io.clouds import read_cloud, write_ply

PTS = np.random.default_rng(0).normal(size=(40, 3))


def _write(kind: str, path: Path) -> Path:
    if kind == "npy":
        p = path / "c.npy"
        np.save(p, PTS)
        return p
    if kind == "ply-binary":
        p = path / "c.ply"
        write_ply(p, PTS)
        return p
    import open3d as o3d

    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(PTS))
    ext, ascii_ = kind.split("-")
    p = path / f"c.{ext}"
    assert o3d.io.write_point_cloud(str(p), pc, write_ascii=ascii_ == "ascii")
    return p


def _cuts(data: bytes) -> list[int]:
    """Every byte of the header and the first rows, then a stride through the body."""
    head = max(data.find(b"end_header"), data.find(b"DATA"), 128) + 200
    return sorted(set(range(min(head, len(data)))) | set(range(head, len(data), 11)))


def _sweep(kind: str, tmp_path: Path) -> list[str]:
    src = _write(kind, tmp_path)
    data = src.read_bytes()
    ref = read_cloud(src)
    np.testing.assert_allclose(ref, PTS, rtol=0, atol=1e-5)  # ASCII PLY is float32 text
    bad = []
    q = tmp_path / f"cut{src.suffix}"
    for cut in _cuts(data):
        q.write_bytes(data[:cut])
        try:
            out = read_cloud(q)
        except CalibError:
            continue
        except Exception as exc:  # any other exception is a finding
            bad.append(f"cut {cut}: {type(exc).__name__}: {exc}")
            continue
        if out.shape != ref.shape or not np.array_equal(out, ref):
            bad.append(f"cut {cut}: returned {out.shape} points (original {ref.shape})")
    return bad


@pytest.mark.parametrize("kind", ["npy", "ply-binary"])
def test_truncated_files_are_refused(tmp_path, kind):
    bad = _sweep(kind, tmp_path)
    assert not bad, "\n".join(bad[:10])


@pytest.mark.parametrize("kind", ["pcd-binary", "pcd-ascii", "ply-ascii"])
def test_truncated_files_are_refused_known_bugs(tmp_path, kind):
    bad = _sweep(kind, tmp_path)
    assert not bad, f"{len(bad)} bad cuts:\n" + "\n".join(bad[:10])
