"""The registration's k-d tree (Open3D's, through KnnIndex) answers exactly what scipy's
cKDTree answers, in cKDTree's conventions; the registration path imports no scipy.spatial."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

from calib.registration.knn import KnnIndex
from calib.registration.spatial import open3d


def _clouds(seed: int, n: int = 4000, m: int = 1500):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 3)), rng.uniform(-1.3, 1.3, (m, 3))


@pytest.mark.parametrize("k", [1, 2, 7])
@pytest.mark.parametrize("bound", [np.inf, 0.05, 0.2])
def test_query_equals_ckdtree(k, bound):
    """Indices equal and distances equal bit for bit (random float clouds have no ties);
    beyond the bound: distance inf, index N; k = 1 gives 1-D arrays."""
    data, queries = _clouds(k)
    d0, i0 = cKDTree(data).query(queries, k=k, distance_upper_bound=bound)
    d1, i1 = KnnIndex(data).query(queries, k=k, distance_upper_bound=bound)
    assert d1.shape == d0.shape and i1.shape == i0.shape
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(d1, d0)
    if np.isfinite(bound):
        assert np.isinf(d1).any() and (i1 == len(data)).any()


def test_more_neighbours_than_points_and_empty_queries():
    data = np.random.default_rng(3).normal(size=(3, 3))
    q = np.zeros((4, 3))
    d0, i0 = cKDTree(data).query(q, k=5)
    d1, i1 = KnnIndex(data).query(q, k=5)
    np.testing.assert_array_equal(i1, i0)
    np.testing.assert_array_equal(d1, d0)
    d, i = KnnIndex(data).query(np.zeros((0, 3)), k=2)
    assert d.shape == (0, 2) and i.shape == (0, 2)


def test_workers_limit_open3d_during_the_query_only():
    """A positive worker count caps Open3D's thread pool for the query and restores it."""
    utility = open3d().utility
    before = utility.get_max_threads()
    data, queries = _clouds(5)
    seen = []

    class Spy(KnnIndex):
        def _threads(self, workers):
            seen.append(workers)
            return super()._threads(workers)

    index = Spy(data, workers=1)
    d1, i1 = index.query(queries, k=2)
    d2, i2 = index.query(queries, k=2, workers=-1)
    assert seen == [1, -1]
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(d1, d2)
    assert utility.get_max_threads() == before
    with index._threads(1):
        assert utility.get_max_threads() == 1
    assert utility.get_max_threads() == before


def test_registration_imports_no_scipy_spatial_or_sparse_linalg():
    """``scipy.spatial`` (0.13-0.15 s) and ``scipy.sparse.linalg`` (30-40 ms) are not imported
    by a registration, start to end (the CLI's start-up is part of its whole-process time)."""
    code = (
        "import sys, numpy as np\n"
        "from calib.registration import register\n"
        "from calib_datasets.cloud_synth import wavy_surface\n"
        "r = register(wavy_surface(2000, seed=1), wavy_surface(2000, seed=2), np.eye(4),\n"
        "             max_correspondence_distance=0.5)\n"
        "r.to_dict()\n"
        "print(sorted(m for m in ('scipy.spatial', 'scipy.sparse.linalg') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
