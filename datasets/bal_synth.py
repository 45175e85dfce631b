"""Seeded synthetic BAL problems at scale (1,000 cameras, 100,000 points, 500,000
observations by default) with ground truth and a perturbed start.

Cameras stand on a circle looking outwards at a ring of points, each point seen by the
``obs_per_point`` cameras nearest to it in angle (every third one at 1,000 cameras), so
the camera graph is sparse and banded like a real sequence. Pixel noise is Gaussian.
"""

from __future__ import annotations

import numpy as np

from calib.bundle import BALProblem
from calib.lie import se3, so3
from calib.residuals.bal_projection import BALProjection


def synthetic_bal(n_cameras: int = 1000, n_points: int = 100_000, obs_per_point: int = 5,
                  noise_px: float = 0.5, seed: int = 0) -> tuple[BALProblem, BALProblem]:
    """``(start, truth)``: the perturbed problem to solve and the noise-free ground truth."""
    rng = np.random.default_rng(seed)
    ang = np.linspace(0, 2 * np.pi, n_cameras, endpoint=False)
    centres = np.c_[20 * np.cos(ang), 20 * np.sin(ang), np.zeros(n_cameras)]
    pang = rng.uniform(0, 2 * np.pi, n_points)
    X = np.c_[25 * np.cos(pang), 25 * np.sin(pang), rng.uniform(-3, 3, n_points)]
    X += rng.normal(0, 1, X.shape)
    z = np.c_[np.cos(ang), np.sin(ang), np.zeros(n_cameras)]  # optical axis: outwards
    y = np.tile([0.0, 0.0, -1.0], (n_cameras, 1))
    x = np.cross(y, z)
    R_cw = np.stack([x, y, z], axis=1)  # rows: camera axes in world
    R_cw = np.diag([1.0, -1.0, -1.0]) @ R_cw  # BAL cameras look down -z
    t = -np.einsum("nij,nj->ni", R_cw, centres)
    intr = np.c_[np.full(n_cameras, 500.0), np.full(n_cameras, -0.01), np.full(n_cameras, 1e-4)]
    cam0 = np.round(pang / (2 * np.pi) * n_cameras).astype(np.int64)
    step = max(1, round(n_cameras / 333))  # neighbours within ~10 deg: points stay in view
    offsets = (np.arange(obs_per_point) - obs_per_point // 2) * step
    ci = ((cam0[:, None] + offsets[None, :]) % n_cameras).ravel()
    pi = np.repeat(np.arange(n_points), obs_per_point)
    order = np.argsort(ci, kind="stable")
    ci, pi = ci[order], pi[order]
    T = se3.from_rt(R_cw, t)
    fam = BALProjection(np.zeros((len(ci), 2)))
    clean, _ = fam.evaluate([T, intr, X], [ci, ci, pi], jacobians=False)
    obs = clean + rng.normal(0, noise_px, clean.shape)
    truth = BALProblem(np.c_[so3.log(R_cw), t, intr], X, ci, pi, clean)
    T0 = se3.compose(se3.exp(np.c_[rng.normal(0, 0.01, (n_cameras, 3)),
                                   rng.normal(0, 1e-3, (n_cameras, 3))]), T)
    X0 = X + rng.normal(0, 0.05, X.shape)
    start = BALProblem(np.c_[so3.log(T0[:, :3, :3]), T0[:, :3, 3], intr], X0, ci, pi, obs)
    return start, truth
