"""Run every command on a catalogue of bad inputs and write docs/BAD_INPUTS.md: what was
tried, the exit code, the one line the user sees, and whether an output file was left.

Usage: python bench/bad_inputs.py  (from the repository root)
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "datasets"


def _bunny_truth() -> np.ndarray:
    """``T_bun000_bun045`` from the bundled bun.conf (``bmesh NAME tx ty tz qx qy qz qw``)."""
    from scipy.spatial.transform import Rotation

    poses = {}
    for line in (DATA / "bunny" / "bun.conf").read_text().splitlines():
        f = line.split()
        if len(f) == 9 and f[0] == "bmesh":
            T = np.eye(4)
            T[:3, :3] = Rotation.from_quat(np.array(f[5:9], float)).as_matrix().T
            T[:3, 3] = np.array(f[2:5], float)
            poses[f[1]] = T
    return np.linalg.inv(poses["bun000.ply"]) @ poses["bun045.ply"]


def _registration_cases(w: Path, out: str) -> list[tuple[str, list[str]]]:
    """Issue 15: wrong answers that used to exit 0, collisions, degenerate clouds, ranges."""
    from calib.bundle import read_bal, write_bal

    G = _bunny_truth()
    refl = G.copy()
    refl[:3, :3] = refl[:3, :3] @ np.diag([1.0, 1.0, -1.0])
    np.savetxt(w / "reflection.txt", refl)
    np.savetxt(w / "inverse.txt", np.linalg.inv(G))
    np.savetxt(w / "scaled105.txt", np.diag([1.05, 1.05, 1.05, 1.0]))
    t = np.linspace(0, 1, 500)
    np.save(w / "line.npy", np.c_[t, 2 * t, 0 * t])
    b45, b0 = w / "src45.ply", str(DATA / "bunny" / "bun000.ply")
    b45.write_bytes((DATA / "bunny" / "bun045.ply").read_bytes())
    from calib.io.clouds import read_cloud

    np.save(w / "mm.npy", read_cloud(b45) * 1000)
    bal = read_bal(DATA / "bal" / "dubrovnik-3-7-pre.txt")
    write_bal(w / "bal_huge.txt", bal.__class__(bal.cameras, np.full_like(bal.points, 1e200),
                                                bal.camera_index, bal.point_index,
                                                bal.observations))
    (w / "bal_in.txt").write_text((DATA / "bal" / "dubrovnik-3-7-pre.txt").read_text())
    ri = ["register-clouds", str(b45), b0]
    eye = str(w / "eye.txt")
    corners = str(DATA / "chessboard_left" / "corners_9x6.npz")
    return [
        ("init is a reflection (det -1)", ri + ["--init", str(w / "reflection.txt"), "-o", out]),
        ("init scaled by 1.05", ri + ["--init", str(w / "scaled105.txt"), "-o", out]),
        ("init is the inverse of the right one", ri + ["--init", str(w / "inverse.txt"),
                                                        "--voxel", "0.002", "-o", out]),
        ("straight-line cloud registered to itself",
         ["register-clouds", str(w / "line.npy"), str(w / "line.npy"), "--init", eye,
          "--report", str(w / "line.json"), "-o", out]),
        ("source in mm, target in m", ["register-clouds", str(w / "mm.npy"), b0, "--init", eye,
                                       "-o", out]),
        ("-o onto the source cloud", ri + ["-o", str(b45)]),
        ("--aligned onto the source cloud", ri + ["--aligned", str(b45), "-o", out]),
        ("-o X --report X", ri + ["--report", out, "-o", out]),
        ("--voxel 1e-11", ri + ["--voxel", "1e-11", "-o", out]),
        ("--loss-scale 1e-300", ri + ["--loss", "huber", "--loss-scale", "1e-300", "-o", out]),
        ("--max-distance 1e300", ri + ["--max-distance", "1e300", "-o", out]),
        ("BAL points at 1e200", ["bundle-adjust", str(w / "bal_huge.txt"), "-o", out]),
        ("--report onto the BAL input", ["bundle-adjust", str(w / "bal_in.txt"), "--report",
                                         str(w / "bal_in.txt"), "-o", out]),
        ("BAL --loss-scale 1e-300", ["bundle-adjust", str(w / "bal_in.txt"), "--loss", "huber",
                                     "--loss-scale", "1e-300", "-o", out]),
        ("--square 1e-300", ["fit-intrinsics", "--corners", corners, "--board", "9x6",
                             "--square", "1e-300", "-o", out]),
        ("stray word after a flag (--fix-k3 true)",
         ["fit-intrinsics", str(DATA / "chessboard_left"), "--board", "9x6", "--square",
          "0.025", "--fix-k3", "true", "-o", out]),
    ]


def _ply(path: Path, pts: np.ndarray, order: str = "xyz", code: str = ">f4",
         comments: tuple = (), faces: int = 0) -> None:
    """Binary PLY with the vertex properties in ``order`` (numpy type ``code``), an extra
    property, and optionally ``faces`` triangles after the vertices."""
    kind = {"f4": "float", "f8": "double"}[code[1:]]
    e = "little" if code[0] == "<" else "big"
    head = ["ply", f"format binary_{e}_endian 1.0", *[f"comment {c}" for c in comments],
            f"element vertex {len(pts)}", "property uchar red",
            *[f"property {kind} {c}" for c in order]]
    if faces:
        head += [f"element face {faces}", "property list uchar int vertex_indices"]
    dt = np.dtype([("red", "u1")] + [(c, code) for c in order])
    rows = np.zeros(len(pts), dt)
    for j, c in enumerate("xyz"):
        rows[c] = pts[:, j]
    tri = np.zeros(faces, np.dtype([("n", "u1"), ("v", code[0] + "i4", 3)]))
    tri["n"], tri["v"] = 3, np.arange(3)
    path.write_bytes(("\n".join(head + ["end_header"]) + "\n").encode() + rows.tobytes()
                     + tri.tobytes())


def _pcd(path: Path, pts: np.ndarray, size: int, data: str, points: int | None = None) -> None:
    """PCD with x, y, z of ``size`` bytes; ``binary_compressed`` as literal-only LZF; the
    header's POINTS/WIDTH may claim ``points``."""
    n = len(pts) if points is None else points
    head = (f"VERSION 0.7\nFIELDS x y z\nSIZE {size} {size} {size}\nTYPE F F F\nCOUNT 1 1 1\n"
            f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n")
    raw = np.ascontiguousarray(pts, dtype=f"<f{size}")
    body = raw.tobytes()
    if data == "binary_compressed":
        soa = raw.T.tobytes()
        lzf = b"".join(bytes([len(soa[i:i + 32]) - 1]) + soa[i:i + 32]
                       for i in range(0, len(soa), 32))
        body = struct.pack("<II", len(lzf), len(soa)) + lzf
    path.write_bytes(head.encode() + body)


def _png_bomb(path: Path, w: int, h: int) -> None:
    """A valid gray PNG of w x h zeros, compressed in chunks (about 0.4 MB for 20000^2)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(bytes(w + 1) * 500) for _ in range(h // 500)) + z.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0,
                                                                      0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def _npz_bomb(path: Path, n_views: int, like: dict) -> None:
    """An NPZ whose image_points inflate to n_views x 54 x 2 doubles of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("image_points.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (n_views, 54, 2)})
            for _ in range(n_views // 1000):
                fh.write(bytes(54 * 2 * 8 * 1000))
        for key in ("object_points", "image_size"):
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asarray(like[key], dtype=float))


def _is_identity(path: Path) -> str:
    """For valid inputs registered to themselves: how far the written T is from identity."""
    try:
        T = np.loadtxt(path)
    except (OSError, ValueError) as exc:
        return f"no transform written ({exc})"
    ang = np.degrees(np.arccos(np.clip((np.trace(T[:3, :3]) - 1) / 2, -1, 1)))
    return (f"T vs identity: {ang:.2g} deg, {np.linalg.norm(T[:3, 3]) * 1e3:.2g} mm "
            f"({'correct' if ang < 0.01 and np.linalg.norm(T[:3, 3]) < 1e-4 else 'WRONG'})")


def _issue15(w: Path, b: str, out: str) -> list[tuple]:
    """Cases of issue 15 (files misread, values changed, writes failing, memory)."""
    from calib.io.clouds import read_cloud

    pts = read_cloud(b)
    _ply(w / "zyx.ply", pts, "zyx", ">f4")
    _ply(w / "yxz8.ply", pts, "yxz", "<f8", faces=10)
    _ply(w / "long.ply", pts, "xyz", "<f8", comments=("a comment naming end_header",
                                                      *["c" * 70] * 1200))
    _pcd(w / "double.pcd", pts, 8, "binary")
    _pcd(w / "few.pcd", pts, 4, "binary_compressed", points=len(pts) // 10)
    _pcd(w / "many.pcd", pts, 4, "binary_compressed", points=10_000_000)
    rows = "".join(f"{x!r} {y!r} {z!r} 2 5 6\n" for x, y, z in pts.tolist())
    head = (f"ply\nformat ascii 1.0\nelement vertex {len(pts)}\nproperty double x\n"
            "property double y\nproperty double z\nproperty list uchar int idx\nend_header\n")
    (w / "list.ply").write_text(head + rows)
    (w / "list_first.ply").write_text(
        head.replace("property list uchar int idx\n", "").replace(
            "property double x\n", "property list uchar int idx\nproperty double x\n")
        + "".join(f"2 5 6 {x!r} {y!r} {z!r}\n" for x, y, z in pts.tolist()))
    (w / "under.xyz").write_text("".join(f"{x} {y} {z}\n" for x, y, z in pts[:100].tolist())
                                 + "1_0 2 3\n")
    eye = str(w / "eye.txt")
    ri = ["register-clouds", "--init", eye]
    valid = [(f"valid: {what}", ri + [str(w / f), b, "-o", out], _is_identity) for what, f in (
        ("binary PLY, vertex properties z y x, float, big-endian", "zyx.ply"),
        ("binary PLY mesh, y x z double, faces after the vertices", "yxz8.ply"),
        ("PLY header over 64 kB, a comment naming end_header", "long.ply"),
        ("PCD with double coordinates", "double.pcd"),
        ("ASCII PLY with a list property in the vertex element", "list.ply"),
        ("ASCII PLY, a list property before x, y, z", "list_first.ply"))]
    bad = [("binary_compressed PCD, POINTS/WIDTH a tenth of the data",
            ri + [str(w / "few.pcd"), b, "-o", out]),
           ("binary_compressed PCD, POINTS/WIDTH 1e7", ri + [str(w / "many.pcd"), b, "-o", out]),
           ("XYZ with 1_0 (Python's float reads 10)", ri + [str(w / "under.xyz"), b, "-o", out])]
    return valid + bad


def _issue15_more(w: Path, npz, bal: str, out: str) -> list[tuple]:
    fi = ["fit-intrinsics"]
    ba = ["bundle-adjust"]
    like = {k: npz[k] for k in npz.files}
    np.savez(w / "complex.npz", **{**like, "image_points": like["image_points"] * (1 + 1j)})
    _npz_bomb(w / "bomb.npz", 400_000, like)
    for name, size in (("inf", "Infinity"), ("1e999", "1e999"), ("1e20", "[1e20, 480]")):
        good = json.dumps({k: like[k].tolist() for k in ("image_points", "object_points")})
        (w / f"size_{name}.json").write_text(good[:-1] + f', "image_size": {size}}}')
    _png_bomb(w / "bomb.png", 20000, 20000)
    (w / "bal_under.txt").write_text(bal.replace("-3.859900e+02", "-3_859.900", 1))
    (w / "bal_1e300.txt").write_text(bal.replace("\n0 0 ", "\n1e300 0 ", 1))
    (w / "dangling.txt").symlink_to(w / "no_dir" / "x.txt")
    src = str(DATA / "bal" / "dubrovnik-3-7-pre.txt")
    limit = os.pathconf(w, "PC_NAME_MAX")
    return [
        ("corners: complex image_points", fi + ["--corners", str(w / "complex.npz"), "-o", out]),
        ("corners: zip bomb (1.7 MB inflating to 346 MB)",
         fi + ["--corners", str(w / "bomb.npz"), "-o", out]),
        *[(f"corners: image_size {n}", fi + ["--corners", str(w / f"size_{n}.json"), "-o", out])
          for n in ("inf", "1e999", "1e20")],
        ("images: 0.4 MB PNG of 20000x20000 pixels (x3)",
         fi + [str(w / "bomb.png")] * 3 + ["--board", "9x6", "--square", "0.025", "-o", out]),
        ("BAL with 1_0", ba + [str(w / "bal_under.txt"), "-o", out]),
        ("BAL camera index 1e300", ba + [str(w / "bal_1e300.txt"), "-o", out]),
        ("-o /dev/full", ba + [src, "-o", "/dev/full"]),
        ("-o in a read-only place (/proc/self)", ba + [src, "-o", "/proc/self/ba.txt"]),
        ("-o a dangling symlink", ba + [src, "-o", str(w / "dangling.txt")]),
        ("-o a name one byte over the length limit",
         ba + [src, "-o", str(w / ("n" * (limit + 1)))]),
        ("valid: -o a name at the length limit", ba + [src, "-o", str(w / ("m" * limit))], None),
        ("valid: -o /dev/stdout through a pipe", ba + [src, "-o", "/dev/stdout"], None),
    ]


def cases(tmp: Path) -> list[tuple]:
    w = tmp
    (w / "empty.ply").write_bytes(b"")
    (w / "random.pcd").write_bytes(np.random.default_rng(0).bytes(4096))
    (w / "text.ply").write_text("this is not a point cloud\n")
    (w / "trunc.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000\n"
                                  b"property float x\nproperty float y\nproperty float z\n"
                                  b"end_header\n\x00\x01")
    np.save(w / "nan.npy", np.full((100, 3), np.nan))
    np.save(w / "same.npy", np.ones((100, 3)))
    np.save(w / "far.npy", np.random.default_rng(0).normal(size=(100, 3)) + 1000)
    np.save(w / "huge.npy", np.full((100, 3), 1e200))
    (w / "cloud.png").write_bytes((DATA / "chessboard_left" / "left01.jpg").read_bytes())
    np.savetxt(w / "eye.txt", np.eye(4))
    np.savetxt(w / "scale.txt", np.diag([2.0, 1, 1, 1]))
    (w / "bad_init.txt").write_text("1 2 3\n")
    (w / "junk.jpg").write_bytes(b"not an image")
    (w / "blank.png").write_bytes((DATA / "chessboard_left" / "left01.jpg").read_bytes()[:500])
    npz = np.load(DATA / "chessboard_left" / "corners_9x6.npz")
    ip = npz["image_points"].astype(float)
    ip[0, 0, 0] = np.nan
    np.savez(w / "nan_corners.npz", image_points=ip, object_points=npz["object_points"],
             image_size=npz["image_size"])
    np.savez(w / "two_views.npz", image_points=npz["image_points"][:2],
             object_points=npz["object_points"], image_size=npz["image_size"])
    np.savez(w / "no_key.npz", image_points=npz["image_points"])
    same = np.repeat(npz["image_points"][:1], 5, axis=0)
    np.savez(w / "same_view.npz", image_points=same, object_points=npz["object_points"],
             image_size=npz["image_size"])
    bal = (DATA / "bal" / "dubrovnik-3-7-pre.txt").read_text()
    (w / "bal_trunc.txt").write_text(bal[: len(bal) // 2])
    (w / "bal_cam.txt").write_text(bal.replace("\n0 0 ", "\n9 0 ", 1))
    (w / "bal_nan.txt").write_text(bal.replace("-3.859900e+02", "nan", 1))
    (w / "bal_header.txt").write_text("three cameras\n" + bal)
    (w / "bal_empty.txt").write_text("")
    b = str(DATA / "bunny" / "bun045.ply")
    imgs = str(DATA / "chessboard_left")
    one = str(DATA / "chessboard_left" / "left01.jpg")
    out = str(w / "out.txt")
    ri = ["register-clouds"]
    fi = ["fit-intrinsics"]
    ba = ["bundle-adjust"]
    sq = ["--board", "9x6", "--square", "0.025"]
    return [
        ("empty cloud file", ri + [str(w / "empty.ply"), b, "-o", out]),
        ("random bytes as PCD", ri + [str(w / "random.pcd"), b, "-o", out]),
        ("text file named .ply", ri + [str(w / "text.ply"), b, "-o", out]),
        ("truncated binary PLY", ri + [str(w / "trunc.ply"), b, "-o", out]),
        ("image file given as cloud", ri + [str(w / "cloud.png"), b, "-o", out]),
        ("all points NaN", ri + [str(w / "nan.npy"), b, "-o", out]),
        ("all points identical", ri + [str(w / "same.npy"), b, "-o", out]),
        ("coordinates 1e200", ri + [str(w / "huge.npy"), b, "-o", out]),
        ("missing file", ri + [str(w / "nope.pcd"), b, "-o", out]),
        ("no overlap at the initial pose", ri + [str(w / "far.npy"), b, "--init",
                                                 str(w / "eye.txt"), "--max-distance", "0.01",
                                                 "-o", out]),
        ("init is not rigid", ri + [b, b, "--init", str(w / "scale.txt"), "-o", out]),
        ("init is not 4x4", ri + [b, b, "--init", str(w / "bad_init.txt"), "-o", out]),
        ("negative voxel size", ri + [b, b, "--voxel", "-1", "-o", out]),
        ("unknown method", ri + [b, b, "--method", "plane", "-o", out]),
        ("output folder missing", ri + [b, b, "-o", str(w / "no_dir" / "T.txt")]),
        ("images: fewer than 3 views", fi + [one, one.replace("01", "02")] + sq + ["-o", out]),
        ("images: wrong --board size", fi + [imgs, "--board", "10x7", "--square", "0.025",
                                             "-o", out]),
        ("images: 1x6 board", fi + [imgs, "--board", "1x6", "--square", "0.025", "-o", out]),
        ("images: negative square", fi + [imgs, "--board", "9x6", "--square", "-1", "-o", out]),
        ("images: board spec '9by6'", fi + [imgs, "--board", "9by6", "--square", "0.025",
                                            "-o", out]),
        ("images: unreadable + truncated JPEG only", fi + [str(w / "junk.jpg"),
                                                           str(w / "blank.png")] + sq
         + ["-o", out]),
        ("images: --square missing", fi + [imgs, "--board", "9x6", "-o", out]),
        ("corners: NaN corner", fi + ["--corners", str(w / "nan_corners.npz"), "-o", out]),
        ("corners: 2 views", fi + ["--corners", str(w / "two_views.npz"), "-o", out]),
        ("corners: missing keys", fi + ["--corners", str(w / "no_key.npz"), "-o", out]),
        ("corners: the same view 5 times", fi + ["--corners", str(w / "same_view.npz"),
                                                 "-o", out]),
        ("corners: random bytes", fi + ["--corners", str(w / "random.pcd"), "-o", out]),
        ("unknown output format", fi + [imgs] + sq + ["--format", "xml", "-o", out]),
        ("images: --board smaller than the board (8x6 for 9x6)",
         fi + [imgs, "--board", "8x6", "--square", "0.025", "-o", out]),
        ("unknown --detector", fi + [imgs] + sq + ["--detector", "foo", "-o", out]),
        ("--timeout 0", fi + [imgs] + sq + ["--timeout", "0", "-o", out]),
        ("--plot names an existing file", fi + [imgs] + sq + ["--plot", str(w / "eye.txt"),
                                                             "-o", out]),
        ("-o and --report the same file", fi + [imgs] + sq + ["-o", out, "--report", out]),
        ("corners: board differs from --board", fi + ["--corners", str(DATA / "chessboard_left"
                                                                       / "corners_9x6.npz"),
                                                      "--board", "8x6", "--square", "0.05",
                                                      "-o", out]),
        ("BAL truncated", ba + [str(w / "bal_trunc.txt"), "-o", out]),
        ("BAL observation of a missing camera", ba + [str(w / "bal_cam.txt"), "-o", out]),
        ("BAL NaN value", ba + [str(w / "bal_nan.txt"), "-o", out]),
        ("BAL bad header", ba + [str(w / "bal_header.txt"), "-o", out]),
        ("BAL empty file", ba + [str(w / "bal_empty.txt"), "-o", out]),
        ("BAL unknown linear solver", ba + [str(DATA / "bal" / "dubrovnik-3-7-pre.txt"),
                                            "--linear-solver", "magic", "-o", out]),
        ("BAL unknown loss", ba + [str(DATA / "bal" / "dubrovnik-3-7-pre.txt"), "--loss", "l3",
                                   "-o", out]),
        *_registration_cases(w, out),
        *_issue15(w, b, out),
        *_issue15_more(w, npz, bal, out),
    ]


def _run(args: list[str], err_path: Path) -> tuple[int, str, str, int]:
    """Exit code, stdout, stderr and peak RSS (MB) of the CLI on ``args`` (stdout a pipe)."""
    with err_path.open("w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "calib_cli.main", *args, "--quiet"],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, out, err.read(), usage.ru_maxrss // 1024


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except OSError:  # a name over the length limit
        return False


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, args, *check in cases(tmp):
            out = Path(args[args.index("-o") + 1])
            ours = out.parent == tmp  # an output in the case folder: check it is left or not
            if ours and _is_file(out):
                out.unlink()
            old = None if ours or not _is_file(out) else out.read_bytes()  # an input as -o
            code, _, err, mb = _run(args, tmp / "stderr.txt")
            lines = [ln for ln in err.strip().splitlines() if ln.startswith("calib:")]
            msg = lines[-1] if lines else (err.strip().splitlines() or [""])[-1]
            if check and check[0] is not None and code == 0:
                msg = check[0](out)
            msg = str(msg).replace(d, "<tmp>").replace(str(ROOT), "<repo>").replace("|", "\\|")
            msg = msg if len(msg) < 300 else msg[:150] + " ... " + msg[-100:]
            left = "yes" if ours and _is_file(out) else "no" if ours else "-"
            if old is not None and (not _is_file(out) or out.read_bytes() != old):
                left = "INPUT OVERWRITTEN"
            rows.append((label, args[0], code, msg, left, mb, bool(check)))
    lines = ["# Bad inputs and what the user sees", "",
             "Generated by `python bench/bad_inputs.py` (every case runs the real CLI in a "
             "subprocess, stdout a pipe). Exit codes: 2 input, 3 degenerate geometry, 4 no "
             "convergence. Rows marked *valid* are inputs that must be read correctly (exit 0); "
             "peak RSS is the child's maximum resident memory.", "",
             "| # | input | command | exit | message (stderr) | output left | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, (label, cmd, code, msg, left, mb, _) in enumerate(rows, 1):
        lines.append(f"| {i} | {label} | `{cmd}` | {code} | {msg} | {left} | {mb} |")
    bad = [r for r in rows if (r[2] != 0 or "WRONG" in r[3]) == r[6]
           or (r[4] != "-" and (r[4] == "yes") != r[6]) or "internal error" in r[3]
           or r[5] > 1024]
    lines += ["", f"{len(rows)} cases; {len(bad)} with a wrong exit code (0 for bad input, "
              "non-zero or a wrong result for valid input), an internal error, a leftover "
              "output file or a peak over 1 GB."]
    (ROOT / "docs" / "BAD_INPUTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
