"""Registration: Jacobians, accuracy against Open3D and ground truth, far-from-origin
clouds, degeneracy naming, and failures that are never a silent identity."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from bunny import pair, pose_error

from calib.errors import DegenerateError, InputError, NotConvergedError
from calib.lie import se3
from calib.registration import ICPOptions, register
from calib.registration.icp import _median, coarse_size
from calib.residuals.point_to_plane import PointToPlane
from calib.residuals.point_to_point import PointToPoint
from calib.solver import SE3Manifold
from calib.testing import assert_jacobian_close, numeric_family_jacobians
from calib_datasets.cloud_synth import corridor, plane, wavy_surface

REG = o3d.pipelines.registration
MAX_D, VOXEL = 0.01, 0.001


@pytest.mark.parametrize("family", ["p2p", "p2pl"])
def test_residual_jacobians_numerically(family):
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(20, 3)), rng.normal(size=(20, 3))
    n = rng.normal(size=(20, 3))
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    fam = PointToPoint(p, q) if family == "p2p" else PointToPlane(p, q, n)
    T = se3.exp(np.array([0.3, -0.2, 0.1, 0.4, -0.3, 0.2]))[None]
    idx = [np.zeros(20, int)]
    _, jac = fam.evaluate([T], idx)
    assert_jacobian_close(jac[0], numeric_family_jacobians(fam, [T], idx, [SE3Manifold()])[0])


def _down(points, voxel=VOXEL, normals=False):
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).voxel_down_sample(voxel)
    if normals:
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
    return pcd


def _open3d_icp(src, tgt, init):
    return REG.registration_icp(src, tgt, MAX_D, init, REG.TransformationEstimationPointToPlane(),
                                REG.ICPConvergenceCriteria(max_iteration=30))


@pytest.fixture(scope="module")
def bunny_pairs(shared_datasets):
    folder = shared_datasets / "stanford_bunny"
    out = {}
    for s, t, perturb in (("bun045.ply", "bun000.ply", False), ("bun090.ply", "bun045.ply", True)):
        S, T, G = pair(folder, s, t)
        init = np.eye(4)
        if perturb:  # 5 deg / 7 mm from the truth, as in the reference run
            init = se3.exp(np.r_[np.full(3, 0.007 / np.sqrt(3)),
                                 np.full(3, np.radians(5) / np.sqrt(3))]) @ G
        out[s] = (_down(S), _down(T, normals=True), G, init)
    return out


@pytest.mark.parametrize("name", ["bun045.ply", "bun090.ply"])
def test_bunny_at_least_as_accurate_as_open3d(bunny_pairs, name):
    src, tgt, G, init = bunny_pairs[name]
    ref = _open3d_icp(src, tgt, init)
    res = register(np.asarray(src.points), np.asarray(tgt.points), init,
                   ICPOptions(max_correspondence_distance=MAX_D, max_iterations=30),
                   target_normals=np.asarray(tgt.normals))
    r_ours, t_ours = pose_error(res.T_target_source, G)
    r_o3d, t_o3d = pose_error(np.asarray(ref.transformation), G)
    assert r_ours <= r_o3d and t_ours <= t_o3d, (r_ours, t_ours, r_o3d, t_o3d)
    assert r_ours < 0.15  # GICP-level accuracy with point-to-plane
    # inlier RMSE, evaluated the same way (Open3D's evaluator) at each final pose
    ev_ours = REG.evaluate_registration(src, tgt, MAX_D, res.T_target_source)
    ev_o3d = REG.evaluate_registration(src, tgt, MAX_D, ref.transformation)
    assert ev_ours.inlier_rmse <= 1.01 * ev_o3d.inlier_rmse
    assert res.inlier_rmse == pytest.approx(ev_ours.inlier_rmse, rel=1e-6)
    assert res.fitness == pytest.approx(ev_ours.fitness, rel=1e-6)
    assert res.converged


def test_plain_least_squares_equals_open3d(bunny_pairs):
    """Without a robust loss the engine reproduces Open3D's point-to-plane ICP."""
    src, tgt, G, init = bunny_pairs["bun045.ply"]
    ref = _open3d_icp(src, tgt, init)
    res = register(np.asarray(src.points), np.asarray(tgt.points), init,
                   ICPOptions(max_correspondence_distance=MAX_D, loss=None),
                   target_normals=np.asarray(tgt.normals))
    r, t = pose_error(res.T_target_source, np.asarray(ref.transformation))
    assert r < 0.02 and t < 2e-5


def test_far_from_origin_same_accuracy(bunny_pairs):
    src, tgt, G, init = bunny_pairs["bun090.ply"]
    P, Q, N = np.asarray(src.points), np.asarray(tgt.points), np.asarray(tgt.normals)
    opts = ICPOptions(max_correspondence_distance=MAX_D)
    near = register(P, Q, init, opts, target_normals=N)
    off = np.array([1e5, 1e5, 0.0])
    S = np.eye(4)
    S[:3, 3] = off
    far = register(P + off, Q + off, S @ init @ np.linalg.inv(S), opts, target_normals=N)
    T_back = np.linalg.inv(S) @ far.T_target_source @ S
    r, t = pose_error(T_back, near.T_target_source)
    assert r < 1e-4 and t < 1e-6
    assert pose_error(T_back, G)[0] == pytest.approx(pose_error(near.T_target_source, G)[0],
                                                     abs=1e-3)


def test_basin_of_convergence_at_least_open3d(bunny_pairs):
    """20 random starts (up to 20 deg, 10% of the extent): we reach the truth at least as
    often as Open3D's point-to-plane ICP (the bench runs 100)."""
    src, tgt, G, _ = bunny_pairs["bun045.ply"]
    P, Q, N = np.asarray(src.points), np.asarray(tgt.points), np.asarray(tgt.normals)
    extent = float(np.linalg.norm(np.ptp(Q, axis=0)))
    rng = np.random.default_rng(42)
    ok_ours = ok_o3d = 0
    for _ in range(20):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        init = se3.exp(np.r_[d * rng.uniform(0, 0.1 * extent),
                             axis * np.radians(rng.uniform(0, 20))]) @ G
        for T, is_ours in ((register(P, Q, init, ICPOptions(max_correspondence_distance=MAX_D),
                                     target_normals=N).T_target_source, True),
                           (np.asarray(_open3d_icp(src, tgt, init).transformation), False)):
            r, t = pose_error(T, G)
            good = r < 0.5 and t < 0.01 * extent
            ok_ours += good and is_ours
            ok_o3d += good and not is_ours
    # Open3D's least-squares fixed point on this pair is itself ~0.8 deg from the truth, so
    # it scores 0 here; the robust loss puts ours at ~0.1 deg from every start.
    assert ok_ours >= ok_o3d and ok_ours >= 19, (ok_ours, ok_o3d)


@pytest.mark.parametrize(("cloud", "free"), [
    (plane, {"translation along x", "translation along y", "rotation about z (yaw)"}),
    (corridor, {"translation along x"}),
])
def test_degeneracy_named(cloud, free):
    pts = cloud()
    T = se3.exp(np.array([0.05, -0.03, 0.02, 0.01, -0.01, 0.02]))
    res = register(pts, pts @ T[:3, :3].T + T[:3, 3], np.eye(4),
                   ICPOptions(max_correspondence_distance=0.5))
    assert res.degeneracy.degenerate
    assert set(res.degeneracy.free_motions) == free
    assert any("degenerate" in w for w in res.warnings)


def test_well_constrained_surface_is_not_degenerate():
    pts = wavy_surface(5000)
    T = se3.exp(np.array([0.1, -0.05, 0.02, 0.02, -0.01, 0.03]))
    res = register(pts, pts @ T[:3, :3].T + T[:3, 3], np.eye(4),
                   ICPOptions(max_correspondence_distance=1.0))
    assert not res.degeneracy.degenerate
    r, t = pose_error(res.T_target_source, T)
    assert r < 1e-3 and t < 1e-4
    assert np.all(np.diag(res.covariance) > 0)


def test_failures_are_never_a_silent_identity():
    pts = wavy_surface(2000)
    with pytest.raises(NotConvergedError, match="correspondences"):
        register(pts, pts + [100.0, 0, 0], np.eye(4), ICPOptions(max_correspondence_distance=0.1))
    with pytest.raises(InputError):
        register(np.zeros((0, 3)), pts, np.eye(4))
    bad = pts.copy()
    bad[5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        register(bad, pts, np.eye(4))
    with pytest.raises(DegenerateError):
        register(np.ones((50, 3)), pts, np.eye(4))
    with pytest.raises(InputError, match="smaller voxel_size"):
        register(pts, pts, np.eye(4), ICPOptions(voxel_size=100.0))
    with pytest.raises(InputError, match="rigid"):
        register(pts, pts, np.diag([2.0, 1, 1, 1]))
    for kw, msg in (({"loss": "bogus"}, "unknown loss"), ({"method": "plane"}, "method"),
                    ({"max_normal_angle_deg": 120.0}, "angle"), ({"voxel_size": -1.0}, "voxel"),
                    ({"max_correspondence_distance": float("nan")}, "distance"),
                    ({"scales": ()}, "scales")):
        with pytest.raises(InputError, match=msg):
            ICPOptions(**kw)


@pytest.mark.parametrize("kw", [{"max_normal_angle_deg": 30.0}, {"mutual": True},
                                {"method": "point-to-point", "max_normal_angle_deg": 45.0},
                                {"scales": (4.0, 2.0, 1.0)}, {"loss": "cauchy", "loss_scale": 0.01},
                                {"loss": "tukey", "loss_scale": 0.05}])
def test_options_reach_the_truth(kw):
    pts = wavy_surface(4000)
    T = se3.exp(np.array([0.1, -0.05, 0.02, 0.02, -0.01, 0.03]))
    opts = ICPOptions(max_correspondence_distance=1.0, max_iterations=60, **kw)
    res = register(pts, pts @ T[:3, :3].T + T[:3, 3], np.eye(4), opts)
    r, t = pose_error(res.T_target_source, T)
    assert r < 1e-3 and t < 1e-4, (r, t)
    assert res.fitness > 0.9


def test_coarse_subset_stage_same_answer_fewer_queries():
    rng = np.random.default_rng(5)
    tgt = wavy_surface(12000, noise=0.002, seed=1)
    T = se3.exp(np.array([0.15, -0.1, 0.05, 0.01, -0.015, 0.03]))
    src = (wavy_surface(12000, noise=0.002, seed=2) - T[:3, 3]) @ T[:3, :3]
    src = src[rng.permutation(len(src))]
    runs = {cp: register(src, tgt, np.eye(4), ICPOptions(max_correspondence_distance=0.5,
                                                         coarse_points=cp))
            for cp in (None, 2000, 20000)}  # 20000, the default: a quarter, 3000 points
    queried = {cp: sum(h["queried"] for h in res.history) for cp, res in runs.items()}
    for cp in (2000, 20000):
        r, t = pose_error(runs[cp].T_target_source, runs[None].T_target_source)
        assert r < 1e-3 and t < 1e-4
        assert pose_error(runs[cp].T_target_source, T)[0] < 0.01
        coarse = [h for h in runs[cp].history if h["scale"] == "coarse"]
        assert coarse and coarse[0]["queried"] == min(cp, 3000)
        assert queried[cp] < 0.8 * queried[None], queried
        assert runs[cp].converged


@pytest.mark.parametrize("n", [1, 2, 7, 10, 9999, 10000])
def test_median_is_numpys(n):
    x = np.random.default_rng(n).normal(size=n)
    assert _median(x) == np.median(x)
    assert _median(np.abs(x - _median(x))) == np.median(np.abs(x - np.median(x)))


@pytest.mark.parametrize("n, cp, size", [(12000, 20000, 3000), (7999, 20000, 0),
                                         (8000, 20000, 2000), (100000, 20000, 20000),
                                         (4000, 1000, 1000), (3999, 1000, 0),
                                         (10**6, None, 0)])
def test_coarse_subset_size(n, cp, size):
    assert coarse_size(n, cp) == size
