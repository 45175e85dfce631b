"""The registration speed-ups change no answer: Z-ordering the target (with its normals),
one shared k-d tree, single-key cell ids, strided noise centres."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from calib.lie import se3
from calib.registration import register
from calib.registration.covariance import cluster_cells, plane_noise
from calib.registration.spatial import bounds, morton_order, spacing
from calib_datasets.cloud_synth import wavy_surface


def test_shuffled_target_with_its_normals_gives_the_same_pose():
    """The target (and the normals given with it) is reordered internally: any input order
    of the same target gives the same pose, and that pose is the truth."""
    tgt = wavy_surface(4000, noise=0.001, seed=3)
    G = se3.exp(np.array([0.05, -0.03, 0.02, 0.01, -0.02, 0.015]))
    src = se3.act(se3.inverse(G), wavy_surface(4000, noise=0.001, seed=4))
    _, idx = cKDTree(tgt).query(tgt, k=12)
    nb = tgt[idx] - tgt[idx].mean(axis=1, keepdims=True)
    normals = np.linalg.eigh(np.einsum("nki,nkj->nij", nb, nb))[1][:, :, 0]
    perm = np.random.default_rng(0).permutation(len(tgt))
    a = register(src, tgt, np.eye(4), target_normals=normals, max_correspondence_distance=0.5)
    b = register(src, tgt[perm], np.eye(4), target_normals=normals[perm],
                 max_correspondence_distance=0.5)
    np.testing.assert_allclose(a.T_target_source, b.T_target_source, atol=1e-9)
    assert np.linalg.norm(se3.log(a.T_target_source @ se3.inverse(G))) < 2e-3


def _cells_rowwise(points, clusters=48):
    """The reference: the same cell-size search with a row-wise unique of the cell
    coordinates (the implementation before the single-key speed-up)."""
    lo = points.min(axis=0)
    ext = float(np.max(np.ptp(points, axis=0)))
    size = ext / 4.0
    for _ in range(12):
        _, cid = np.unique(np.floor((points - lo) / size).astype(np.int64), axis=0,
                           return_inverse=True)
        g = int(cid.max()) + 1
        if clusters / 2 <= g <= 2 * clusters:
            break
        size *= np.sqrt(g / clusters)
    return cid.ravel()


def test_cluster_cells_equals_rowwise_unique():
    """The single int64 key gives exactly the ids of a row-wise unique of the cell
    coordinates (same lexicographic order), on a surface and on a bunny-like blob."""
    rng = np.random.default_rng(0)
    for pts in (wavy_surface(5000, seed=5), rng.normal(size=(3000, 3)) * [0.05, 0.03, 0.04]):
        cid = cluster_cells(pts)
        np.testing.assert_array_equal(cid, _cells_rowwise(pts))
        assert 24 <= int(cid.max()) + 1 <= 96


def test_plane_noise_with_shared_tree_and_order_matches_own():
    """Given the cloud's k-d tree and its Morton order, the noise estimate is the one
    computed from scratch on the same points."""
    pts = wavy_surface(8000, noise=0.002, seed=6)
    srt = np.ascontiguousarray(pts[morton_order(pts)])
    own = plane_noise(srt, ordered=True)
    shared = plane_noise(srt, tree=cKDTree(srt), ordered=True)
    assert shared == own
    unsorted = plane_noise(pts)  # sorts itself: the same centres, so the same value
    assert abs(unsorted - own) <= 1e-9 * own
    assert own > 0
    assert spacing(srt, tree=cKDTree(srt)) == spacing(srt)


def test_deferred_covariance_is_computed_once_and_survives_copies():
    """register() defers the covariance to its first read (its calibration against real
    errors is tested in test_registration_covariance.py): computed once, cached, read-only,
    positive definite, the same for a re-run, a copy and a dataclasses.replace."""
    import copy
    import dataclasses

    from calib.registration.result import RegistrationResult

    tgt = wavy_surface(3000, noise=0.002, seed=7)
    G = se3.exp(np.array([0.04, -0.02, 0.01, 0.01, -0.01, 0.02]))
    src = se3.act(se3.inverse(G), wavy_surface(3000, noise=0.002, seed=8))
    res = register(src, tgt, np.eye(4), max_correspondence_distance=0.5)
    assert "_deferred_covariance" in res.__dict__ and "covariance" not in res.__dict__
    calls = []
    deferred = res.__dict__["_deferred_covariance"]
    object.__setattr__(res, "_deferred_covariance", lambda: calls.append(1) or deferred())
    cov = res.covariance
    assert res.covariance is cov and calls == [1]
    assert "_deferred_covariance" not in res.__dict__
    assert not cov.flags.writeable and cov.shape == (6, 6)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    again = register(src, tgt, np.eye(4), max_correspondence_distance=0.5)
    np.testing.assert_array_equal(copy.copy(again).covariance, cov)
    third = register(src, tgt, np.eye(4), max_correspondence_distance=0.5)
    moved = dataclasses.replace(third, problems=("x",),
                                covariance=third.__dict__["_deferred_covariance"])
    assert isinstance(moved, RegistrationResult)
    np.testing.assert_array_equal(moved.covariance, cov)
    np.testing.assert_array_equal(third.to_dict()["covariance"], cov)
    with pytest.raises(AttributeError):
        _ = res.no_such_field


def _spacing_k8(points, sample=2000, seed=0, k=8):
    """The reference: one k-neighbour query for every sampled point (before the two-step
    query), first positive distance, median over the points that have one."""
    sel = np.random.default_rng(seed).choice(len(points), min(sample, len(points)),
                                              replace=False)
    d, _ = cKDTree(points).query(points[sel], k=k)
    pos = d > 0
    first = d[np.arange(len(d)), np.argmax(pos, axis=1)]
    return float(np.median(first[pos.any(axis=1)]))


def test_spacing_two_step_query_and_bounds_equal_the_plain_ones():
    """Two neighbours first, k only for points with a copy: the same spacing as one k-query,
    also when a third of the points are stored two or three times; bounds are min/max."""
    pts = wavy_surface(6000, noise=0.001, seed=9)
    copies = np.r_[pts, pts[:2000], pts[:1000]]
    for cloud in (pts, copies):
        assert spacing(cloud) == _spacing_k8(cloud)
        lo, hi = bounds(cloud)
        np.testing.assert_array_equal(lo, cloud.min(axis=0))
        np.testing.assert_array_equal(hi, cloud.max(axis=0))
    assert spacing(copies) > 0


def test_normals_equal_open3d_legacy_estimate():
    """The tensor normal estimate is Open3D's legacy PointCloud.estimate_normals (hybrid
    radius/max_nn search) up to sign: on a noisy surface and for isolated points, which
    both give (0, 0, 1)."""
    from calib.registration.spatial import estimate_normals, open3d

    o3d = open3d()
    rng = np.random.default_rng(10)
    pts = np.r_[wavy_surface(5000, noise=0.002, seed=10), rng.normal(size=(20, 3)) * 100]
    radius = 3 * spacing(pts)
    ref = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    ref.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=radius, max_nn=30))
    ref = np.asarray(ref.normals)
    ours = estimate_normals(pts, radius, 30)
    assert ours.shape == pts.shape
    np.testing.assert_allclose(np.abs(np.sum(ours * ref, axis=1)), 1.0, atol=1e-9)
    np.testing.assert_array_equal(np.abs(ours[-20:]), np.tile([0.0, 0.0, 1.0], (20, 1)))


def test_morton_codes_by_byte_table_equal_the_bit_twiddled_ones():
    from calib.registration.spatial import _spread16, _spread_bits

    v = np.arange(2**16, dtype=np.uint64)
    np.testing.assert_array_equal(_spread16(v), _spread_bits(v))
