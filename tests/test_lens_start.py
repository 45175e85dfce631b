"""The wide-lens start (calib.intrinsics.initialize.focal_search) and the rational Newton
inverse against independent references: per-view np.linspace picks, one candidate at a
time, an exact parabola, the true focal length of synthetic fisheye views, and the
projection that the inverse must undo."""

from __future__ import annotations

import numpy as np
import pytest

from calib.camera import get_model
from calib.intrinsics import Chessboard
from calib.intrinsics.initialize import (
    _parabola_min,
    _search_costs,
    _subset,
    focal_search,
)
from calib.lie import se3
from calib_datasets.board_render import FISHEYE_CAMERA, random_poses

SIZE = (640, 480)


def _views(n: int, seed: int = 2, noise: float = 0.3):
    """``(board_xy (R, 2), pixels (R, 2), offsets (V + 1,))`` of ``n`` views of a 9x6 board
    through FISHEYE_CAMERA (boards up to 70 deg off the axis)."""
    board = Chessboard(9, 6, 0.04)
    obj = board.object_points()
    rng = np.random.default_rng(seed)
    poses = random_poses(n, 9, 6, 0.04, FISHEYE_CAMERA, SIZE, rng, model="fisheye",
                         max_angle_deg=70.0, depth=(0.5, 1.0), tilt=0.5)
    lens = get_model("fisheye")
    uv = np.concatenate([lens.project(se3.act(T, obj), FISHEYE_CAMERA)[0] for T in poses])
    uv += rng.normal(0, noise, uv.shape)
    return np.tile(obj[:, :2], (n, 1)), uv, np.arange(n + 1) * len(obj)


def test_subset_picks_what_per_view_linspace_picks():
    counts = np.array([3, 30, 31, 54, 100, 4])
    offsets = np.r_[0, np.cumsum(counts)]
    board = np.c_[np.arange(offsets[-1]), -np.arange(offsets[-1])].astype(float)
    views = np.array([5, 0, 2, 3, 1, 4])
    b, px, offs = _subset(board, 2 * board, offsets, views, 30)
    ref = [offsets[k] + np.unique(np.linspace(0, counts[k] - 1, 30).round().astype(int))
           for k in views]
    np.testing.assert_array_equal(b[:, 0], np.concatenate(ref))
    np.testing.assert_array_equal(px, 2 * b)
    np.testing.assert_array_equal(np.diff(offs), [len(r) for r in ref])


def test_batched_costs_equal_one_candidate_at_a_time_and_are_least_at_the_true_focal():
    board, px, offsets = _views(6)
    model = get_model("fisheye")
    c = (FISHEYE_CAMERA[2], FISHEYE_CAMERA[3])
    template = FISHEYE_CAMERA.copy()  # the true distortion: the cost is noise at the true f
    f0 = FISHEYE_CAMERA[0]
    fs = f0 * np.array([0.05, 0.5, 0.9, 1.0, 1.1, 2.0])
    batch = _search_costs(model, fs, (board, px, offsets, c), template)
    single = np.array([_search_costs(model, fs[i:i + 1], (board, px, offsets, c), template)[0]
                       for i in range(len(fs))])
    np.testing.assert_allclose(batch, single, rtol=1e-9)
    assert np.argmin(batch) == 3
    assert batch[3] < 3 * 2 * 0.3 ** 2  # 2 axes of 0.3 px noise; poses from rays, not LM
    assert batch[2] > 5 * batch[3] and batch[4] > 5 * batch[3]


def test_parabola_vertex():
    x = np.linspace(1.0, 2.0, 9)
    y = 3.0 * (x - 1.37) ** 2 + 0.5
    assert _parabola_min(x, y) == pytest.approx(1.37, abs=1e-12)
    assert _parabola_min(x, (x - 0.2) ** 2) == 1.0  # minimum at an end: that sample
    y[4] = np.inf
    assert _parabola_min(x, y) == x[3]  # a neighbour that failed: no parabola


def test_focal_search_finds_the_focal_length_and_poses():
    board, px, offsets = _views(30)
    model = get_model("fisheye")
    params, T, cost = focal_search(model, board, px, offsets, SIZE)
    assert T.shape == (30, 4, 4)
    # the equidistant start ignores the lens's k1..k4: f within 10 %, the rest is LM's
    assert abs(params[0] / FISHEYE_CAMERA[0] - 1) < 0.1 and params[0] == params[1]
    np.testing.assert_allclose(params[2:4], [(SIZE[0] - 1) / 2, (SIZE[1] - 1) / 2])
    np.testing.assert_allclose(np.linalg.det(T[:, :3, :3]), 1.0, atol=1e-9)
    assert np.all(T[:, 2, 3] > 0) and np.isfinite(cost)


def test_rational_unproject_inverts_projection():
    lens = get_model("rational")
    p = np.array([420.0, 421.0, 322.0, 238.0, 0.4, -0.05, 0.0008, -0.0005, 0.002, 0.75, 0.02,
                  0.004])
    rng = np.random.default_rng(0)
    pts = np.c_[rng.uniform(-0.7, 0.7, (4000, 2)), np.ones(4000)]
    uv, valid = lens.project(pts, p)
    rays, ok = lens.unproject(uv, p)
    assert valid.all() and ok.all()
    np.testing.assert_allclose(rays, pts / np.linalg.norm(pts, axis=1, keepdims=True),
                               atol=1e-12)
    # per-point parameters give the same rays
    rays2, ok2 = lens.unproject(uv, np.tile(p, (len(uv), 1)))
    np.testing.assert_allclose(rays2, rays, atol=1e-15)
    assert ok2.all()
    # pixels beyond the fold of a strongly folding lens do not unproject
    fold = p.copy()
    fold[4:] = [-0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    far = np.array([[322.0 + 420.0 * 0.6, 238.0], [322.0 + 420.0 * 2.0, 238.0]])
    _, ok = lens.unproject(far, fold)
    assert not ok[1]
