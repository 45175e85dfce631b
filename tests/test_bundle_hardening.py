"""Bundle adjustment results and the LM callback (issue 15), and the intrinsics coverage gap
and per-view WARN threshold shared by the verdict and its plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

import calib
from calib.errors import InputError
from calib.intrinsics.diagnostics import largest_gap, verdict, view_warn_threshold


@pytest.fixture(scope="module")
def bal(bundled):
    return calib.read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")


def _ba(bal, **kw):
    return calib.bundle_adjust(bal.cameras, bal.points, bal.camera_index, bal.point_index,
                               bal.observations, **kw)


def test_result_read_only_json_strict_and_warned(bal):
    res = _ba(bal, max_iterations=20)
    for a in (res.cameras, res.points):
        with pytest.raises(ValueError):
            a[0, 0] = 1.0
    with pytest.raises(TypeError):
        res.phase_times_s["x"] = 1.0
    assert res == res and isinstance(hash(res), int)
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["warnings"] == list(res.warnings) and "under-determined" in res.warnings[0]


@pytest.mark.parametrize("value", [1e200, -1e13])
def test_absurd_values_refused(bal, value):
    pts = bal.points.copy()
    pts[2, 1] = value
    with pytest.raises(InputError, match=r"points\[2, 1\]"):
        calib.bundle_adjust(bal.cameras, pts, bal.camera_index, bal.point_index,
                            bal.observations)
    with pytest.raises(InputError, match="loss_scale"):
        _ba(bal, loss="huber", loss_scale=1e-300)


@pytest.mark.parametrize("cap", [1, 3])
def test_callback_false_on_the_last_iteration_is_a_user_stop(bal, cap):
    seen = []
    res = _ba(bal, max_iterations=cap, callback=lambda r: seen.append(r.iteration) or False)
    assert res.termination == "user" and seen == [1]
    res = _ba(bal, max_iterations=cap, callback=lambda r: r.iteration < cap)
    assert res.termination == "user" and res.iterations == cap


def test_coverage_gap_of_a_third_warns():
    cover = np.ones((6, 8), int)
    cover[:, 5:] = 0  # right 3 of 8 columns empty: 37.5% of the image
    frac, where = largest_gap(cover)
    assert frac == pytest.approx(18 / 48) and where == (5, 8, 0, 6)
    ok = dict(rms=0.3, per_view_rms=np.full(10, 0.3), used=np.ones(10, bool), std={},
              params=np.array([800.0, 800, 320, 240, 0, 0, 0, 0, 0]), converged=True)
    dist = type("D", (), {"monotonic": True, "invertible": True, "model": "pinhole"})()
    v, reasons = verdict(dist=dist, cover=cover, **ok)
    assert v == "WARN" and "no corners in 38% of the image (x 62-100% of the width" in reasons[0]
    cover[:, 6:] = 1  # 2 of 8 columns empty: 25%, no warning
    assert verdict(dist=dist, cover=cover, **ok) == ("PASS", [])


def test_largest_gap_equals_an_exhaustive_search():
    """The vectorized search against a loop over every rectangle (r0, r1, c0, c1) that keeps
    the first largest empty one, on random coverage grids."""
    def loop(cover):
        rows, cols = cover.shape
        best, where = 0, (0, 0, 0, 0)
        for r0 in range(rows):
            for r1 in range(r0 + 1, rows + 1):
                for c0 in range(cols):
                    for c1 in range(c0 + 1, cols + 1):
                        area = (r1 - r0) * (c1 - c0)
                        if area > best and not cover[r0:r1, c0:c1].any():
                            best, where = area, (c0, c1, r0, r1)
        return best / (rows * cols), where

    rng = np.random.default_rng(0)
    for _ in range(300):
        shape = tuple(rng.integers(1, 9, 2))
        cover = (rng.random(shape) < rng.random()) * rng.integers(1, 5, shape)
        assert largest_gap(cover) == loop(cover)


def test_per_view_threshold_is_the_verdicts():
    rms = np.r_[np.full(9, 0.2), 0.7]
    used = np.ones(10, bool)
    assert view_warn_threshold(rms, used) == pytest.approx(0.6)
    assert view_warn_threshold(rms[:2], used[:2]) is None
