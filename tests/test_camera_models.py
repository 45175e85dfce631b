"""Every lens model (one parametrised suite): projection against OpenCV or closed-form lens
laws, every Jacobian against numerical derivatives, unproject/project round trips over the
whole valid region (the image corners of a 190 deg double-sphere and a ~184 deg fisheye
lens included), unproject against cv2.undistortPoints / cv2.fisheye.undistortPoints, and
the Camera value object."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calib.camera import CHUNK, Camera, CameraModel, get_model, model_names
from calib.camera.double_sphere import w2
from calib.camera.fisheye import theta_max
from calib.camera.rational import cancelling_pair, r2_max
from calib.errors import InputError
from calib.lie import so3
from calib.testing import assert_jacobian_close, numeric_jacobian

SIZE = (1280, 960)
HALF_DIAG = np.hypot(640, 480)  # pixels from the centre to a corner


def _focal_for_corner(model: str, dist: list[float], theta_corner: float) -> float:
    """Focal length that puts a ray at ``theta_corner`` from the axis on the image corner."""
    p = np.r_[1.0, 1.0, 0.0, 0.0, dist]
    uv, ok = get_model(model).project(np.array([[np.sin(theta_corner), 0.0,
                                                 np.cos(theta_corner)]]), p)
    assert ok[0]
    return HALF_DIAG / uv[0, 0]


_FISH_DIST = [0.02, -0.004, 0.0006, -0.00005]
_DS_DIST = [-0.2, 0.6]
PARAMS = {
    "pinhole": np.r_[900.0, 905.0, 645.0, 475.0, -0.25, 0.08, 0.0012, -0.0008, -0.01],
    # a wide rational lens (corners at ~71 deg)
    "rational": np.r_[700.0, 702.0, 641.0, 482.0, 0.3, 0.02, 0.0007, -0.0004, 0.0,
                      0.7, 0.08, 0.0],
    # ~184 deg diagonal (corners at 92 deg) and a 190 deg double-sphere lens (95 deg)
    "fisheye": np.r_[[_focal_for_corner("fisheye", _FISH_DIST, np.radians(92))] * 2,
                     640.0, 480.0, _FISH_DIST],
    "double-sphere": np.r_[[_focal_for_corner("double-sphere", _DS_DIST, np.radians(95))] * 2,
                           640.0, 480.0, _DS_DIST],
}
#: largest angle from the optical axis each test lens is used at
MAX_ANGLE = {"pinhole": np.radians(45), "rational": np.radians(70), "fisheye": np.radians(92),
             "double-sphere": np.radians(95)}
MODELS = list(PARAMS)


def _rays(model: str, n: int, seed: int = 0, max_angle: float | None = None) -> np.ndarray:
    """``(n, 3)`` points at random depths on rays up to the model's test angle (plus the
    optical axis itself and a ray 2e-9 rad off it)."""
    rng = np.random.default_rng(seed)
    a = MAX_ANGLE[model] if max_angle is None else max_angle
    theta = np.arccos(rng.uniform(np.cos(a), 1.0, n))
    phi = rng.uniform(-np.pi, np.pi, n)
    d = np.c_[np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)]
    d[0] = (0, 0, 1)
    d[1] = (1e-9, -2e-9, 1)  # next to it
    return d * rng.uniform(0.5, 4.0, (n, 1))


def test_registry_has_every_model_and_refuses_unknown_names():
    assert model_names() == ("pinhole", "rational", "fisheye", "double-sphere")
    assert get_model("pinhole-equi").name == "fisheye"
    assert get_model("equidistant").name == "fisheye"
    assert get_model("ds-none").name == "double-sphere"
    assert get_model("rational_polynomial").name == "rational"
    with pytest.raises(InputError, match="unknown camera model"):
        get_model("omni-radtan")


@pytest.mark.parametrize("model", ["pinhole", "rational", "fisheye"])
def test_projection_matches_opencv(model):
    lens, th = get_model(model), PARAMS[model]
    p = _rays(model, 2000, max_angle=min(MAX_ANGLE[model], np.radians(80)))
    uv, valid = lens.project(p, th)
    K, dist = lens.to_opencv(th)
    if model == "fisheye":
        ref, _ = cv2.fisheye.projectPoints(p[:, None], np.zeros(3), np.zeros(3), K, dist)
    else:
        ref, _ = cv2.projectPoints(p, np.zeros(3), np.zeros(3), K, dist)
    assert valid.all()
    np.testing.assert_allclose(uv, ref[:, 0], rtol=0, atol=1e-9)


def test_double_sphere_matches_closed_form_lens_laws():
    """xi = alpha = 0 is a pinhole; xi = 0, alpha = 0.5 is stereographic (r = 2 f tan(t/2));
    xi = 0, alpha = 1 is orthographic (r = f sin t); independent of the DS formulas."""
    lens = get_model("double-sphere")
    p = _rays("double-sphere", 500, max_angle=np.radians(85))
    theta = np.arctan2(np.hypot(p[:, 0], p[:, 1]), p[:, 2])
    phi = np.arctan2(p[:, 1], p[:, 0])
    f, c = 400.0, np.r_[640.0, 480.0]
    for alpha, law in ((0.0, np.tan(theta)), (0.5, 2 * np.tan(theta / 2)), (1.0, np.sin(theta))):
        uv, valid = lens.project(p, np.r_[f, f, c, 0.0, alpha])
        assert valid.all()
        np.testing.assert_allclose(uv, c + f * law[:, None] * np.c_[np.cos(phi), np.sin(phi)],
                                   rtol=0, atol=1e-9)


def _perturbed_params(model: str, n: int) -> np.ndarray:
    th = PARAMS[model]
    scale = np.r_[10, 10, 5, 5, 0.1 * np.maximum(np.abs(th[4:]), 1e-3)]
    return th + np.random.default_rng(3).normal(0, 1, (n, len(th))) * scale


@pytest.mark.parametrize("model", MODELS)
def test_jacobians_match_numerical_derivatives(model):
    """d uv / d point, d uv / d params and the rotation rows of project_into, point by point,
    against central differences, over the whole test field of view (optical axis included);
    with one camera and with one camera per point."""
    lens = get_model(model)
    p = _rays(model, 24, seed=1)
    for th in (PARAMS[model], _perturbed_params(model, len(p))):
        uv, valid, jp, jt = lens.project(p, th, jacobians=True)
        assert valid.all()
        jr = np.empty((len(p), 2, 3))
        lens.project_into((p[:, 0].copy(), p[:, 1].copy(), p[:, 2].copy()), th, np.empty(
            (len(p), 2)), np.empty(len(p), bool), np.empty((len(p), 2, 3)),
            np.empty((len(p), 2, lens.num_params)), jr)
        for i in range(len(p)):
            ti = th if th.ndim == 1 else th[i]
            assert_jacobian_close(jp[i], numeric_jacobian(
                lambda q, ti=ti: lens.project(q[None], ti)[0][0], p[i]), rtol=1e-6)
            assert_jacobian_close(jt[i], numeric_jacobian(
                lambda t, i=i: lens.project(p[i:i + 1], t)[0][0], ti), rtol=1e-6)
            assert_jacobian_close(jr[i], numeric_jacobian(
                lambda w, i=i, ti=ti: lens.project((so3.exp(w) @ p[i])[None], ti)[0][0],
                np.zeros(3)), rtol=1e-6)


@pytest.mark.parametrize("model", MODELS)
def test_chunked_projection_matches_row_by_row(model):
    lens, th = get_model(model), PARAMS[model]
    p = _rays(model, 2 * CHUNK + 77, seed=4)
    uv, valid, jp, jt = lens.project(p, th, jacobians=True)
    rows = np.r_[0, CHUNK - 2:CHUNK + 2, 2 * CHUNK - 1:2 * CHUNK + 1, len(p) - 1]
    uv1, valid1, jp1, jt1 = lens.project(p[rows], th, jacobians=True)
    np.testing.assert_array_equal(valid[rows], valid1)
    for a, b in ((uv, uv1), (jp, jp1), (jt, jt1)):
        np.testing.assert_allclose(a[rows], b, rtol=1e-14, atol=1e-12)


def _image_grid(step: int = 16) -> np.ndarray:
    """Pixels on a grid over the whole image, the four corners included."""
    w, h = SIZE
    u, v = np.meshgrid(np.r_[np.arange(0, w - 1, step), w - 1],
                       np.r_[np.arange(0, h - 1, step), h - 1])
    return np.c_[u.ravel(), v.ravel()].astype(float)


@pytest.mark.parametrize("model", MODELS)
def test_unproject_then_project_round_trips_over_the_whole_image(model):
    lens, th = get_model(model), PARAMS[model]
    uv = _image_grid()
    rays, valid = lens.unproject(uv, th)
    assert valid.all(), f"{(~valid).sum()} pixels not invertible"
    np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0, atol=1e-14)
    back, ok = lens.project(rays, th)
    assert ok.all()
    err = np.abs(back - uv).max()
    assert err < 1e-9, err
    if model in ("fisheye", "double-sphere"):  # the corners are at the lens's half angle
        corners = th[2:4] + np.array([[-640, -480], [640, -480], [-640, 480], [640, 480]])
        rays, ok = lens.unproject(corners, th)
        assert ok.all()
        np.testing.assert_allclose(np.degrees(np.arccos(rays[:, 2])),
                                   np.degrees(MAX_ANGLE[model]), atol=1e-9)


def test_rational_unproject_refuses_where_the_lens_folds():
    """The pycalib GoPro rational reference (its SOURCES.md) has a numerator and a
    denominator root a hair apart (r2 = 1.743970 and 1.743975) inside its image: the map
    folds in a ring ~6 px wide around distorted radius 0.96 and is sound on both sides.
    unproject refuses exactly that ring and round-trips every pixel it accepts; r2_max (the
    first fold, for diagnostics) is at the ring, as a brute-force scan finds."""
    th = np.r_[586.82908524, 586.82908524, 641.01812808, 356.16960629, 0.570126130,
               -0.570435346, 3.89275117e-04, -5.89263800e-04, -0.0488942040, 0.865418192,
               -0.513053770, -0.178884281]
    lens = get_model("rational")
    r = np.linspace(1e-4, 3, 300001)  # brute force: first fold or pole of r radial(r^2)
    k1, k2, _, _, k3, k4, k5, k6 = th[4:]
    s = r * r
    den = 1 + s * (k4 + s * (k5 + s * k6))
    m = r * (1 + s * (k1 + s * (k2 + s * k3))) / den
    bad = (den[1:] <= 0) | (np.diff(m) <= 0)
    np.testing.assert_allclose(np.sqrt(r2_max(th)), r[np.argmax(bad)], atol=2e-5)
    u, v = np.meshgrid(np.arange(0.0, 1280, 8), np.arange(0.0, 720, 8))
    uv = np.c_[u.ravel(), v.ravel()]
    rays, valid = lens.unproject(uv, th)
    rd = np.hypot((uv[:, 0] - th[2]) / th[0], (uv[:, 1] - th[3]) / th[1])
    assert 0 < (~valid).sum() < 0.01 * len(uv)
    assert rd[~valid].min() > 0.95 and rd[~valid].max() < 0.975
    back, ok = lens.project(rays[valid], th)
    assert ok.all() and np.abs(back - uv[valid]).max() < 1e-9
    far = rays[valid & (rd > 1.1)]  # beyond the ring (up to the 66 deg corners): valid
    assert len(far) > 0.04 * len(uv) and lens.project(far, th)[1].all()


@pytest.mark.parametrize("model", MODELS)
def test_project_then_unproject_round_trips_over_the_valid_region(model):
    lens, th = get_model(model), PARAMS[model]
    p = _rays(model, 3000, seed=5)
    uv, valid = lens.project(p, th)
    assert valid.all()
    rays, ok = lens.unproject(uv, th)
    assert ok.all()
    err = np.abs(rays - p / np.linalg.norm(p, axis=1, keepdims=True)).max()
    assert err < 1e-11, err


@pytest.mark.parametrize("model", ["pinhole", "rational", "fisheye"])
def test_unproject_matches_opencv_undistort_points(model):
    lens, th = get_model(model), PARAMS[model]
    p = _rays(model, 300, seed=6, max_angle=min(MAX_ANGLE[model], np.radians(60)))
    uv, _ = lens.project(p, th)
    K, dist = lens.to_opencv(th)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 200, 1e-15)
    und = cv2.fisheye.undistortPoints if model == "fisheye" else cv2.undistortPoints
    ref = und(uv.reshape(-1, 1, 2), K, dist, criteria=crit)[:, 0]
    rays, ok = lens.unproject(uv, th)
    assert ok.all()
    mine = rays[:, :2] / rays[:, 2:]
    np.testing.assert_allclose(mine, p[:, :2] / p[:, 2:], rtol=0, atol=1e-12)
    np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-7)


def test_valid_regions():
    pin, fish, ds = (get_model(m) for m in ("pinhole", "fisheye", "double-sphere"))
    behind = np.array([[0.1, 0.0, -1.0], [0.0, 0.0, 0.0]])
    assert not pin.project(behind, PARAMS["pinhole"])[1].any()
    # fisheye: theta_max is where d theta_d / d theta = 0 (a folding polynomial)
    th = np.r_[300.0, 300.0, 640.0, 480.0, -0.2, 0.0, 0.0, 0.0]  # 1 - 0.6 t^2 = 0
    tmax = theta_max(th)
    np.testing.assert_allclose(tmax, np.sqrt(1 / 0.6), rtol=1e-12)
    dirs = np.array([[np.sin(t), 0, np.cos(t)] for t in (tmax - 1e-3, tmax + 1e-3)])
    np.testing.assert_array_equal(fish.project(dirs, th)[1], [True, False])
    rd_max = tmax * (1 - 0.2 * tmax**2)  # theta_d(theta_max): the largest invertible radius
    uv = th[2:4] + th[0] * np.array([[rd_max * 0.999, 0], [rd_max * 1.001, 0]])
    np.testing.assert_array_equal(fish.unproject(uv, th)[1], [True, False])
    assert np.radians(170) < theta_max(PARAMS["fisheye"]) <= np.pi
    # double sphere: z > -w2 d1 (paper eq. 43)
    th = PARAMS["double-sphere"]
    t_lim = np.arccos(-w2(th[4], th[5]))
    dirs = np.array([[np.sin(t), 0, np.cos(t)] for t in (t_lim - 1e-6, t_lim + 1e-6)])
    np.testing.assert_array_equal(ds.project(dirs, th)[1], [True, False])
    # unprojection region r^2 <= 1 / (2 alpha - 1) for alpha > 0.5
    r_lim = 1 / np.sqrt(2 * th[5] - 1)
    uv = th[2:4] + th[0] * np.array([[r_lim * 0.999, 0], [r_lim * 1.001, 0]])
    np.testing.assert_array_equal(ds.unproject(uv, th)[1], [True, False])


@pytest.mark.parametrize("model", MODELS)
def test_camera_value_object(model):
    th = PARAMS[model]
    cam = Camera(th, SIZE, model)
    assert cam == Camera(th.copy(), SIZE, get_model(model).kalibr_name or model)
    assert hash(cam) == hash(Camera(th.copy(), SIZE, model))
    assert len({cam, Camera(th.copy(), SIZE, model)}) == 1
    other = th.copy()
    other[0] += 1e-9
    assert cam != Camera(other, SIZE, model) and cam != Camera(th, (640, 480), model)
    assert not cam.params.flags.writeable
    K, dist = cam.to_opencv()
    assert Camera.from_opencv(K, dist, SIZE, model) == cam
    p = _rays(model, 50, seed=7)
    uv = cam.project(p)
    np.testing.assert_allclose(uv, get_model(model).project(p, th)[0], rtol=0, atol=0)
    rays = cam.unproject(uv)
    np.testing.assert_allclose(rays, p / np.linalg.norm(p, axis=1, keepdims=True), atol=1e-11)
    front = p[:, 2] > 0
    ideal = cam.undistort_points(uv, normalized=True)
    np.testing.assert_allclose(ideal[front], p[front, :2] / p[front, 2:], atol=1e-10)
    assert np.isnan(ideal[~front]).all()
    d = cam.to_dict()
    assert d["model"] == model and list(d)[2:] == list(get_model(model).param_names)


def test_camera_invalid_points_are_nan_and_bad_inputs_refused():
    assert CameraModel is Camera
    cam = CameraModel(PARAMS["pinhole"], SIZE)  # calib 0.1's call
    assert cam.model == "pinhole"
    uv = cam.project(np.array([[0.1, 0.2, 1.0], [0.0, 0.0, -1.0]]))
    assert np.isfinite(uv[0]).all() and np.isnan(uv[1]).all()
    ds = Camera(PARAMS["double-sphere"], SIZE, "double-sphere")
    assert np.isnan(ds.project(np.array([[0.0, 0.0, -1.0]]))).all()
    assert np.isnan(ds.unproject(np.array([[1e5, 1e5]]))).all()
    with pytest.raises(InputError, match="unknown camera model"):
        Camera(PARAMS["pinhole"], SIZE, "kb8")
    with pytest.raises(InputError, match="12 finite numbers"):
        Camera(PARAMS["pinhole"], SIZE, "rational")
    with pytest.raises(InputError, match="alpha"):
        Camera(np.r_[300, 300, 640, 480, 0.0, 1.5], SIZE, "double-sphere")
    with pytest.raises(InputError):
        Camera.from_opencv(np.eye(3), np.r_[0, 0, 0, 0, 0.1], SIZE, "fisheye")


def test_rational_cancelling_pair_finds_a_pole_zero_ring():
    P = np.polynomial.polynomial

    def params(num_roots, den_roots):
        # monic in s = r^2 at s = 0: c(s) = prod(1 - s / z)
        num = P.polyfromroots(num_roots) / np.prod(-np.asarray(num_roots))
        den = P.polyfromroots(den_roots) / np.prod(-np.asarray(den_roots))
        return np.r_[500.0, 500.0, 320.0, 240.0, num[1].real, num[2].real, 0.0, 0.0,
                     num[3].real, den[1].real, den[2].real, den[3].real]

    ring = params([0.2, -3.0, 9.0], [0.2 * (1 + 1e-4), -5.0, 20.0])
    assert cancelling_pair(ring, 0.3) == pytest.approx(0.2 * (1 + 1e-4), rel=1e-6)
    assert cancelling_pair(ring, 0.1) is None  # beyond the corners' radius
    apart = params([0.3, -3.0, 9.0], [0.2, -5.0, 20.0])  # a pole without its zero
    assert cancelling_pair(apart, 0.5) is None
    wide = params([0.2 + 0.2j, 0.2 - 0.2j, 9.0], [0.2 + 0.2j, 0.2 - 0.2j, 20.0])
    assert cancelling_pair(wide, 0.5) is None  # complex pair: a smooth bump, not a ring
    assert cancelling_pair(np.r_[500.0, 500, 320, 240, 0.1, 0.01, 0, 0, 0, 0, 0, 0], 1.0) is None
