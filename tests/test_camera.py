"""Camera model against OpenCV, Jacobians against numerical derivatives, camera files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calib.camera import CameraModel, project
from calib.errors import InputError
from calib.io.camera_files import read_camera, write_camera
from calib.lie import se3
from calib.residuals.reprojection import BoardReprojection
from calib.solver import Euclidean, SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians, numeric_jacobian

THETA = np.array([900.0, 905.0, 645.0, 475.0, -0.25, 0.08, 0.0012, -0.0008, -0.01])


def _points(n=50, seed=0):
    return np.random.default_rng(seed).uniform([-1, -0.8, 2], [1, 0.8, 4], (n, 3))


def test_projection_matches_opencv():
    cam = CameraModel(THETA, (1280, 960))
    p = _points()
    ref, _ = cv2.projectPoints(p, np.zeros(3), np.zeros(3), cam.K, cam.dist)
    np.testing.assert_allclose(cam.project(p), ref[:, 0], atol=1e-9)


def test_undistort_matches_opencv_and_inverts_projection():
    cam = CameraModel(THETA, (1280, 960))
    p = _points()
    uv = cam.project(p)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-14)
    ref = cv2.undistortPoints(uv.reshape(-1, 1, 2), cam.K, cam.dist, P=cam.K, criteria=crit)
    np.testing.assert_allclose(cam.undistort_points(uv), ref[:, 0], atol=1e-6)
    np.testing.assert_allclose(cam.undistort_points(uv, normalized=True), p[:, :2] / p[:, 2:],
                               atol=1e-12)


def test_projection_jacobians_numerically():
    p = _points(8)
    _, jp, jt = project(p, THETA, True)
    for i in range(len(p)):
        assert_jacobian_close(jp[i], numeric_jacobian(lambda q: project(q[None], THETA)[0],
                                                      p[i]), rtol=1e-6)
        assert_jacobian_close(jt[i], numeric_jacobian(
            lambda t, i=i: project(p[i:i + 1], t)[0], THETA), rtol=1e-6)


def test_projection_per_point_parameters_match_shared():
    """``theta (N, 9)`` (one camera per point) gives the same values and Jacobians as
    projecting each point with its own ``(9,)`` camera, and the Jacobians match numerics."""
    p = _points(6)
    th = THETA + np.random.default_rng(2).normal(0, 1e-2, (6, 9)) * np.r_[100, 100, 10, 10,
                                                                         1, 1, 0.1, 0.1, 1]
    uv, jp, jt = project(p, th, True)
    for i in range(len(p)):
        u1, jp1, jt1 = project(p[i:i + 1], th[i], True)
        np.testing.assert_allclose(uv[i], u1[0], rtol=1e-14)
        np.testing.assert_allclose(jp[i], jp1[0], rtol=1e-14)
        np.testing.assert_allclose(jt[i], jt1[0], rtol=1e-14)
        assert_jacobian_close(jt[i], numeric_jacobian(
            lambda t, i=i: project(p[i:i + 1], t)[0], th[i]), rtol=1e-6)
    np.testing.assert_allclose(project(p, th), uv, rtol=1e-14)


@pytest.mark.parametrize("aspect", [None, 1.0])
def test_reprojection_jacobians_numerically(aspect):
    rng = np.random.default_rng(1)
    board = np.c_[rng.uniform(0, 0.2, (30, 2)), np.zeros(30)]
    T = se3.exp(np.c_[rng.normal(0, 0.05, (3, 3)), rng.normal(0, 0.2, (3, 3))])
    T[:, 2, 3] += 1.0
    idx = rng.integers(0, 3, 30)
    fam = BoardReprojection(board, rng.normal(600, 50, (30, 2)), aspect)
    vals = [THETA[None].copy(), T]
    inds = [np.zeros(30, int), idx]
    _, jac = fam.evaluate(vals, inds)
    num = numeric_family_jacobians(fam, vals, inds, [Euclidean(9), SE3Manifold()])
    assert_jacobian_close(jac[0], num[0], rtol=1e-6)
    assert_jacobian_close(jac[1], num[1], rtol=1e-6)


def test_chunked_evaluation_matches_row_by_row():
    """Projection and the reprojection family run in chunks of CHUNK points: rows across
    chunk boundaries give the same values and Jacobians as a small batch of those rows."""
    from calib.camera.pinhole import CHUNK

    rng = np.random.default_rng(4)
    n = 2 * CHUNK + 77
    board = np.c_[rng.uniform(0, 0.2, (n, 2)), np.zeros(n)]
    T = se3.exp(np.c_[rng.normal(0, 0.05, (3, 3)), rng.normal(0, 0.2, (3, 3))])
    T[:, 2, 3] += 1.0
    idx = np.sort(rng.integers(0, 3, n))
    obs = rng.normal(600, 50, (n, 2))
    r, jac = BoardReprojection(board, obs).evaluate([THETA[None], T], [np.zeros(n, int), idx])
    rows = np.r_[CHUNK - 2:CHUNK + 2, 2 * CHUNK - 1:2 * CHUNK + 1, n - 1]
    r1, jac1 = BoardReprojection(board[rows], obs[rows]).evaluate(
        [THETA[None], T], [np.zeros(len(rows), int), idx[rows]])
    np.testing.assert_allclose(r[rows], r1, rtol=1e-14, atol=1e-9)
    for a, b in zip(jac, jac1, strict=True):
        np.testing.assert_allclose(a[rows], b, rtol=1e-14, atol=1e-12)
    p = se3.act(T[0], board)
    uv, jp, jt = project(p, THETA, True)
    uv1, jp1, jt1 = project(p[rows], THETA, True)
    for a, b in ((uv, uv1), (jp, jp1), (jt, jt1)):
        np.testing.assert_allclose(a[rows], b, rtol=1e-14, atol=1e-12)


@pytest.mark.parametrize("planar", [True, False])
def test_repeated_board_runs_match_per_row_transform(planar):
    """Views that all repeat one board's points (the full-board case) are transformed by
    one product for all views (:func:`shared_run_points`): the same residuals and Jacobians
    as each row transformed on its own, for a flat board and a 3-D target."""
    from calib.camera.pinhole import PINHOLE
    from calib.residuals.reprojection import apply_runs, shared_run_points

    rng = np.random.default_rng(7)
    k, nv = 35, 6
    one = np.c_[rng.uniform(0, 0.3, (k, 2)), np.zeros(k) if planar else rng.uniform(0, .1, k)]
    board = np.tile(one, (nv, 1))
    T = se3.exp(np.c_[rng.normal(0, 0.05, (nv, 3)), rng.normal(0, 0.3, (nv, 3))])
    T[:, 2, 3] += 1.5
    view = np.repeat(np.arange(nv), k)
    obs = rng.normal(600, 50, (nv * k, 2))
    cols = tuple(board[:, i].copy() for i in range(3))
    shared = shared_run_points(cols, k, planar)
    assert shared is not None and shared.shape == (3 if planar else 4, k)
    moved = board.copy()
    moved[k, 0] += 1e-3  # one view differs: no shared points
    assert shared_run_points(tuple(moved[:, i].copy() for i in range(3)), k, planar) is None
    p_ref = np.einsum("rij,rj->ri", T[view, :3, :3], board) + T[view, :3, 3]
    np.testing.assert_allclose(np.stack(apply_runs(T, cols, k, planar, shared), 1), p_ref,
                               rtol=0, atol=1e-15)
    fam = BoardReprojection(board, obs)
    r, jac = fam.evaluate([THETA[None], T], [np.zeros(nv * k, int), view])
    assert fam._shared is not None  # the path under test was taken
    uv, _, _, jt = PINHOLE.project(p_ref, THETA, True)
    np.testing.assert_allclose(r, uv - obs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(jac[0], jt, rtol=1e-12, atol=1e-12)


def test_distort_columns_jacobian_numerically():
    """The Newton inversion's distortion map and its 2x2 Jacobian (a, b; b, d) against
    :func:`distort` and numerical derivatives."""
    from calib.camera.pinhole import distort, distort_columns

    xy = np.random.default_rng(3).uniform(-0.6, 0.6, (12, 2))
    xd, yd, a, b, d = distort_columns(xy[:, 0], xy[:, 1], THETA)
    np.testing.assert_allclose(np.c_[xd, yd], distort(xy, THETA), rtol=1e-14, atol=1e-15)
    for i in range(len(xy)):
        num = numeric_jacobian(lambda q: distort(q[None], THETA)[0], xy[i])
        assert_jacobian_close(np.array([[a[i], b[i]], [b[i], d[i]]]), num, rtol=1e-6)


@pytest.mark.parametrize("fmt", ["opencv", "ros", "json"])
def test_camera_files_roundtrip(tmp_path, fmt):
    cam = CameraModel(THETA, (1280, 960))
    path = tmp_path / f"cam.{fmt}"
    write_camera(path, cam, fmt)
    back = read_camera(path)
    np.testing.assert_allclose(back.params, cam.params, rtol=1e-15)
    assert back.image_size == cam.image_size
    if fmt == "opencv":
        fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
        np.testing.assert_allclose(fs.getNode("camera_matrix").mat(), cam.K)
        np.testing.assert_allclose(fs.getNode("distortion_coefficients").mat().ravel(), cam.dist)


def test_bad_camera_inputs():
    with pytest.raises(InputError):
        CameraModel(np.r_[THETA[:8], np.nan], (10, 10))
    with pytest.raises(InputError):
        CameraModel(THETA, (0, 10))
    with pytest.raises(InputError):
        CameraModel.from_opencv(np.eye(3), np.r_[0, 0, 0, 0, 0, 0.1], (10, 10))


def test_points_behind_the_camera_have_no_pixel():
    cam = CameraModel(THETA, (1280, 960))
    uv = cam.project(np.array([[0.1, 0.2, 1.0], [0.0, 0.0, -1.0], [0.3, 0.1, 0.0]]))
    assert np.isfinite(uv[0]).all() and np.isnan(uv[1:]).all()
    np.testing.assert_allclose(uv[0], project(np.array([[0.1, 0.2, 1.0]]), THETA)[0])
