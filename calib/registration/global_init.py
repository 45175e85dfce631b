"""Global initial alignment without a prior: FPFH features + RANSAC (open3d's pipeline)."""

from __future__ import annotations

import numpy as np

from .spatial import open3d, to_o3d, voxel_downsample


def fpfh_ransac(source: np.ndarray, target: np.ndarray, voxel: float, seed: int = 0,
                max_iterations: int = 100000, confidence: float = 0.999
                ) -> tuple[np.ndarray, float]:
    """``(T_target_source, fitness)`` from FPFH feature matching with RANSAC.

    Both clouds are downsampled to ``voxel``; normals use a ``2 voxel`` radius and features a
    ``5 voxel`` radius (the values of open3d's global registration tutorial).
    """
    o3d = open3d()
    reg = o3d.pipelines.registration
    o3d.utility.random.seed(seed)
    feats = []
    pcds = []
    for pts in (source, target):
        pcd = to_o3d(voxel_downsample(pts, voxel))
        pcd.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        feats.append(reg.compute_fpfh_feature(
            pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=5 * voxel, max_nn=100)))
        pcds.append(pcd)
    dist = 1.5 * voxel
    res = reg.registration_ransac_based_on_feature_matching(
        pcds[0], pcds[1], feats[0], feats[1], True, dist,
        reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9),
         reg.CorrespondenceCheckerBasedOnDistance(dist)],
        reg.RANSACConvergenceCriteria(max_iterations, confidence))
    return np.asarray(res.transformation, dtype=float), float(res.fitness)
