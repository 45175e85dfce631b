"""σ of the cameras' intrinsics after bundle adjustment covers the actual error (seeded
synthetic scenes with known truth)."""

from __future__ import annotations

import numpy as np

from calib.bundle import bundle_adjust
from calib.bundle.uncertainty import intrinsics_std
from calib.lie import se3, so3
from calib.residuals.bal_projection import BALProjection


def _scene(seed: int, n_cam: int = 8, n_pts: int = 100, noise: float = 0.5):
    """Cameras 6 m from a 2 m cube of points, looking at its centre (BAL: down -z); every
    camera sees every point. Returns (start cameras, start points, ci, pi, obs, true cameras)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n_pts, 3))
    poses = []
    for _ in range(n_cam):
        d = rng.normal(size=3)
        d[2] = abs(d[2]) + 0.5
        c = 6 * d / np.linalg.norm(d)
        z = c / np.linalg.norm(c)
        x = np.cross([0.0, 0.0, 1.0], z)
        x /= np.linalg.norm(x)
        R = np.stack([x, np.cross(z, x), z])
        poses.append(se3.from_rt(R, -R @ c))
    T = np.stack(poses)
    K = np.tile([500.0, -0.05, 0.01], (n_cam, 1))
    ci, pi = np.repeat(np.arange(n_cam), n_pts), np.tile(np.arange(n_pts), n_cam)
    clean, _ = BALProjection(np.zeros((len(ci), 2))).evaluate([T, K, X], [ci, ci, pi], False)
    truth = np.c_[so3.log(T[:, :3, :3]), T[:, :3, 3], K]
    start = truth.copy()
    start[:, 6] += rng.normal(0, 5, n_cam)
    return (start, X + rng.normal(0, 0.01, X.shape), ci, pi,
            clean + rng.normal(0, noise, clean.shape), truth)


def test_intrinsics_std_covers_the_truth():
    """50 seeds x 8 cameras: z = (estimate - truth) / σ has an RMS in [0.7, 1.5] for each of
    f, k1, k2."""
    z = []
    for seed in range(50):
        start, X0, ci, pi, obs, truth = _scene(seed)
        res = bundle_adjust(start, X0, ci, pi, obs)
        sd = intrinsics_std(res.cameras, res.points, ci, pi, obs)
        z.append((res.cameras[:, 6:9] - truth[:, 6:9]) / sd)
    rms = np.sqrt(np.mean(np.square(z), axis=(0, 1)))
    assert np.all((rms >= 0.7) & (rms <= 1.5)), rms


def test_intrinsics_std_unseen_camera_is_nan_and_large_problems_are_skipped():
    start, X0, ci, pi, obs, _ = _scene(0)
    keep = ci != 3
    sd = intrinsics_std(start, X0, ci[keep], pi[keep], obs[keep])
    assert np.isnan(sd[3]).all() and np.isfinite(np.delete(sd, 3, axis=0)).all()
    many = np.tile(start, (700, 1))
    assert intrinsics_std(many, X0, ci, pi, obs) is None
