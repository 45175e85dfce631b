"""Small synthetic problems for engine tests (a toy pinhole bundle adjustment)."""

from __future__ import annotations

import numpy as np

from calib.lie import se3
from calib.residuals.base import ResidualFamily


class NormalizedProjection(ResidualFamily):
    """``r = (P_xy / P_z) - obs`` with ``P = T_cam_world X``; slots (pose SE3, point R^3)."""

    residual_dim = 2

    def __init__(self, obs):
        self.obs = obs

    def evaluate(self, values, indices, jacobians=True):
        T = values[0][indices[0]]
        X = values[1][indices[1]]
        pc, jp = se3.act(T, X, jacobian=True)
        z = pc[:, 2]
        u = pc[:, :2] / z[:, None]
        r = u - self.obs
        if not jacobians:
            return r, None
        dudp = np.zeros((len(z), 2, 3))
        dudp[:, 0, 0] = dudp[:, 1, 1] = 1 / z
        dudp[:, :, 2] = -u / z[:, None]
        return r, [dudp @ jp, dudp @ T[:, :3, :3]]


def toy_bundle(n_cams=6, n_pts=60, noise=1e-3, seed=0):
    """Ground truth, perturbed start and observation indices of a toy BA problem."""
    rng = np.random.default_rng(seed)
    t_true = se3.exp(np.c_[rng.normal(0, 0.3, (n_cams, 3)), rng.normal(0, 0.1, (n_cams, 3))])
    t_true[:, 2, 3] += 5
    x_true = rng.uniform(-1, 1, (n_pts, 3))
    ci, pi = np.meshgrid(np.arange(n_cams), np.arange(n_pts), indexing="ij")
    keep = (rng.random(ci.size) < 0.8) | (ci.ravel() < 2)  # every point seen by >= 2 cameras
    ci, pi = ci.ravel()[keep], pi.ravel()[keep]
    pc = se3.act(t_true[ci], x_true[pi])
    obs = pc[:, :2] / pc[:, 2:] + rng.normal(0, noise, (len(ci), 2))
    t0 = se3.compose(se3.exp(rng.normal(0, 0.02, (n_cams, 6))), t_true)
    x0 = x_true + rng.normal(0, 0.05, x_true.shape)
    t0[0], x0[0] = t_true[0], x_true[0]  # the gauge-fixing blocks start at the truth
    return dict(t_true=t_true, x_true=x_true, t0=t0, x0=x0, cam=ci, pt=pi, obs=obs)


class FocalProjection(ResidualFamily):
    """``r = f * P_xy / P_z - obs``; slots (pose SE3, focal R^1, point R^3): per-camera
    intrinsics read at the same positions as the pose (an interleaved unit)."""

    residual_dim = 2

    def __init__(self, obs):
        self.obs = obs
        self._base = NormalizedProjection(np.zeros_like(obs))

    def evaluate(self, values, indices, jacobians=True):
        u, jac = self._base.evaluate([values[0], values[2]], [indices[0], indices[2]], jacobians)
        f = values[1][indices[1]][:, 0]
        r = f[:, None] * u - self.obs
        if not jacobians:
            return r, None
        return r, [f[:, None, None] * jac[0], u[:, :, None], f[:, None, None] * jac[1]]


def bal_problem(n_cameras: int, n_points: int, seed: int):
    """A synthetic BAL problem (3 observations a point) as an engine ``Problem`` with
    groups ``poses`` (SE3), ``intrinsics`` (f, k1, k2) and ``points`` (eliminated)."""
    from calib.bundle.ba import cameras_to_poses
    from calib.residuals.bal_projection import BALProjection
    from calib.solver import Euclidean, Problem, SE3Manifold
    from calib_datasets.bal_synth import synthetic_bal

    p, _ = synthetic_bal(n_cameras=n_cameras, n_points=n_points, obs_per_point=3, seed=seed)
    prob = Problem()
    prob.add_parameter("poses", cameras_to_poses(p.cameras), SE3Manifold())
    prob.add_parameter("intrinsics", p.cameras[:, 6:9], Euclidean(3))
    prob.add_parameter("points", p.points, Euclidean(3), eliminate=True)
    prob.add_residuals(BALProjection(p.observations),
                       [("poses", p.camera_index), ("intrinsics", p.camera_index),
                        ("points", p.point_index)])
    return prob
