"""The cached nearest-neighbour search is exact: it equals a fresh k-d tree query."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

from calib.lie import se3
from calib.registration.correspondences import NearestNeighbors
from calib.registration.spatial import morton_order


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), step=st.sampled_from([1e-1, 1e-2, 1e-3, 1e-5]),
       max_d=st.sampled_from([0.02, 0.1, 0.5]))
def test_cached_queries_equal_fresh_queries(seed, step, max_d):
    rng = np.random.default_rng(seed)
    target = rng.uniform(-1, 1, (3000, 3))
    source = rng.uniform(-1.2, 1.2, (2000, 3))
    nn = NearestNeighbors(target, workers=1)
    tree = cKDTree(target)
    T = np.eye(4)
    for _ in range(5):
        T = se3.exp(rng.normal(0, step, 6)) @ T
        pts = source @ T[:3, :3].T + T[:3, 3]
        idx, dist = nn.nearest(pts, max_d)
        d0, i0 = tree.query(pts, k=1, distance_upper_bound=max_d)
        found = np.isfinite(d0)
        np.testing.assert_array_equal(np.isfinite(dist), found)
        np.testing.assert_allclose(dist[found], d0[found], rtol=0, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000), every=st.sampled_from([2, 3, 4, 7]),
       step=st.sampled_from([1e-1, 1e-2, 1e-4]), max_d=st.sampled_from([0.02, 0.1, 0.5]))
def test_a_subset_cache_widened_to_the_whole_cloud_stays_exact(seed, every, step, max_d):
    """A coarse stage queries every ``every``-th point; the whole cloud then reuses what
    those queries found and asks only about its other points and the stale ones."""
    rng = np.random.default_rng(seed)
    target = rng.uniform(-1, 1, (3000, 3))
    source = rng.uniform(-1.2, 1.2, (2000, 3))
    nn = NearestNeighbors(target, workers=1)
    tree = cKDTree(target)
    rows = slice(0, None, every)
    for _ in range(2):
        nn.nearest(source[rows], max_d)
    nn.widen(rows, len(source))
    T = se3.exp(rng.normal(0, step, 6))
    pts = source @ T[:3, :3].T + T[:3, 3]
    for _ in range(2):  # the widened cache, then the cache of the whole cloud
        idx, dist = nn.nearest(pts, max_d)
        d0, _ = tree.query(pts, k=1, distance_upper_bound=max_d)
        found = np.isfinite(d0)
        np.testing.assert_array_equal(np.isfinite(dist), found)
        np.testing.assert_allclose(dist[found], d0[found], rtol=0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(pts - target[idx], axis=1)[found],
                                   d0[found], rtol=0, atol=1e-12)
    if step <= 1e-2 and max_d >= 0.1:  # small motions keep most of the subset's answers
        nn2 = NearestNeighbors(target, workers=1)
        nn2.nearest(source[rows], max_d)
        nn2.widen(rows, len(source))
        nn2.nearest(source, max_d)
        assert nn2.queried < len(source) - 0.5 * len(range(*rows.indices(len(source))))


def test_widen_after_other_queries_forgets_the_cache():
    nn = NearestNeighbors(np.random.default_rng(0).uniform(-1, 1, (500, 3)), workers=1)
    nn.widen(slice(0, None, 2), 100)  # nothing queried yet
    nn.nearest(np.zeros((30, 3)), 0.5)
    nn.widen(slice(0, None, 2), 100)  # 30 points are not every second of 100
    nn.nearest(np.zeros((100, 3)), 0.5)
    assert nn.queried == 100


def test_morton_order_is_a_permutation_that_groups_neighbours():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (5000, 3))
    o = morton_order(p)
    assert np.array_equal(np.sort(o), np.arange(len(p)))
    step_sorted = np.median(np.linalg.norm(np.diff(p[o], axis=0), axis=1))
    step_random = np.median(np.linalg.norm(np.diff(p, axis=0), axis=1))
    assert step_sorted < 0.25 * step_random


def test_normal_angle_and_mutual_rejection():
    """Two parallel walls 1 cm apart seen from one side: the angle test drops pairs with the
    perpendicular floor, mutual matching drops many-to-one pairs."""
    from calib.registration.correspondences import match

    rng = np.random.default_rng(0)
    target = np.r_[np.c_[rng.uniform(0, 1, (2000, 2)), np.zeros(2000)],      # floor z=0
                   np.c_[rng.uniform(0, 1, 2000), np.zeros(2000), rng.uniform(0, 1, 2000)]]
    tn = np.r_[np.tile([0, 0, 1.0], (2000, 1)), np.tile([0, 1.0, 0], (2000, 1))]
    src = np.c_[rng.uniform(0.1, 0.9, 500), np.full(500, 0.004), rng.uniform(0.0, 0.02, 500)]
    sn = np.tile([0, -1.0, 0], (500, 1))  # wall points (normal sign flipped: still the wall)
    nn = NearestNeighbors(target, workers=1)
    plain = match(nn, src, 0.05)
    floor = plain.target_index < 2000
    assert floor.any()  # some wall points near the corner match the floor
    angled = match(nn, src, 0.05, sn, tn, max_normal_angle_deg=30.0)
    assert np.all(angled.target_index >= 2000)
    assert len(angled.source_index) == np.sum(~floor)
    # mutual: a dense source against a sparse target, each target point claims one source
    dense = np.c_[rng.uniform(0, 1, (4000, 2)), np.full(4000, 0.001)]
    mut = match(nn, dense, 0.05, mutual=True)
    assert len(np.unique(mut.target_index)) == len(mut.target_index)
    assert len(mut.source_index) < len(match(nn, dense, 0.05).source_index)
