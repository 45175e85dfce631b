"""Hand-eye calibration on seeded synthetic stations: against OpenCV's seven methods on the
same data, σ coverage, exactness without noise, degeneracy and bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from calib.errors import DegenerateError, InputError
from calib.extrinsics import HandEyeOptions, calibrate_hand_eye, poses_to_xyzq, read_pose_csv
from calib.extrinsics.uncertainty import pose_error
from calib.lie import se3, so3
from calib_datasets import handeye_synth

HAND_EYE = {"TSAI": cv2.CALIB_HAND_EYE_TSAI, "PARK": cv2.CALIB_HAND_EYE_PARK,
            "HORAUD": cv2.CALIB_HAND_EYE_HORAUD, "ANDREFF": cv2.CALIB_HAND_EYE_ANDREFF,
            "DANIILIDIS": cv2.CALIB_HAND_EYE_DANIILIDIS}
ROBOT_WORLD = {"SHAH": cv2.CALIB_ROBOT_WORLD_HAND_EYE_SHAH,
               "LI": cv2.CALIB_ROBOT_WORLD_HAND_EYE_LI}


def _cols(T):
    return list(T[:, :3, :3]), [t.reshape(3, 1) for t in T[:, :3, 3]]


def opencv_errors(d) -> dict[str, tuple[float, float]]:
    """(rotation deg, translation m) error of each OpenCV method on the same corners (PnP by
    cv2.solvePnP) and robot poses. Pitfalls minded: the method passed by keyword; eye-to-hand
    takes the inverted robot poses (base->gripper) and returns T_base_camera."""
    p = d.params
    K = np.array([[p[0], 0, p[2]], [0, p[1], p[3]], [0, 0, 1.0]])
    R_tc, t_tc = [], []
    for uv in d.corners:
        _, rv, tv = cv2.solvePnP(d.object_points, uv, K, p[4:])
        R_tc.append(cv2.Rodrigues(rv)[0])
        t_tc.append(tv)
    B = d.robot_measured if d.setup == "eye-in-hand" else se3.inverse(d.robot_measured)
    out = {}
    for name, m in HAND_EYE.items():
        R, t = cv2.calibrateHandEye(*_cols(B), R_tc, t_tc, method=m)
        out[name] = pose_error(se3.from_rt(R, t.ravel()), d.X)
    for name, m in ROBOT_WORLD.items():  # world = target, OpenCV's base->gripper = B^-1
        _, _, R, t = cv2.calibrateRobotWorldHandEye(R_tc, t_tc, *_cols(se3.inverse(B)),
                                                    method=m)
        out[name] = pose_error(se3.inverse(se3.from_rt(R, t.ravel())), d.X)
    return out


def ours(d, **kw):
    return calibrate_hand_eye(d.robot_measured, d.setup, board_points=d.object_points,
                              image_points=d.corners, params=d.params, **kw)


def _rms(v):
    return np.sqrt(np.mean(np.square(v), axis=0))


@pytest.mark.parametrize("setup", ["eye-in-hand", "eye-to-hand"])
def test_half_the_error_of_the_best_opencv_method(setup):
    """Corner noise 0.5 px, robot 0.1 mm / 0.01 deg, 20 stations, 6 seeds: RMS errors."""
    mine, theirs = [], {k: [] for k in (*HAND_EYE, *ROBOT_WORLD)}
    for seed in range(6):
        d = handeye_synth.stations(20, setup, 0.5, 0.1, 0.01, seed=seed)
        r = ours(d, options=HandEyeOptions(0.1, 0.01))
        assert r.converged
        mine.append(pose_error(r.X, d.X))
        for k, v in opencv_errors(d).items():
            theirs[k].append(v)
    rms = _rms(mine)
    best = np.min([_rms(v) for v in theirs.values()], axis=0)
    assert rms[0] <= 0.5 * best[0] and rms[1] <= 0.5 * best[1], (rms, best)


@pytest.mark.parametrize("setup", ["eye-in-hand", "eye-to-hand"])
def test_robot_noise_dominated_no_worse_than_opencv(setup):
    """Corner noise 0.3 px, robot 0.2 mm / 0.02 deg: the robot noise dominates and no method
    can halve the error (ours sits at its own σ); ours is still the best."""
    mine, theirs = [], {k: [] for k in (*HAND_EYE, *ROBOT_WORLD)}
    for seed in range(6):
        d = handeye_synth.stations(20, setup, 0.3, 0.2, 0.02, seed=10 + seed)
        mine.append(pose_error(ours(d).X, d.X))
        for k, v in opencv_errors(d).items():
            theirs[k].append(v)
    rms = _rms(mine)
    best = np.min([_rms(v) for v in theirs.values()], axis=0)
    assert np.all(rms <= best), (rms, best)


def test_sigma_covers_the_error():
    rng = np.random.default_rng(0)
    inside = total = 0
    for seed in range(20):
        setup = ("eye-in-hand", "eye-to-hand")[seed % 2]
        px, mm, deg = rng.uniform(0.2, 0.5), rng.uniform(0.1, 0.3), rng.uniform(0.01, 0.03)
        d = handeye_synth.stations(int(rng.integers(15, 26)), setup, px, mm, deg,
                                   seed=100 + seed)
        r = ours(d, options=HandEyeOptions(0.2, 0.02))  # stated noise, not the true one
        er, et = pose_error(r.X, d.X)
        inside += (er < 3 * r.std_rot_deg) + (et < 3 * r.std_trans_m)
        total += 2
    assert inside >= 0.95 * total, (inside, total)


@pytest.mark.parametrize("setup", ["eye-in-hand", "eye-to-hand"])
def test_exact_without_noise(setup):
    d = handeye_synth.stations(15, setup, 0.0, 0.0, 0.0, seed=4)
    r = ours(d)
    for T, truth in ((r.X, d.X), (r.Y, d.Y), (r.X_closed_form, d.X)):
        er, et = pose_error(T, truth)
        assert er < 1e-9 and et < 1e-11
    r = calibrate_hand_eye(d.robot_measured, setup, target_poses=d.target_poses)
    er, et = pose_error(r.X, d.X)
    assert er < 1e-9 and et < 1e-11
    assert set(r.to_dict()) >= {r.x_name, r.y_name, "std_rot_deg", "std_trans_m", "converged"}


@pytest.fixture(scope="module")
def data():
    return handeye_synth.stations(15, "eye-in-hand", 0.3, 0.2, 0.02, seed=7)


def test_rotations_about_one_axis_are_degenerate(data):
    ang = np.linspace(-1.0, 1.0, 12)
    B = se3.from_rt(so3.exp(np.c_[np.zeros(12), np.zeros(12), ang]),
                    np.c_[0.4 + 0.05 * np.cos(3 * ang), 0.05 * np.sin(ang), np.full(12, 0.45)])
    C = se3.compose(se3.compose(se3.inverse(data.X), se3.inverse(B)), data.Y)
    with pytest.raises(DegenerateError, match=r"share one axis \(gripper axis \[0.000, 0.000, "
                                              r"1.000\].*T_gripper_camera's translation"):
        calibrate_hand_eye(B, "eye-in-hand", target_poses=C)


def test_outlier_station_is_named(data):
    B = data.robot_measured.copy()
    B[5, :3, 3] += [0.004, -0.003, 0.002]  # a 5 mm logging error
    r = calibrate_hand_eye(B, "eye-in-hand", board_points=data.object_points,
                           image_points=data.corners, params=data.params,
                           station_names=[f"s{i}" for i in range(15)])
    assert r.outlier_stations == ("s5",)
    assert r.to_dict()["stations"][5]["outlier"] is True


def test_refine_intrinsics_recovers_a_wrong_focal_length(data):
    wrong = data.params.copy()
    wrong[:2] *= 1.01
    kw = dict(board_points=data.object_points, image_points=data.corners, params=wrong)
    fixed = calibrate_hand_eye(data.robot_measured, "eye-in-hand", **kw)
    free = calibrate_hand_eye(data.robot_measured, "eye-in-hand",
                              options=HandEyeOptions(refine_intrinsics=True), **kw)
    assert abs(free.params[0] / data.params[0] - 1) < 0.003
    assert pose_error(free.X, data.X)[1] < 0.5 * pose_error(fixed.X, data.X)[1]


def test_bad_input_one_line_each(data):
    B, C = data.robot_measured, data.target_poses
    cases = [
        (B[:2], C[:2], "2 station\\(s\\); hand-eye needs at least 3"),
        (np.concatenate([B[:5], B[2:3]]), C[:6], "stations 2 and 5 are identical"),
        (B * np.r_[1.0, 1, 1, 1.0][:, None] * 1.01, C, "pose 0 is not rigid"),
        (B, C[:10], "15 robot poses but 10 camera views"),
    ]
    for b, c, msg in cases:
        with pytest.raises(InputError, match=msg) as e:
            calibrate_hand_eye(b, "eye-in-hand", target_poses=c)
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="setup 'eye-on-hand'"):
        calibrate_hand_eye(B, "eye-on-hand", target_poses=C)


@pytest.mark.parametrize("setup", ["eye-in-hand", "eye-to-hand"])
def test_inconsistent_robot_and_camera_motions_are_refused(setup):
    """Robot poses in millimetres, inverted or given for the other setup, or a board in
    millimetres: each used to give a wrong transform with a result; the fitted scale
    between the two motions (1 within a few per cent on consistent stations, even at 2 px /
    3 mm / 0.3 deg noise) refuses them with the likely cause."""
    from calib.extrinsics.closed_form import motion_scale, park_martin, relative_motions

    d = handeye_synth.stations(15, setup, 0.3, 0.2, 0.02, seed=11)
    B, C = d.robot_measured, d.target_poses
    M = B if setup == "eye-in-hand" else se3.inverse(B)
    A, Bc = relative_motions(M, C)
    scale, info = motion_scale(A, Bc, park_martin(M, C)[0][:3, :3])
    assert abs(scale - 1) < 0.02 and info > 0.05  # the camera's moves carry the scale
    mm = B.copy()
    mm[:, :3, 3] *= 1e3
    board_mm = C.copy()
    board_mm[:, :3, 3] *= 1e3
    other = "eye-to-hand" if setup == "eye-in-hand" else "eye-in-hand"
    cases = [(mm, C, setup, r"in millimetres\? calib expects metres"),
             (se3.inverse(B), C, setup, "not inverted"),
             (B, C, other, "the setup is right"),
             (B, board_mm, setup, r"square size \(or are the target poses\) in millimetres")]
    for b, c, st, msg in cases:
        with pytest.raises(InputError, match="motions disagree.*" + msg):
            calibrate_hand_eye(b, st, target_poses=c)
    r = calibrate_hand_eye(B, setup, target_poses=C)  # the consistent stations pass
    assert pose_error(r.X, d.X)[1] < 3e-3


@pytest.mark.parametrize("setup", ["eye-in-hand", "eye-to-hand"])
def test_camera_turning_about_its_centre_is_not_refused(setup):
    """A camera turned about its own centre hardly moves (its translations carry no scale)
    while the robot's lever arm still determines X: the scale check must stay out of the
    way (it refused such stations before it asked whether the camera's moves carry the
    scale)."""
    rng = np.random.default_rng(5)
    X, Y = handeye_synth.TRUTH[setup]
    centre = np.array([0.12, 0.075, 0.0])  # the board's centre, 0.6 m in front
    R = so3.exp(np.c_[rng.normal(0, 0.3, (12, 2)), rng.uniform(-0.3, 0.3, 12)])
    C = se3.from_rt(R, np.einsum("sij,j->si", R, np.array([0, 0, 0.6]) - centre))
    M = se3.compose(se3.compose(Y, se3.inverse(C)), se3.inverse(X))
    B = M if setup == "eye-in-hand" else se3.inverse(M)
    r = calibrate_hand_eye(B, setup, target_poses=C)
    assert pose_error(r.X, X)[0] < 1e-6 and pose_error(r.X, X)[1] < 1e-6


def test_robot_noisier_than_stated_is_warned():
    """A robot 5x noisier than its stated noise: σ would be understated, so the result
    says so and names the fix; at the stated noise, or with the noise estimated, no
    warning."""
    noisy = handeye_synth.stations(15, "eye-in-hand", 0.3, 1.0, 0.1, seed=3)
    kw = dict(board_points=noisy.object_points, image_points=noisy.corners,
              params=noisy.params)
    r = calibrate_hand_eye(noisy.robot_measured, "eye-in-hand",
                           options=HandEyeOptions(0.2, 0.02), **kw)
    assert r.robot_noise_warning is not None
    assert "--estimate-robot-noise" in r.robot_noise_warning
    assert r.to_dict()["warnings"] == [r.robot_noise_warning]
    est = calibrate_hand_eye(noisy.robot_measured, "eye-in-hand",
                             options=HandEyeOptions(0.2, 0.02, estimate_robot_noise=True), **kw)
    assert est.robot_noise_warning is None
    for seed in range(4):
        d = handeye_synth.stations(15, "eye-in-hand", 0.3, 0.2, 0.02, seed=seed)
        ok = calibrate_hand_eye(d.robot_measured, "eye-in-hand", board_points=d.object_points,
                                image_points=d.corners, params=d.params,
                                options=HandEyeOptions(0.2, 0.02))
        assert ok.robot_noise_warning is None and ok.to_dict()["warnings"] == []


def test_pose_csv_layouts(tmp_path, data):
    rows = poses_to_xyzq(data.robot_true[:4])
    f = tmp_path / "p.csv"
    f.write_text("x,y,z,qx,qy,qz,qw\n" + "\n".join(",".join(f"{v:.17g}" for v in r)
                                                  for r in rows) + "\n")
    np.testing.assert_allclose(read_pose_csv(f), data.robot_true[:4], atol=1e-12)
    f.write_text("# whitespace\n" + "\n".join(" ".join(f"{v:.17g}" for v in r) for r in rows))
    np.testing.assert_allclose(read_pose_csv(f), data.robot_true[:4], atol=1e-12)
    rows[2, 6] *= 1.5
    f.write_text("\n".join(" ".join(map(str, r)) for r in rows))
    with pytest.raises(InputError, match="row 3 is not a rigid pose"):
        read_pose_csv(f)
    f.write_text("1 2 3\n")
    with pytest.raises(InputError, match="line 1 has 3 values, expected 7"):
        read_pose_csv(f)


def test_estimated_robot_noise_recovers_the_truth_and_the_coverage():
    """Stated robot noise 10x too small (0.03 mm / 0.003 deg; truth 0.3 mm / 0.03 deg): the
    fixed weighting misses by > 3σ; variance component estimation finds the noise and
    brings the error within 3σ and down."""
    est, inside, worse = [], 0, 0
    for seed in range(6):
        d = handeye_synth.stations(20, ("eye-in-hand", "eye-to-hand")[seed % 2], 0.3, 0.3,
                                   0.03, seed=300 + seed)
        fixed = ours(d, options=HandEyeOptions(0.03, 0.003))
        r = ours(d, options=HandEyeOptions(0.03, 0.003, estimate_robot_noise=True))
        est.append((r.robot_sigma_mm, r.robot_sigma_deg, r.sigma_observation))
        e, e0 = pose_error(r.X, d.X), pose_error(fixed.X, d.X)
        inside += (e[0] < 3 * r.std_rot_deg) + (e[1] < 3 * r.std_trans_m)
        worse += (e0[0] > 3 * fixed.std_rot_deg) + (e0[1] > 3 * fixed.std_trans_m)
        assert e[0] < e0[0] and e[1] < e0[1]
    med = np.median(est, axis=0)  # the rotation noise is the hardest to separate (35 %)
    assert np.allclose(med, [0.3, 0.03, 0.3], rtol=[0.25, 0.35, 0.1]), est
    assert inside == 12 and worse >= 8
    assert r.to_dict()["noise_model"]["estimated"] is True


def test_station_with_too_few_corners(data):
    uv = data.corners.copy()
    uv[3, 4:] = np.nan
    with pytest.raises(InputError, match="station 3: 4 board point\\(s\\) seen; need at least 6"):
        calibrate_hand_eye(data.robot_measured, "eye-in-hand", board_points=data.object_points,
                           image_points=uv, params=data.params)
    uv[3] = data.corners[3]
    uv[3, 10:20] = np.nan  # partial views are fine
    r = calibrate_hand_eye(data.robot_measured, "eye-in-hand", board_points=data.object_points,
                           image_points=uv, params=data.params)
    assert r.converged and pose_error(r.X, data.X)[1] < 3 * r.std_trans_m


def test_unsolved_covariance_is_a_one_line_error():
    from types import SimpleNamespace

    from calib.errors import NotConvergedError
    from calib.extrinsics.uncertainty import solved_covariance

    ok = SimpleNamespace(summary=SimpleNamespace(termination="converged", message=""),
                         covariance={"X": np.eye(6)}, covariance_rank_deficient=())
    assert solved_covariance(ok, "X", "T_gripper_camera").shape == (6, 6)
    bad = SimpleNamespace(summary=ok.summary, covariance={"X": np.eye(6)},
                          covariance_rank_deficient=("X",))
    with pytest.raises(DegenerateError, match="T_gripper_camera is not determined"):
        solved_covariance(bad, "X", "T_gripper_camera")
    failed = SimpleNamespace(summary=SimpleNamespace(termination="failure", message="NaN"),
                             covariance={}, covariance_rank_deficient=())
    with pytest.raises(NotConvergedError, match="refinement failed"):
        solved_covariance(failed, "X", "T_gripper_camera")
