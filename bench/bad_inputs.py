"""Run every command on a catalogue of bad inputs and write docs/BAD_INPUTS.md: what was
tried, the exit code, the one line the user sees, and whether an output file was left.

Usage: python bench/bad_inputs.py  (from the repository root)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
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


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
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
    ]


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for label, args in cases(tmp):
            out = Path(args[args.index("-o") + 1])
            old = out.read_bytes() if out.is_file() else None  # an input named as -o
            p = subprocess.run([sys.executable, "-m", "calib_cli.main", *args, "--quiet"],
                               capture_output=True, text=True, timeout=300)
            lines = [ln for ln in p.stderr.strip().splitlines() if ln.startswith("calib:")]
            msg = lines[-1] if lines else p.stderr.strip().splitlines()[-1:]
            msg = str(msg).replace(d, "<tmp>").replace(str(ROOT), "<repo>").replace("|", "\\|")
            left = out.is_file() and out.read_bytes() != old
            if old is None:  # the next case starts without it
                out.unlink(missing_ok=True)
            rows.append((label, args[0], p.returncode, msg, left))
    lines = ["# Bad inputs and what the user sees", "",
             "Generated by `python bench/bad_inputs.py` (every case runs the real CLI in a "
             "subprocess). Exit codes: 2 input, 3 degenerate geometry, 4 no convergence.", "",
             "| # | input | command | exit | message (stderr) | output left |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, (label, cmd, code, msg, left) in enumerate(rows, 1):
        lines.append(f"| {i} | {label} | `{cmd}` | {code} | {msg} | {'yes' if left else 'no'} |")
    bad = [r for r in rows if r[2] == 0 or r[4] or "internal error" in r[3]]
    lines += ["", f"{len(rows)} cases; {len(bad)} with exit 0, an internal error or a "
              "leftover output file."]
    (ROOT / "docs" / "BAD_INPUTS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
