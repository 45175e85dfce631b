"""Exact k-nearest-neighbour queries on a fixed cloud: Open3D's k-d tree (nanoflann).

Registration needs open3d anyway (normals, voxels, FPFH), so its k-d tree costs no import,
where ``scipy.spatial`` costs 0.13-0.15 s of CPU at every start of ``calib register-clouds``.
Its queries run on Open3D's persistent TBB thread pool: no thread start per call, so a
10k-point query uses every core too. Indices and distances equal ``scipy.spatial.cKDTree``'s
bit for bit (the squared distance is summed in the same order; the square root is exact
rounding), apart from the choice among exactly equidistant neighbours: on quantized scans
(the bunny's voxel-downsampled grid: 114 of 20,746 queries) that pick differs, and so does a
registration's result, by 1e-11..4e-10 relative on the bunny pairs.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .spatial import open3d


class KnnIndex:
    """The ``(N, 3)`` cloud ``points`` (metres) indexed once for k-nearest-neighbour queries.

    ``workers``: threads for the queries (-1: Open3D's default, all cores); a positive
    count limits Open3D's thread pool during each query and restores it afterwards.
    :meth:`query` follows ``scipy.spatial.cKDTree.query``'s conventions, so functions given
    a ``tree`` accept either.
    """

    def __init__(self, points: np.ndarray, workers: int = -1) -> None:
        self.o3d = open3d()
        self.data = np.ascontiguousarray(points, dtype=float)
        self.n = len(self.data)
        self.workers = workers
        self._nns = self.o3d.core.nns.NearestNeighborSearch(
            self.o3d.core.Tensor.from_numpy(self.data))
        if not self._nns.knn_index():
            raise RuntimeError("open3d could not build the k-d tree")

    def query(self, x: np.ndarray, k: int = 1, distance_upper_bound: float = np.inf,
              workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of the ``k`` nearest points of each row of ``x (M, 3)``,
        nearest first: ``(M,)`` arrays for ``k = 1``, else ``(M, k)``. A neighbour not
        strictly closer than ``distance_upper_bound`` (or missing: ``k > N``) has distance
        ``inf`` and index ``N``. ``workers`` overrides the index's thread count."""
        x = np.ascontiguousarray(x, dtype=float).reshape(-1, 3)
        m, kk = len(x), min(k, self.n)
        if m == 0 or kk == 0:
            d, i = np.full((m, k), np.inf), np.full((m, k), self.n, dtype=np.int64)
        else:
            with self._threads(self.workers if workers is None else workers):
                idx, d2 = self._nns.knn_search(self.o3d.core.Tensor.from_numpy(x), kk)
            d, i = np.sqrt(d2.numpy()), idx.numpy()
            if kk < k:
                d = np.hstack([d, np.full((m, k - kk), np.inf)])
                i = np.hstack([i, np.full((m, k - kk), self.n, dtype=i.dtype)])
            if distance_upper_bound < np.inf:
                far = ~(d < distance_upper_bound)
                d[far] = np.inf
                i[far] = self.n
        return (d[:, 0], i[:, 0]) if k == 1 else (d, i)

    @contextmanager
    def _threads(self, workers: int):
        """Open3D's thread limit set to ``workers`` (positive) for the block."""
        utility = self.o3d.utility
        if workers is None or workers < 1 or workers == utility.get_max_threads():
            yield
            return
        before = utility.get_max_threads()
        utility.set_max_threads(workers)
        try:
            yield
        finally:
            utility.set_max_threads(before)
