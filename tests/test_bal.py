"""BAL file format, bundle_adjust input checks, behind-camera accounting, synthetic generator."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import calib
from calib.bundle import BALProblem, read_bal, write_bal
from calib.bundle.ba import cameras_to_poses, poses_to_cameras
from calib.errors import InputError
from calib.residuals.bal_projection import BALProjection
from calib_datasets.bal_synth import synthetic_bal


def _depth(p: BALProblem) -> np.ndarray:
    R = np.array([_rodrigues(w) for w in p.cameras[:, :3]])[p.camera_index]
    X = p.points[p.point_index]
    return (np.einsum("nij,nj->ni", R, X) + p.cameras[p.camera_index, 3:6])[:, 2]


def _rodrigues(w: np.ndarray) -> np.ndarray:
    """Independent angle-axis -> matrix (textbook Rodrigues), not calib.lie."""
    th = np.linalg.norm(w)
    if th < 1e-12:
        return np.eye(3)
    k = w / th
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * K @ K


def test_layout_does_not_matter(tmp_path, bundled):
    """BAL is whitespace separated: 3 or 9 numbers per line parse the same as 1 per line."""
    p = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    head = f"{len(p.cameras)} {len(p.points)} {len(p.observations)}\n"
    obs = "".join(f"{c} {q} {x!r} {y!r}\n" for c, q, (x, y) in
                  zip(p.camera_index.tolist(), p.point_index.tolist(), p.observations.tolist(),
                      strict=True))
    cams = "".join(" ".join(map(repr, row)) + "\n" for row in p.cameras.tolist())
    pts = "".join(" ".join(map(repr, row)) + "\n" for row in p.points.tolist())
    f = tmp_path / "wide.txt"
    f.write_text(head + obs + cams + pts)
    q = read_bal(f)
    np.testing.assert_array_equal(q.cameras, p.cameras)
    np.testing.assert_array_equal(q.points, p.points)
    np.testing.assert_array_equal(q.observations, p.observations)


def test_camera_matrix_roundtrip_matches_rodrigues(bundled):
    p = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    T = cameras_to_poses(p.cameras)
    for c in range(len(p.cameras)):
        np.testing.assert_allclose(T[c, :3, :3], _rodrigues(p.cameras[c, :3]), atol=1e-12)
    np.testing.assert_allclose(poses_to_cameras(T, p.cameras[:, 6:9]), p.cameras, atol=1e-12)


def test_synthetic_roundtrip_full_precision(tmp_path):
    start, _ = synthetic_bal(n_cameras=30, n_points=500, seed=3)
    write_bal(tmp_path / "s.txt", start)
    q = read_bal(tmp_path / "s.txt")
    np.testing.assert_array_equal(q.cameras, start.cameras)
    np.testing.assert_array_equal(q.points, start.points)
    np.testing.assert_array_equal(q.observations, start.observations)
    np.testing.assert_array_equal(q.camera_index, start.camera_index)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t: t + "\n1.0\n", "extra data"),
    (lambda t: t.replace("\n0 1 ", "\n0.5 1 ", 1), "integers"),
    (lambda t: t.replace("\n0 1 ", "\n-1 1 ", 1), "references camera -1"),
    (lambda t: "3 -7 19\n" + t.split("\n", 1)[1], "positive"),
    (lambda t: "3 7 1000000000000\n" + t.split("\n", 1)[1], "truncated"),
    (lambda t: t.replace("-3.859900e+02", "inf", 1), "NaN or inf"),
    (lambda t: t.replace("-3.859900e+02", "-3_859.900", 1), "line 3: '-3_859.900' is not a plain"),
    (lambda t: "3_0 7 19\n" + t.split("\n", 1)[1], "line 1: '3_0' is not a plain"),
    (lambda t: t.replace("\n0 1 ", "\n\u0660 1 ", 1), "line 6: '\u0660' is not a plain"),
    (lambda t: t.replace("\n0 1 ", "\n1e300 1 ", 1),
     r"line 6: observation 3 references camera 1e\+300 but the file has 3 cameras$"),
])
def test_more_bad_files(tmp_path, bundled, edit, message):
    text = (bundled / "bal" / "dubrovnik-3-7-pre.txt").read_text()
    p = tmp_path / "bad.txt"
    p.write_text(edit(text))
    with pytest.raises(InputError, match=message):
        read_bal(p)


def test_binary_file_refused(tmp_path):
    p = tmp_path / "bin.txt"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError):
        read_bal(p)


def test_api_input_errors(bundled):
    p = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    args = [p.cameras, p.points, p.camera_index, p.point_index, p.observations]
    bad_cams = p.cameras.copy()
    bad_cams[1, 6] = np.nan
    with pytest.raises(InputError, match="cameras"):
        calib.bundle_adjust(bad_cams, *args[1:])
    bad_pi = p.point_index.copy()
    bad_pi[4] = 7
    with pytest.raises(InputError, match=r"point_index\[4\] = 7"):
        calib.bundle_adjust(*args[:3], bad_pi, args[4])
    with pytest.raises(InputError, match="same length"):
        calib.bundle_adjust(*args[:4], p.observations[:-1])
    with pytest.raises(InputError, match="shape"):
        calib.bundle_adjust(p.cameras[:, :6], *args[1:])


def test_behind_camera_counted_warned_and_kept(caplog):
    start, _ = synthetic_bal(n_cameras=60, n_points=300, noise_px=0.5, seed=4)
    pts = start.points.copy()
    # Move three points behind the first camera that observes them (mirror their depth).
    R = _rodrigues(start.cameras[0, :3])
    t = start.cameras[0, 3:6]
    for q in start.point_index[start.camera_index == 0][:3]:
        Pc = R @ pts[q] + t
        pts[q] = R.T @ (Pc * np.array([1, 1, -1]) - t)
    p = BALProblem(start.cameras, pts, start.camera_index, start.point_index,
                   start.observations)
    expected = int(np.sum(_depth(p) >= 0))
    assert expected >= 3
    with caplog.at_level(logging.WARNING, logger="calib.bundle.ba"):
        r = calib.bundle_adjust(p.cameras, p.points, p.camera_index, p.point_index,
                                p.observations, max_iterations=3)
    assert r.num_behind_camera == expected
    assert f"{expected} of {len(p.observations)} observations are behind" in caplog.text
    assert r.summary.num_residuals == len(p.observations)  # kept, not dropped
    res, _ = BALProjection(p.observations).evaluate(
        [cameras_to_poses(p.cameras), p.cameras[:, 6:9], p.points],
        [p.camera_index, p.camera_index, p.point_index], jacobians=False)
    assert r.initial_cost == pytest.approx(0.5 * np.sum(res ** 2), rel=1e-12)


def test_synthetic_generator_is_local_and_seeded():
    a, truth = synthetic_bal(n_cameras=100, n_points=2000, obs_per_point=5, seed=7)
    b, _ = synthetic_bal(n_cameras=100, n_points=2000, obs_per_point=5, seed=7)
    np.testing.assert_array_equal(a.observations, b.observations)
    assert len(a.observations) == 10_000
    assert np.all(_depth(truth) < 0)  # every observation in front of its camera
    # truth reprojects exactly onto the noise-free observations
    res, _ = BALProjection(truth.observations).evaluate(
        [cameras_to_poses(truth.cameras), truth.cameras[:, 6:9], truth.points],
        [truth.camera_index, truth.camera_index, truth.point_index], jacobians=False)
    assert np.abs(res).max() < 1e-9
    # sparse camera graph: cameras sharing a point are neighbours along the trajectory
    pairs = set()
    for q in range(len(a.points)):
        cams = a.camera_index[a.point_index == q] if q < 50 else ()
        pairs.update((int(i), int(j)) for i in cams for j in cams if i < j)
    gaps = [min(j - i, 100 - (j - i)) for i, j in pairs]
    assert max(gaps) <= 4


def test_unobserved_cameras_and_points_unchanged(bundled, caplog):
    p = read_bal(bundled / "bal" / "dubrovnik-3-7-pre.txt")
    cams = np.r_[p.cameras, p.cameras[:1] + 0.01]
    pts = np.r_[p.points, [[0.0, 0.0, -5.0]]]
    with caplog.at_level(logging.WARNING, logger="calib.bundle.ba"):
        r = calib.bundle_adjust(cams, pts, p.camera_index, p.point_index, p.observations,
                                max_iterations=5)
    np.testing.assert_allclose(r.cameras[3], cams[3], atol=1e-12)  # via SE3 and back
    np.testing.assert_array_equal(r.points[7], pts[7])
    assert "1 cameras have no observation" in caplog.text
    assert "1 points have no observation" in caplog.text
    ref = calib.bundle_adjust(p.cameras, p.points, p.camera_index, p.point_index,
                              p.observations, max_iterations=5)
    assert r.final_cost == pytest.approx(ref.final_cost, rel=1e-9)
