"""PLY/PCD files with a mutated header, every single-line mutation (delete a line, duplicate
it, replace one token by a hostile value): the reader raises a CalibError, returns the
original cloud, or returns a prefix of it (a smaller count in the header); never other
points and never another exception (issue 6).

About 2,500 files in all; each case is one small file read, so the sweep takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calib.errors import CalibError
from calib.io.clouds import read_cloud

PTS = np.random.default_rng(1).normal(size=(30, 3))
TOKENS = ["-1", "0", "2", "29", "31", "99999999999", "abc", "", "nan", "1.5", "ascii",
          "binary", "binary_compressed", "double", "uchar", "list", "x", "vertex", "face"]



def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Header lines (with their newlines) and the body."""
    if data.startswith(b"ply"):
        end = data.find(b"end_header\n") + len(b"end_header\n")
    else:
        end = data.find(b"\n", data.find(b"DATA")) + 1
    return data[:end].splitlines(keepends=True), data[end:]


def _mutations(lines: list[bytes]):
    for k, line in enumerate(lines):
        yield f"delete {line.strip()!r}", lines[:k] + lines[k + 1:]
        yield f"duplicate {line.strip()!r}", lines[:k + 1] + lines[k:]
        words = line.split()
        for t in range(len(words)):
            for new in TOKENS:
                w = list(words)
                w[t] = new.encode()
                yield (f"{line.strip()!r} token {t} -> {new!r}",
                       lines[:k] + [b" ".join(w) + b"\n"] + lines[k + 1:])


@pytest.mark.parametrize("kind", ["ply-binary", "ply-ascii", "pcd-binary", "pcd-ascii"])
def test_every_single_line_header_mutation(tmp_path: Path, kind: str):
    import open3d as o3d

    ext, enc = kind.split("-")
    src = tmp_path / f"orig.{ext}"
    assert o3d.io.write_point_cloud(
        str(src), o3d.geometry.PointCloud(o3d.utility.Vector3dVector(PTS)),
        write_ascii=enc == "ascii")
    data = src.read_bytes()
    ref = read_cloud(src)
    lines, body = _split(data)
    q = tmp_path / f"mutated.{ext}"
    bad, n = [], 0
    for what, mutated in _mutations(lines):
        n += 1
        q.write_bytes(b"".join(mutated) + body)
        try:
            out = read_cloud(q)
        except CalibError:
            continue
        except Exception as exc:  # any other exception is a finding
            bad.append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        if not (out.ndim == 2 and 0 < len(out) <= len(ref)
                and np.array_equal(out, ref[: len(out)])):
            bad.append(f"{what}: returned {out.shape} other points")
    assert n > 300
    assert not bad, f"{len(bad)} of {n} mutations:\n" + "\n".join(bad[:15])
