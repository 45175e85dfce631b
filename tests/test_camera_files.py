"""Camera files for every model: written, read back by their consumers (cv2.FileStorage, a
YAML parser with ROS's and Kalibr's field names), round-tripped by calib; ROS's P as ROS's
camera_calibration computes it; refusals of models a format cannot hold; hostile files."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest
import yaml

from calib.camera import Camera
from calib.errors import InputError
from calib.io.camera_files import FORMATS, MAX_CAMERA_FILE_BYTES, read_camera, write_camera

SIZE = (1280, 960)
CAMERAS = {
    "pinhole": Camera([900.0, 905.0, 645.0, 475.0, -0.25, 0.08, 0.0012, -0.0008, -0.01], SIZE),
    "rational": Camera([700.0, 702.0, 641.0, 482.0, 0.3, 0.02, 0.0007, -0.0004, 0.001, 0.7,
                        0.08, 0.0005], SIZE, "rational"),
    # -5e-05: repr has no dot, which YAML 1.1 (PyYAML: ROS, Kalibr) would read as a string
    "fisheye": Camera([410.0, 409.0, 641.0, 479.0, 0.02, -0.004, 0.0006, -5e-05], SIZE,
                      "fisheye"),
    "double-sphere": Camera([350.0, 351.0, 640.5, 480.5, -0.2, 0.6], SIZE, "double-sphere"),
}
#: formats that cannot hold a model (written nowhere, refused with a message)
UNREPRESENTABLE = {("double-sphere", "ros"), ("rational", "kalibr"), ("pinhole", "kalibr")}
DIST_NAMES = {"pinhole": "plumb_bob", "rational": "rational_polynomial",
              "fisheye": "equidistant", "double-sphere": "double_sphere"}


def _cases():
    for model in CAMERAS:
        for fmt in FORMATS:
            yield pytest.param(model, fmt, id=f"{model}-{fmt}")


@pytest.mark.parametrize(("model", "fmt"), list(_cases()))
def test_every_model_round_trips_through_every_format(tmp_path, model, fmt):
    cam = CAMERAS[model]
    path = tmp_path / "cam.yaml"
    if (model, fmt) in UNREPRESENTABLE:
        with pytest.raises(InputError, match="has no|no k3"):
            write_camera(path, cam, fmt)
        assert not path.exists()
        return
    write_camera(path, cam, fmt, {"rms_px": 0.25} if fmt in ("opencv", "json") else None)
    back = read_camera(path)
    assert back == cam  # exact: every float is written with repr


def test_kalibr_pinhole_without_k3_round_trips(tmp_path):
    cam = Camera(np.r_[CAMERAS["pinhole"].params[:8], 0.0], SIZE)
    write_camera(tmp_path / "c.yaml", cam, "kalibr")
    assert read_camera(tmp_path / "c.yaml") == cam


@pytest.mark.parametrize("model", list(CAMERAS))
def test_opencv_file_reads_in_cv2_filestorage(tmp_path, model):
    cam = CAMERAS[model]
    path = tmp_path / "cam.yaml"
    write_camera(path, cam, "opencv", {"rms_px": 0.25})
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    np.testing.assert_array_equal(fs.getNode("camera_matrix").mat(), cam.K)
    np.testing.assert_array_equal(fs.getNode("distortion_coefficients").mat().ravel(), cam.dist)
    assert fs.getNode("distortion_model").string() == DIST_NAMES[model]
    assert (fs.getNode("image_width").real(), fs.getNode("image_height").real()) == SIZE
    assert fs.getNode("rms_px").real() == 0.25
    fs.release()


@pytest.mark.parametrize("header", ["installed", "%YAML:1.0", "%YAML 1.2"])
def test_files_written_by_cv2_filestorage_are_read(tmp_path, header):
    """A camera saved by OpenCV itself: the installed OpenCV's own header (OpenCV 5 writes
    ``%YAML 1.2``, OpenCV 4 ``%YAML:1.0``) and each of the two spelled out."""
    cam = CAMERAS["pinhole"]
    path = tmp_path / "cv.yaml"
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    fs.write("image_width", SIZE[0])
    fs.write("image_height", SIZE[1])
    fs.write("camera_matrix", cam.K)
    fs.write("distortion_coefficients", cam.dist.reshape(1, -1))
    fs.release()
    if header != "installed":
        text = path.read_text()
        path.write_text(header + text[text.index("\n"):])
    assert read_camera(path) == cam


def test_yaml_1_2_header_alone_does_not_make_an_opencv_file(tmp_path):
    """A ROS file with a ``%YAML 1.2`` header and the tag's name only in a comment is still
    read as ROS (the tag must be a value's to route the file to OpenCV's parser)."""
    cam = CAMERAS["pinhole"]
    path = tmp_path / "ros.yaml"
    write_camera(path, cam, "ros")
    path.write_text("%YAML 1.2\n---\n# matrices were !!opencv-matrix once\n"
                    + path.read_text())
    assert read_camera(path) == cam


@pytest.mark.parametrize("model", ["pinhole", "rational", "fisheye"])
def test_ros_camera_info_fields_and_projection_matrix(tmp_path, model):
    """ROS's camera_calibration (MonoCalibrator.set_alpha(0)) stores P =
    getOptimalNewCameraMatrix(K, D, size, 0) for plumb_bob / rational_polynomial and P = K
    for equidistant; P = K for a distorted pinhole camera was issue 15's bug."""
    cam = CAMERAS[model]
    path = tmp_path / "ost.yaml"
    write_camera(path, cam, "ros")
    d = yaml.safe_load(path.read_text())
    assert d["distortion_model"] == DIST_NAMES[model]
    assert (d["image_width"], d["image_height"]) == SIZE
    np.testing.assert_array_equal(np.reshape(d["camera_matrix"]["data"], (3, 3)), cam.K)
    assert d["distortion_coefficients"]["cols"] == cam.dist.size
    np.testing.assert_array_equal(d["distortion_coefficients"]["data"], cam.dist)
    np.testing.assert_array_equal(np.reshape(d["rectification_matrix"]["data"], (3, 3)),
                                  np.eye(3))
    P = np.reshape(d["projection_matrix"]["data"], (3, 4))
    K, dist = cam.to_opencv()
    want = K if model == "fisheye" else cv2.getOptimalNewCameraMatrix(K, dist, SIZE, 0.0)[0]
    np.testing.assert_allclose(P, np.c_[want, np.zeros(3)], rtol=1e-12)
    if model != "fisheye":
        assert abs(P[0, 0] - K[0, 0]) > 1.0  # a rectified camera, not K


@pytest.mark.parametrize("model", ["pinhole", "fisheye", "double-sphere"])
def test_kalibr_camchain_has_kalibrs_field_names(tmp_path, model):
    params = CAMERAS[model].params.copy()
    if model == "pinhole":
        params[8] = 0.0
    cam = Camera(params, SIZE, model)
    path = tmp_path / "camchain.yaml"
    write_camera(path, cam, "kalibr")
    d = yaml.safe_load(path.read_text())["cam0"]
    assert set(d) == {"camera_model", "intrinsics", "distortion_model", "distortion_coeffs",
                      "resolution"}
    cam_model, dist_model = {"pinhole": ("pinhole", "radtan"),
                             "fisheye": ("pinhole", "equidistant"),
                             "double-sphere": ("ds", "none")}[model]
    assert (d["camera_model"], d["distortion_model"]) == (cam_model, dist_model)
    assert d["resolution"] == list(SIZE) and all(isinstance(v, int) for v in d["resolution"])
    assert all(isinstance(v, float) for v in d["intrinsics"] + d["distortion_coeffs"])
    p = cam.params
    if model == "double-sphere":  # Kalibr: [xi, alpha, fu, fv, pu, pv], no coefficients
        assert d["intrinsics"] == [p[4], p[5], p[0], p[1], p[2], p[3]]
        assert d["distortion_coeffs"] == []
    else:  # [fu, fv, pu, pv] and k1, k2, (p1, p2 | k3, k4)
        assert d["intrinsics"] == list(p[:4]) and d["distortion_coeffs"] == list(p[4:8])


def test_reader_dispatches_on_model_names(tmp_path, shared_datasets):
    """A ROS equidistant file is a fisheye camera (issue 15: it was read as plumb_bob);
    unknown names are refused; ``model=`` reinterprets a mislabelled file."""
    path = tmp_path / "ost.yaml"
    write_camera(path, CAMERAS["fisheye"], "ros")
    assert read_camera(path) == CAMERAS["fisheye"]
    path.write_text(path.read_text().replace("equidistant", "fov"))
    with pytest.raises(InputError, match="'fov' is not one calib can represent"):
        read_camera(path)
    kal = tmp_path / "camchain.yaml"
    kal.write_text("cam0:\n  camera_model: omni\n  intrinsics: [0.8, 400.0, 400.0, 320.0, "
                   "240.0]\n  distortion_model: radtan\n  distortion_coeffs: [0.0, 0.0, 0.0, "
                   "0.0]\n  resolution: [640, 480]\n")
    with pytest.raises(InputError, match="omni-radtan is not one calib can represent"):
        read_camera(kal)
    ost = shared_datasets / "ros_fisheye_mono" / "ost.yaml"  # says plumb_bob, holds fisheye k1..k4
    as_labelled, as_fisheye = read_camera(ost), read_camera(ost, model="fisheye")
    assert as_labelled.model == "pinhole" and as_fisheye.model == "fisheye"
    np.testing.assert_array_equal(as_fisheye.dist, [-0.030464, -0.019695, 0.002098, 0.001030])
    np.testing.assert_array_equal(as_labelled.params[:8], as_fisheye.params)


def test_four_coefficient_plumb_bob_is_read_as_labelled_with_a_warning(tmp_path, caplog,
                                                                       shared_datasets):
    """ROS's fisheye calibrator labels its k1..k4 plumb_bob (the shared ost.yaml): read as
    labelled, but not silently; a five-coefficient plumb_bob file, or ``model=``, reads
    without a word."""
    ost = shared_datasets / "ros_fisheye_mono" / "ost.yaml"
    with caplog.at_level("WARNING", logger="calib.io.camera_files"):
        assert read_camera(ost).model == "pinhole"
    (msg,) = [r.getMessage() for r in caplog.records]
    assert msg.startswith(f"{ost}: 4 coefficients labelled plumb_bob are read as pinhole")
    assert "projection matrix has the shrunken focal length" in msg
    assert msg.endswith("pass --model fisheye")
    caplog.clear()
    path = tmp_path / "ros.yaml"
    write_camera(path, CAMERAS["pinhole"], "ros")
    with caplog.at_level("WARNING", logger="calib.io.camera_files"):
        read_camera(path)
        read_camera(ost, model="fisheye")
    assert not caplog.records


def test_calib_01_opencv_files_without_distortion_model_read_as_pinhole(tmp_path):
    path = tmp_path / "old.yaml"
    write_camera(path, CAMERAS["pinhole"], "opencv")
    path.write_text("".join(line for line in path.read_text().splitlines(True)
                            if not line.startswith("distortion_model")))
    assert read_camera(path) == CAMERAS["pinhole"]


def test_hostile_camera_files_are_refused_quickly(tmp_path):
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    cases = {"bomb.yaml": laughs, "bomb_cv.yaml": "%YAML:1.0\n---\n" + laughs,
             "list.yaml": "- 1\n- 2\n", "text.yaml": "hello\n",
             "big.yaml": "#" * (MAX_CAMERA_FILE_BYTES + 1),
             "deep.yaml": "a: " + "[" * 100000 + "]" * 100000 + "\n",
             "deep_cv.yaml": "%YAML:1.0\n---\na: " + "[" * 100000 + "]" * 100000 + "\n",
             "deep.json": "[" * 100000 + "]" * 100000}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        t0 = time.perf_counter()
        with pytest.raises(InputError, match=name):
            read_camera(tmp_path / name)
        assert time.perf_counter() - t0 < 5  # a loop guard, not a timing assertion
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_camera(fifo)
    with pytest.raises(InputError, match="does not exist"):
        read_camera(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="unknown camera file format"):
        write_camera(tmp_path / "x.yaml", CAMERAS["pinhole"], "mrcal")


def test_kalibr_pinhole_none_and_refusals(tmp_path):
    path = tmp_path / "camchain.yaml"
    path.write_text("cam0:\n  camera_model: pinhole\n  intrinsics: [400.0, 401.0, 320.0, "
                    "240.0]\n  distortion_model: none\n  distortion_coeffs: []\n"
                    "  resolution: [640, 480]\n")
    assert read_camera(path) == Camera([400.0, 401.0, 320.0, 240.0, 0, 0, 0, 0, 0], (640, 480))
    path.write_text(path.read_text().replace("none", "radtan").replace("[]", "[0.1, 0.2]"))
    with pytest.raises(InputError, match="4 distortion_coeffs"):
        read_camera(path)
    with pytest.raises(InputError, match="alpha < 1"):
        write_camera(path, Camera([300.0, 300, 320, 240, 0.1, 1.0], (640, 480),
                                  "double-sphere"), "kalibr")
