"""One camera-calibration pipeline for 1..N cameras (calib.intrinsics.problem): fit_intrinsics
and fit_rig with one camera give the same answer, within its σ of the truth; the core's σ
against an independent inverse; the solver's joint information against the dense Schur
complement, its per-group blocks and its covariance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from calib.intrinsics import fit_intrinsics
from calib.intrinsics.problem import covariance_from_information
from calib.residuals.base import ResidualFamily
from calib.rig import RigOptions, fit_rig
from calib.solver import Euclidean, Problem, SolverOptions, solve
from calib_datasets.rig_synth import DEFAULTS, make_rig


def _mahalanobis(err: np.ndarray, cov: np.ndarray, free: np.ndarray) -> float:
    e = err[free]
    return float(e @ np.linalg.solve(cov[np.ix_(free, free)], e))


@pytest.mark.parametrize(("model", "seed", "opts"), [
    ("pinhole", 0, {}),
    ("pinhole", 1, {"fix": ("k3",), "loss": "huber", "loss_scale": 1.0}),
    ("fisheye", 2, {}),
])
def test_rig_of_one_is_fit_intrinsics_and_both_cover_the_truth(model, seed, opts):
    """Synthetic views with known intrinsics (0.2 px noise): fit_rig with one camera and
    fit_intrinsics agree to 1e-9 in parameters, σ, RMS and per-view RMS (one start, one
    core, one σ scaling), and the truth lies within the fit's σ (Mahalanobis distance
    below the 99.9% chi-square quantile of the free parameters)."""
    s = make_rig(1, 20, seed=seed, model=model)
    views = s.cameras["cam0"]
    keys = sorted(views)
    one = fit_intrinsics(s.board, [views[k] for k in keys], s.image_sizes["cam0"],
                         model=model, **opts)
    backwards = {"cam0": {k: views[k] for k in keys[::-1]}}  # rows back in the given order
    rig = fit_rig(backwards, s.board, s.image_sizes, RigOptions(models=s.models, **opts))
    cam = rig.cameras[0]
    std1, std2 = (np.array(list(d.values())) for d in (one.std, cam.std))
    assert np.allclose(cam.params, one.params, rtol=1e-9, atol=0)
    assert np.allclose(std2, std1, rtol=1e-9, atol=0)
    assert np.allclose(cam.covariance, one.covariance, rtol=1e-9, atol=1e-12 * std1.max() ** 2)
    assert cam.rms_px == pytest.approx(one.rms_px, rel=1e-9)
    assert rig.rms_px == pytest.approx(one.rms_px, rel=1e-9)
    assert np.allclose(list(cam.per_view_rms_px.values()), one.per_view_rms_px, rtol=1e-9)
    for f in range(len(keys)):
        assert np.allclose(rig.residuals[rig.frame == f], one.residuals[one.view_index == f],
                           rtol=1e-9, atol=1e-12)
    free = np.flatnonzero(std1 > 0)
    assert len(free) == len(std1) - len(opts.get("fix", ()))
    d2 = _mahalanobis(one.params - s.params["cam0"], one.covariance, free)
    assert d2 < chi2.ppf(0.999, len(free)), d2


def test_covariance_from_information_against_an_independent_inverse():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(40, 6)) * np.array([1e3, 1e3, 10, 10, 1e-2, 1e-4])  # mixed units
    info = a.T @ a
    cov, loose, full = covariance_from_information(info, [4])
    free = [0, 1, 2, 3, 5]
    assert full and loose == []
    assert np.all(cov[4] == 0) and np.all(cov[:, 4] == 0)
    ref = np.linalg.inv(info[np.ix_(free, free)])
    assert np.allclose(cov[np.ix_(free, free)], ref, rtol=1e-9, atol=0)
    # a coordinate with a twin (columns 2 and 3 equal): both undetermined, the rest not
    b = a.copy()
    b[:, 3] = b[:, 2]
    _, loose, full = covariance_from_information(b.T @ b, [])
    assert not full and loose == [2, 3]


def test_joint_information_has_the_cross_blocks_and_inverts_to_the_covariance():
    """The solver's joint information of two reduced groups: its diagonal blocks are the
    per-group information, and its inverse is the engine's covariance of both groups."""
    rng = np.random.default_rng(0)
    n = 30
    X = rng.normal(size=(n, 3))
    A = rng.normal(size=(n, 3, 3))

    C = rng.normal(size=(n, 3, 1))

    class Lin(ResidualFamily):  # r = A_n x + b - X_n + C_n y_n; y (n, 1) eliminated
        residual_dim = 3

        def evaluate(self, values, indices, jacobians=True):
            x, b, y = values[0][0], values[1][0], values[2][indices[2]]
            r = np.einsum("nij,j->ni", A, x) + b - X + C[:, :, 0] * y
            if not jacobians:
                return r, None
            return r, [A, np.tile(np.eye(3), (n, 1, 1)), C]

    p = Problem()
    p.add_parameter("x", np.zeros((1, 3)), Euclidean(3))
    p.add_parameter("b", np.zeros((1, 3)), Euclidean(3))
    p.add_parameter("y", np.zeros((n, 1)), Euclidean(1), eliminate=True)
    p.set_constant("b", coords=[1])
    p.add_residuals(Lin(), [("x", np.zeros(n, int)), ("b", np.zeros(n, int)),
                            ("y", np.arange(n))])
    res = solve(p, SolverOptions(max_iterations=5, information=(("x", "b"), "x", "b"),
                                 covariance=("x", "b")))
    J = res.information[("x", "b")]
    assert J.shape == (6, 6)
    assert np.allclose(J[:3, :3], res.information["x"], rtol=1e-12)
    assert np.allclose(J[3:, 3:], res.information["b"], rtol=1e-12)
    assert np.all(J[4] == 0) and np.abs(J[:3, 3:]).max() > 0.1  # held coordinate; coupling
    cov, _, full = covariance_from_information(J, [4])
    assert full
    assert np.allclose(cov[:3, :3], res.covariance["x"], rtol=1e-8)
    assert np.allclose(cov[3:, 3:], res.covariance["b"], rtol=1e-8)
    # against the dense Gauss-Newton matrix with y eliminated by hand
    Jd = np.zeros((3 * n, 6 + n))
    for k in range(n):
        Jd[3 * k:3 * k + 3, :3], Jd[3 * k:3 * k + 3, 3:6] = A[k], np.eye(3)
        Jd[3 * k:3 * k + 3, 6 + k] = C[k, :, 0]
    H = Jd.T @ Jd
    S = H[:6, :6] - H[:6, 6:] @ np.linalg.solve(H[6:, 6:], H[6:, :6])
    S[4], S[:, 4] = 0, 0
    assert np.allclose(J, S, rtol=1e-9, atol=1e-9 * np.abs(S).max())


def test_held_distortion_starts_at_zero_in_the_rig_as_in_fit_intrinsics():
    """``fix`` holds a distortion term at 0 (RigOptions, ``calib fit-rig --fix``, and the
    Kalibr export's pinhole:k3) also when the start comes from given intrinsics with that
    term non-zero: the core sets held terms to the model's neutral value for every caller."""
    s = make_rig(2, 0, seed=5, yaw_deg=5, pair_frames=12,
                 params=np.r_[DEFAULTS["pinhole"][:8], 0.0])  # true k3 = 0
    given = {n: np.r_[p[:8], 0.05] for n, p in s.params.items()}  # a non-zero k3 start
    res = fit_rig(s.cameras, s.board, s.image_sizes, RigOptions(intrinsics=given, fix=("k3",)))
    for cam, name in zip(res.cameras, s.cameras, strict=True):
        assert cam.params[8] == 0.0 and cam.std["k3"] == 0.0
        err = np.abs(cam.params[:8] - s.params[name][:8]) / np.array(
            [cam.std[k] for k in cam.param_names[:8]])
        assert err.max() < 4.0, (name, err)
