"""Small files that announce huge contents (issue 15): image headers of 20000 x 20000
pixels, zip-bombed corner files, lying npy headers. Each is refused from its header, in
little memory (peak RSS measured in a child process), naming the file and the problem."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zipfile
import zlib

import cv2
import numpy as np
import pytest

from calib.errors import InputError
from calib.io import corners as corners_mod
from calib.io.corners import read_corners
from calib.io.images import image_size, read_gray


def _png_bomb(path, w, h):
    """A valid grayscale PNG of zeros, compressed in chunks (never w*h bytes in memory)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    z = zlib.compressobj(1)
    rows = bytes(w + 1) * 500
    idat = b"".join(z.compress(rows) for _ in range(h // 500)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0,
                                                                      0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".pgm", ".webp"])
def test_header_size_matches_the_decoded_image(tmp_path, ext):
    img = np.random.default_rng(0).integers(0, 255, (23, 37), dtype=np.uint8)
    p = tmp_path / f"i{ext}"
    p.write_bytes(cv2.imencode(ext, img)[1].tobytes())
    assert image_size(p) == (37, 23)
    assert read_gray(p).shape == (23, 37)


def _patched(tmp_path, ext, w, h):
    """A small real image whose header is edited to announce ``w`` x ``h`` pixels."""
    img = np.zeros((16, 16), np.uint8)
    data = bytearray(cv2.imencode(ext, img)[1].tobytes())
    if ext == ".bmp":
        data[18:26] = struct.pack("<ii", w, h)
    elif ext == ".jpg":
        i = data.index(b"\xff\xc0")
        data[i + 5:i + 9] = struct.pack(">HH", h, w)
    elif ext == ".tif":
        e = "<" if data[:2] == b"II" else ">"
        (off,) = struct.unpack(e + "I", data[4:8])
        (n,) = struct.unpack(e + "H", data[off:off + 2])
        for k in range(n):
            at = off + 2 + 12 * k
            tag, kind = struct.unpack(e + "HH", data[at:at + 4])
            if tag in (256, 257):
                v = w if tag == 256 else h
                data[at + 8:at + 12] = struct.pack(e + ("HH" if kind == 3 else "I"),
                                                   *((v, 0) if kind == 3 else (v,)))
    p = tmp_path / f"big{ext}"
    p.write_bytes(bytes(data))
    return p


@pytest.mark.parametrize("ext", [".bmp", ".jpg", ".tif"])
def test_headers_announcing_too_many_pixels_are_refused(tmp_path, ext):
    p = _patched(tmp_path, ext, 30000, 20000)
    assert image_size(p) == (30000, 20000)
    with pytest.raises(InputError, match=f"^{p}: the image is 30000 x 20000 = 600 Mpx, over "
                       r"the 100 Mpx limit \(max_pixels\)$"):
        read_gray(p)


PEAK = """
import sys
from calib.errors import InputError
sys.path.insert(0, {tests!r})
try:
    {call}
    print("read")
except InputError as exc:
    print(exc)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (v)forking parent, so a
# large pytest process would be counted as this child's peak
print(next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM"))
      // 1024)
"""


def _peak_mb(call: str) -> tuple[str, int]:
    """(last message, peak RSS in MB) of ``call`` in a fresh interpreter."""
    from pathlib import Path

    code = PEAK.format(tests=str(Path(__file__).parent), call=call)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split("\n")
    return out[-3], int(out[-2])


def test_png_bomb_is_refused_in_little_memory(tmp_path):
    p = _png_bomb(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpx in about 0.5 MB
    assert p.stat().st_size < 2_000_000
    msg, mb = _peak_mb(f"from calib.io.images import read_gray; read_gray({str(p)!r})")
    assert msg == f"{p}: the image is 20000 x 20000 = 400 Mpx, over the 100 Mpx limit " \
        "(max_pixels)"
    assert mb < 300, mb
    small = _png_bomb(tmp_path / "ok.png", 1000, 1000)
    assert read_gray(small, max_pixels=1_000_000).shape == (1000, 1000)
    with pytest.raises(InputError, match="1 Mpx, over the 0.5 Mpx limit"):
        read_gray(small, max_pixels=500_000)


def _npz_bomb(path, n_views):
    """An NPZ whose image_points member inflates to n_views * 54 * 2 * 8 bytes of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("image_points.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (n_views, 54, 2)})
            block = bytes(54 * 2 * 8 * 1000)
            for _ in range(n_views // 1000):
                fh.write(block)
        for key, a in (("object_points", np.zeros((54, 3))), ("image_size", [640, 480])):
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asarray(a, dtype=float))
    return path


def test_zip_bomb_corners_refused_before_inflating(tmp_path):
    p = _npz_bomb(tmp_path / "bomb.npz", 400_000)  # 346 MB of zeros
    assert p.stat().st_size < 3_000_000
    msg, mb = _peak_mb(f"from calib.io.corners import read_corners; read_corners({str(p)!r})")
    assert msg.startswith(f"{p}: the archive inflates to 346 MB (image_points.npy 346 MB), "
                          "over the 134 MB limit"), msg
    assert mb < 300, mb


def test_npy_header_announcing_more_than_the_member_holds(tmp_path, monkeypatch):
    p = tmp_path / "lie.npz"
    with zipfile.ZipFile(p, "w") as zf, zf.open("image_points.npy", "w") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**9, 54, 2)})
        fh.write(bytes(800))
    with pytest.raises(InputError, match=r"image_points.npy announces \(1000000000, 54, 2\) "
                       "float64 .* but holds"):
        read_corners(p)
    monkeypatch.setattr(corners_mod, "MAX_CORNERS_BYTES", 10_000)  # the cap, not the size
    with pytest.raises(InputError, match="inflates to 1 MB .* over the 0 MB limit"):
        read_corners(_npz_bomb(tmp_path / "b.npz", 1000))


GOOD = {"image_points": np.zeros((3, 4, 2)).tolist(), "object_points": np.zeros((4, 3)).tolist()}


@pytest.mark.parametrize("size", ["Infinity", "1e999", "[1e20, 480]", "[640.5, 480]",
                                  "[-640, 480]", "[640]", '"640x480"', "[640, NaN]"])
def test_image_size_out_of_range_names_the_key(tmp_path, size):
    p = tmp_path / "c.json"
    p.write_text(json.dumps(GOOD)[:-1] + f', "image_size": {size}}}')
    with pytest.raises(InputError, match=f"^{p}: image_size (must|is)"):
        read_corners(p)
    q = tmp_path / "c.npz"
    np.savez(q, **{k: np.array(v) for k, v in GOOD.items()},
             image_size=np.array(json.loads(size.replace("Infinity", "1e999")
                                            .replace("NaN", "1e999"))))
    with pytest.raises(InputError, match=f"^{q}: image_size (must|is)"):
        read_corners(q)


def test_complex_corners_are_refused(tmp_path):
    p = tmp_path / "c.npz"
    np.savez(p, image_points=np.zeros((3, 4, 2)) * (1 + 1j), object_points=np.zeros((4, 3)),
             image_size=[640, 480])
    with pytest.raises(InputError, match=f"^{p}: image_points must hold real numbers, got "
                       "complex128"):
        read_corners(p)


def test_good_corners_file_reads(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({**GOOD, "image_size": [640, 480]}))
    names, obj, img, size = read_corners(p)
    assert (names, size, obj.shape, len(img)) == (["view0", "view1", "view2"], (640, 480),
                                                   (4, 3), 3)


@pytest.mark.parametrize("kind", ["xyz", "ply"])
def test_text_clouds_read_in_memory_near_the_result(tmp_path, kind):
    """Text clouds are parsed streamed: the peak is about the points themselves (24 bytes a
    point), not 16-22x the file as with a list of Python strings."""
    pts = np.random.default_rng(0).normal(size=(400_000, 3))
    p = tmp_path / f"c.{kind}"
    head = "" if kind == "xyz" else (
        f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty double x\n"
        "property double y\nproperty double z\nend_header\n")
    with p.open("w") as fh:
        fh.write(head)
        np.savetxt(fh, pts, fmt="%.9f")
    hwm = ("next(int(ln.split()[1]) for ln in open('/proc/self/status') "
           "if ln.startswith('VmHWM'))")  # peak RSS of this process image, in kB
    code = (f"from calib.io.clouds import read_cloud; m0 = {hwm}; "
            f"a = read_cloud({str(p)!r}); "
            f"print(a.shape[0], ({hwm} - m0) // 1024)")
    n, grown_mb = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True,
                                          text=True, timeout=120, check=True).stdout.split())
    assert n == len(pts)
    assert grown_mb < 3 * pts.nbytes / 2**20, (grown_mb, p.stat().st_size / 2**20)


@pytest.mark.parametrize("data", [b"\xff\xd8\xff\xe0\x00\x00", b"\xff\xd8\xff\xe0\x00\x01",
                                  b"\xff\xd8\xff\xc0\x00", b"\xff\xd8" + b"\xff" * 100,
                                  b"II*\x00\xff\xff\xff\xff", b"MM\x00*\x00\x00\x00\x08\xff\xff",
                                  b"BM" + bytes(30), b"\x89PNG\r\n\x1a\n" + bytes(24)])
def test_broken_image_headers_end_in_an_input_error(tmp_path, data):
    p = tmp_path / "h.img"
    p.write_bytes(data)
    with pytest.raises(InputError, match=f"^{p}: not a readable image"):
        read_gray(p)
