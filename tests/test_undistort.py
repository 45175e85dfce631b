"""Undistortion: calib's own maps and new camera matrix against OpenCV's (pinhole, rational,
fisheye), an image round trip through a double-sphere lens, points against
cv2.undistortPoints, and ``calib undistort`` end to end and on bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calib.camera import Camera
from calib.camera.undistort import (
    _edge_rays_k,
    model_maps,
    new_camera_matrix,
    undistort_image,
    undistort_points,
    undistortion_maps,
)
from calib.errors import InputError
from calib.io.camera_files import write_camera
from calib_cli.main import main

SIZE = (640, 480)
CAMS = {
    "pinhole": Camera([450.0, 452.0, 322.0, 238.0, -0.25, 0.08, 0.0012, -0.0008, -0.01], SIZE),
    "rational": Camera([350.0, 351.0, 321.0, 241.0, 0.3, 0.02, 0.0007, -0.0004, 0.001, 0.7,
                        0.08, 0.0005], SIZE, "rational"),
    # edges within 80 deg: calib's K_new is OpenCV's
    "fisheye": Camera([300.0, 290.0, 321.0, 243.0, 0.02, -0.004, 0.0006, -5e-05], SIZE,
                      "fisheye"),
    # a 190 deg diagonal double-sphere lens (corners at 95 deg)
    "double-sphere": Camera([203.6, 203.6, 320.0, 240.0, -0.2, 0.6], SIZE, "double-sphere"),
}


@pytest.mark.parametrize("model", ["pinhole", "rational", "fisheye"])
@pytest.mark.parametrize("balance", [0.0, 0.6])
def test_own_maps_match_opencv_maps(model, balance):
    """Maps built from calib's projection (the double-sphere path) equal OpenCV's
    initUndistortRectifyMap / fisheye.initUndistortRectifyMap wherever they land in the
    image (float32 maps: 1e-3 px)."""
    cam = CAMS[model]
    mx, my, K_new = undistortion_maps(cam, balance)
    ax, ay = model_maps(cam, K_new, SIZE)
    inside = (mx >= 0) & (mx <= SIZE[0] - 1) & (my >= 0) & (my <= SIZE[1] - 1)
    assert inside.mean() > 0.6
    assert np.abs(mx - ax)[inside].max() < 1e-3 and np.abs(my - ay)[inside].max() < 1e-3


@pytest.mark.parametrize("balance", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("new_size", [None, (800, 500)])
def test_new_camera_matrix_is_opencvs_for_fisheye(balance, new_size):
    cam = CAMS["fisheye"]
    K, dist = cam.to_opencv()
    ref = cv2.fisheye.estimateNewCameraMatrixForUndistortRectify(
        K, dist, SIZE, np.eye(3), balance=balance, new_size=new_size or SIZE)
    np.testing.assert_allclose(new_camera_matrix(cam, balance, new_size), ref, rtol=1e-9)
    np.testing.assert_allclose(_edge_rays_k(cam, balance, new_size or SIZE), ref, rtol=1e-9)
    ref = cv2.getOptimalNewCameraMatrix(*CAMS["pinhole"].to_opencv(), SIZE, balance,
                                        new_size or SIZE)[0]
    np.testing.assert_array_equal(new_camera_matrix(CAMS["pinhole"], balance, new_size), ref)


def _texture(rays: np.ndarray) -> np.ndarray:
    """A smooth function of the ray direction (gray levels 27..227)."""
    d = rays / np.linalg.norm(rays, axis=1, keepdims=True)
    return 127 + 100 * np.sin(2 * d[:, 0]) * np.cos(1.5 * d[:, 1])


def test_double_sphere_image_round_trip():
    """An image of a smooth scene on the sphere of directions, seen through the 190 deg
    double-sphere lens (each pixel: the scene along its unprojected ray), undistorted with
    the maps, equals the scene along the rectilinear camera's rays (one bilinear resampling:
    0.001 gray levels here; a map 0.5 px off costs 0.4, 1 px off 0.8)."""
    cam = CAMS["double-sphere"]
    u, v = np.meshgrid(np.arange(SIZE[0], dtype=float), np.arange(SIZE[1], dtype=float))
    rays = cam.unproject(np.c_[u.ravel(), v.ravel()])
    assert np.isfinite(rays).all()  # the whole 190 deg image is in the model's valid region
    lens_img = _texture(rays).reshape(u.shape).astype(np.float32)
    back, K_new = undistort_image(lens_img, cam, 0.0)
    mx, my, _ = undistortion_maps(cam, 0.0)
    inside = (mx >= 0) & (mx <= SIZE[0] - 1) & (my >= 0) & (my <= SIZE[1] - 1)
    assert inside.mean() > 0.99  # balance 0 fills the output
    want = _texture(np.c_[(u.ravel() - K_new[0, 2]) / K_new[0, 0],
                          (v.ravel() - K_new[1, 2]) / K_new[1, 1], np.ones(u.size)])
    err = np.abs(back.ravel() - want)[inside.ravel()]
    assert err.max() < 0.01, err.max()


@pytest.mark.parametrize("model", list(CAMS))
def test_undistort_points(model):
    cam = CAMS[model]
    rng = np.random.default_rng(1)
    p = np.c_[rng.uniform(-0.8, 0.8, (200, 2)), np.ones(200)] * rng.uniform(1, 3, (200, 1))
    uv = cam.project(p)
    _, _, K_new = undistortion_maps(cam, 0.5)
    ideal = undistort_points(cam, uv, K_new)
    want = p[:, :2] / p[:, 2:] * K_new[[0, 1], [0, 1]] + K_new[:2, 2]
    np.testing.assert_allclose(ideal, want, atol=1e-8)
    if model in ("pinhole", "rational", "fisheye"):
        K, dist = cam.to_opencv()
        crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
        und = cv2.fisheye.undistortPoints if model == "fisheye" else cv2.undistortPoints
        ref = und(uv.reshape(-1, 1, 2), K, dist, P=K_new, criteria=crit)[:, 0]
        np.testing.assert_allclose(ideal, ref, atol=1e-5)


def test_bad_arguments():
    cam = CAMS["pinhole"]
    with pytest.raises(InputError, match="balance"):
        undistortion_maps(cam, 1.5)
    with pytest.raises(InputError, match="camera is 640x480"):
        undistort_image(np.zeros((10, 10), np.uint8), cam)


def _write_images(folder, n=2, size=SIZE, prefix="img"):
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(n):
        img = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{prefix}{i}.png"), img)
    return sorted(folder.iterdir())


@pytest.mark.parametrize("model", ["fisheye", "double-sphere"])
def test_cli_undistort_writes_one_image_per_input(tmp_path, model, capsys):
    cam_file = tmp_path / "cam.yaml"
    write_camera(cam_file, CAMS[model], "opencv")
    inputs = _write_images(tmp_path / "in")
    out = tmp_path / "out"
    assert main(["undistort", str(tmp_path / "in"), "--camera", str(cam_file), "-o", str(out),
                 "--balance", "0.25", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in inputs]
    for p in inputs:
        want, _ = undistort_image(cv2.imread(str(p)), CAMS[model], 0.25)
        np.testing.assert_array_equal(cv2.imread(str(out / p.name)), want)


def test_cli_undistort_bad_input(tmp_path, capsys):
    good = tmp_path / "cam.yaml"
    write_camera(good, CAMS["pinhole"], "opencv")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(good.read_text().replace("plumb_bob", "kb8"))
    narrow = tmp_path / "narrow.yaml"  # alpha 0.9: the image edges lie outside its valid disc
    write_camera(narrow, Camera([203.6, 203.6, 320.0, 240.0, -0.2, 0.9], SIZE,
                                "double-sphere"), "opencv")
    inputs = _write_images(tmp_path / "in")
    small = _write_images(tmp_path / "small", 1, (320, 240), "small")
    out = tmp_path / "out"
    cases = [
        ([str(inputs[0]), "--camera", str(unknown), "-o", str(out)], "'kb8'"),
        ([str(inputs[0]), "--camera", str(tmp_path / "nope.yaml"), "-o", str(out)],
         "does not exist"),
        ([str(inputs[0]), "--camera", str(tmp_path / "in"), "-o", str(out)],
         "not a regular file"),
        ([str(tmp_path / "in" / "missing.png"), "--camera", str(good), "-o", str(out)],
         "missing.png: no such image file"),
        ([str(inputs[0]), "--camera", str(good), "-o", str(tmp_path / "in")],
         "would be overwritten"),
        ([str(inputs[0]), str(small[0]), "--camera", str(good), "-o", str(out)],
         "image is 320x240 but the camera is 640x480"),
        ([str(inputs[0]), "--camera", str(good), "-o", str(out), "--balance", "2"],
         "--balance"),
        ([str(inputs[0]), "--camera", str(good), "-o", str(out), "--model", "omni"],
         "unknown camera model"),
        ([str(inputs[0]), "--camera", str(narrow), "-o", str(out)],
         f"{narrow}: the image edges are outside the camera model's valid region"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(["undistort", *argv, "--quiet"]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
        assert not out.exists() or not any(out.iterdir())
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["img0.png", "img1.png"]
