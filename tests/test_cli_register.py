"""``calib register-clouds`` end to end and on bad input."""

from __future__ import annotations

import json

import numpy as np
from bunny import pose_error, world_pose

from calib_cli.main import main


def test_register_bundled_bunny(tmp_path, bundled):
    folder = bundled / "bunny"
    out, rep, al, png = (tmp_path / n for n in ("T.txt", "r.json", "a.ply", "p.png"))
    code = main(["register-clouds", str(folder / "bun045.ply"), str(folder / "bun000.ply"),
                 "-o", str(out), "--report", str(rep), "--aligned", str(al), "--plot", str(png),
                 "--voxel", "0.001", "--quiet"])
    assert code == 0
    T = np.loadtxt(out)
    G = np.linalg.inv(world_pose(folder / "bun.conf", "bun000.ply")) @ \
        world_pose(folder / "bun.conf", "bun045.ply")
    r, t = pose_error(T, G)
    assert r < 0.3 and t < 5e-4  # from no initial guess at all (global init + ICP)
    d = json.loads(rep.read_text())
    for key in ("T_target_source", "converged", "fitness", "inlier_rmse", "iterations",
                "covariance", "information", "degeneracy"):
        assert key in d
    assert d["converged"] is True and png.stat().st_size > 10000 and al.stat().st_size > 1000


def test_bad_inputs_leave_no_output(tmp_path, bundled, capsys):
    out = tmp_path / "T.txt"
    src = bundled / "bunny" / "bun045.ply"
    empty = tmp_path / "empty.pcd"
    empty.write_bytes(b"")
    far = tmp_path / "far.npy"
    np.save(far, np.random.default_rng(0).normal(size=(100, 3)) + 1000.0)
    eye = tmp_path / "eye.txt"
    np.savetxt(eye, np.eye(4))
    cube = np.random.default_rng(1).uniform(-1, 1, (3000, 3))
    np.save(tmp_path / "cube_m.npy", cube)
    np.save(tmp_path / "cube_mm.npy", cube * 1e3)  # the same scene in mm, both at the origin
    cases = [
        ([str(tmp_path / "cube_mm.npy"), str(tmp_path / "cube_m.npy")], 4,
         "(1000x): are they in the same units (mm vs m)?"),
        ([str(empty), str(src)], 2, "empty"),
        ([str(tmp_path / "missing.ply"), str(src)], 2, "does not exist"),
        ([str(far), str(src), "--init", str(eye), "--max-distance", "0.01"], 4,
         "correspondences"),
        ([str(src), str(src), "--method", "plane"], 2, "method"),
    ]
    for args, code_expected, msg in cases:
        code = main(["register-clouds", *args, "-o", str(out), "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == code_expected, (args, err)
        assert msg in err[-1] and err[-1].startswith("calib: error:")
        assert not out.exists()
