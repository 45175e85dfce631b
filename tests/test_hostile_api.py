"""Fuzzing the public API: any input gives a correct answer or a CalibError, never another
exception (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import calib
from calib.bundle import read_bal
from calib.errors import CalibError
from calib.io.camera_files import read_camera
from calib.io.clouds import read_cloud, read_transform
from calib.lie import se3, so3

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _calls_ok(fn, *args, **kwargs):
    """Run ``fn``; a CalibError is an acceptable answer, anything else fails the test."""
    try:
        return fn(*args, **kwargs)
    except CalibError:
        return None


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from(["ply", "pcd", "xyz", "npy", "txt"]))
def test_cloud_reader_random_bytes(tmp_path_factory, data, ext):
    p = tmp_path_factory.mktemp("f") / f"c.{ext}"
    p.write_bytes(data)
    out = _calls_ok(read_cloud, p)
    if out is not None:
        assert out.ndim == 2 and out.shape[1] == 3 and np.isfinite(out).all() and len(out) > 0


@FUZZ
@given(st.binary(max_size=1024))
def test_other_readers_random_bytes(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("g")
    for name, fn in (("p.txt", read_bal), ("t.txt", read_transform), ("c.yaml", read_camera)):
        (d / name).write_bytes(data)
        _calls_ok(fn, d / name)


@FUZZ
@given(st.integers(1, 60))
def test_truncated_bal(tmp_path_factory, cut):
    """Any number of lines cut from the end of a BAL file is reported."""
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "datasets" / "bal" / "dubrovnik-3-7-pre.txt"
    lines = src.read_text().strip().splitlines()
    p = tmp_path_factory.mktemp("b") / "t.txt"
    p.write_text("\n".join(lines[: max(0, len(lines) - cut)]) + "\n")
    with pytest.raises(CalibError):
        read_bal(p)


@FUZZ
@given(arrays(np.float64, st.tuples(st.integers(0, 30), st.integers(1, 4)), elements=floats))
def test_register_arbitrary_arrays(pts):
    target = np.random.default_rng(0).normal(size=(200, 3))
    res = _calls_ok(calib.register, pts, target, np.eye(4))
    if res is not None:
        assert np.isfinite(res.T_target_source).all()


@FUZZ
@given(st.integers(0, 5), st.booleans(), st.booleans())
def test_register_degenerate_clouds(n_dup, collinear, shift):
    rng = np.random.default_rng(n_dup)
    if collinear:
        t = rng.uniform(0, 1, 300)
        pts = np.c_[t, 2 * t, -t]
    else:
        pts = rng.normal(size=(300, 3))
    pts = np.repeat(pts, n_dup + 1, axis=0)
    if shift:
        pts = pts + 1e6
    res = _calls_ok(calib.register, pts, pts, np.eye(4))
    if res is not None and collinear:  # a line leaves translation along it and a rotation free
        assert res.degeneracy.degenerate


@FUZZ
@given(arrays(np.float64, st.tuples(st.integers(0, 6), st.integers(0, 60), st.integers(1, 3)),
              elements=floats))
def test_fit_intrinsics_arbitrary_arrays(img):
    obj = np.c_[np.random.default_rng(1).uniform(0, 0.2, (img.shape[1], 2)),
                np.zeros(img.shape[1])]
    res = _calls_ok(calib.fit_intrinsics, obj, img, (640, 480))
    if res is not None:
        assert np.isfinite(res.camera.params).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a clean error, no numpy warning first
def test_fit_intrinsics_collinear_and_single_view():
    obj = np.c_[np.linspace(0, 0.2, 20), np.zeros(20), np.zeros(20)]  # collinear board
    img = np.stack([np.c_[np.linspace(100, 300, 20), np.full(20, 200.0) + k] for k in range(5)])
    with pytest.raises(CalibError):
        calib.fit_intrinsics(obj, img, (640, 480))
    with pytest.raises(CalibError):
        calib.fit_intrinsics(obj, img[:1], (640, 480))


@FUZZ
@given(arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(0, 12)), elements=floats),
       st.integers(0, 4))
def test_bundle_adjust_arbitrary_arrays(cams, n_obs):
    rng = np.random.default_rng(n_obs)
    pts = rng.normal(size=(4, 3))
    obs = rng.normal(size=(n_obs, 2))
    ci = rng.integers(-1, 3, n_obs)
    pi = rng.integers(0, 5, n_obs)
    res = _calls_ok(calib.bundle_adjust, cams, pts, ci, pi, obs, max_iterations=3)
    if res is not None:
        assert np.isfinite(res.final_cost)


@FUZZ
@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 7)), elements=floats))
def test_lie_arbitrary_shapes_and_values(a):
    for fn in (so3.exp, so3.log, se3.exp, se3.log, so3.left_jacobian, se3.left_jacobian):
        out = _calls_ok(fn, a)
        if out is not None:
            assert np.isfinite(out).all()


@FUZZ
@given(st.sampled_from([b"\xff\xd8", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"BM", b"II*\x00",
                        b"MM\x00*", b"PK\x03\x04", b""]), st.binary(max_size=512))
def test_image_and_corner_readers_random_bytes(tmp_path_factory, magic, data):
    from calib.io import read_corners, read_gray

    d = tmp_path_factory.mktemp("i")
    (d / "f").write_bytes(magic + data)
    out = _calls_ok(read_gray, d / "f")
    if out is not None:
        assert out.ndim == 2 and out.dtype == np.uint8
    _calls_ok(read_corners, d / "f")
