"""The compiled block kernels (calib/solver/_blocks.c) against numpy on the same input, and
their refusal of arrays whose sizes or indices do not match."""

import numpy as np
import pytest

from calib.solver import blocks
from calib.solver.schur_dense import PairProducts
from calib.solver.structure import BsrPattern, Segments


def _reference_sums(keys, values):
    """Per distinct key in ascending order: the sum of its rows (numpy, independent)."""
    uk = np.unique(keys)
    return np.stack([values[keys == k].sum(axis=0) for k in uk])


@pytest.mark.parametrize("n,m,a,b,span,sort", [
    (300, 2, 9, 3, 40, True), (300, 2, 3, 3, 150, False), (97, 1, 6, 6, 1, True),
    (50, 3, 2, 5, 50, False), (400, 2, 9, 9, 3, True), (1, 2, 4, 4, 5, True),
])
def test_segment_sums_match_numpy(n, m, a, b, span, sort):
    rng = np.random.default_rng(n + a)
    keys = rng.integers(0, span, n)
    if sort:
        keys = np.sort(keys)
    ja, jb, r = rng.normal(size=(n, m, a)), rng.normal(size=(n, m, b)), rng.normal(size=(n, m))
    seg = Segments(keys)
    gram = np.einsum("nma,nmb->nab", ja, jb)
    gemv = np.einsum("nma,nm->na", ja, r)
    want_gram = _reference_sums(keys, gram)
    want_gemv = _reference_sums(keys, gemv)
    got_keys = seg.keys
    o = np.argsort(got_keys)
    assert np.array_equal(got_keys[o], np.unique(keys))
    np.testing.assert_allclose(seg.sum_products(ja, jb)[o], want_gram, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(seg.weighted_sum(r, ja)[o], want_gemv, rtol=1e-12, atol=1e-12)
    # the kernels themselves, on the segment's own order and bounds
    got = blocks.segment_gram(ja, jb, seg.order, seg.bounds)
    np.testing.assert_allclose(got[o], want_gram, rtol=1e-12, atol=1e-12)
    got = blocks.segment_gemv(ja, r, seg.order, seg.bounds)
    np.testing.assert_allclose(got[o], want_gemv, rtol=1e-12, atol=1e-12)


def test_segment_kernels_refuse_bad_sizes_and_indices():
    rng = np.random.default_rng(0)
    ja = rng.normal(size=(10, 2, 3))
    bounds = np.array([0, 4, 10])
    with pytest.raises(ValueError, match="jb has 9 along axis 0"):
        blocks.segment_gram(ja, ja[:9], None, bounds)
    with pytest.raises(ValueError, match="bounds"):
        blocks.segment_gram(ja, ja, None, np.array([0, 11]))
    with pytest.raises(ValueError, match="decreases"):
        blocks.segment_gram(ja, ja, None, np.array([0, 6, 4, 10]))
    with pytest.raises(IndexError, match="order"):
        blocks.segment_gram(ja, ja, np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]), bounds)
    with pytest.raises(ValueError, match="int64"):
        blocks.segment_gram(ja, ja, None, bounds.astype(np.int32))
    with pytest.raises(ValueError, match="float64"):
        blocks.segment_gemv(ja.astype(np.float32), np.zeros((10, 2)), None, bounds)
    with pytest.raises(ValueError, match="out has 5 along axis 0"):
        blocks._k.segment_gram(ja, ja, None, bounds, np.empty((5, 3, 3)))
    with pytest.raises(ValueError, match="writable C-contiguous"):
        blocks._k.segment_gram(ja, ja, None, bounds, np.empty((3, 3, 2)).T)


def test_segment_kernels_read_strided_views_in_place():
    """A column slice of a Jacobian buffer and a transposed view give the sums of their
    copies (bit for bit: the same order of operations)."""
    rng = np.random.default_rng(1)
    J = rng.normal(size=(60, 2, 12))
    r = rng.normal(size=(60, 2))
    seg = Segments(rng.integers(0, 7, 60))
    ja, jb = J[:, :, :6], J[:, :, 9:]
    assert np.array_equal(blocks.segment_gram(ja, jb, seg.order, seg.bounds),
                          blocks.segment_gram(ja.copy(), jb.copy(), seg.order, seg.bounds))
    jt = J[:, :, :2].transpose(0, 2, 1)  # (60, 2, 2), strides of a transpose
    assert np.array_equal(blocks.segment_gemv(jt, r, seg.order, seg.bounds),
                          blocks.segment_gemv(jt.copy(), r, seg.order, seg.bounds))


@pytest.mark.parametrize("r,d", [(9, 3), (6, 3), (4, 2), (6, 6)])
def test_pair_products_match_numpy(r, d):
    """``sum V_a^T V_b`` per pair of row blocks that share an eliminated block, with
    ``V = L^-1 W^T``, against the dense product ``W C^-1 W^T`` formed by numpy."""
    rng = np.random.default_rng(r * d)
    n_rows, n_elim = 5, 40
    brow, bcol = [], []
    for p in range(n_elim):  # each eliminated block seen by 2-4 distinct row blocks
        rows = rng.choice(n_rows, rng.integers(2, 5), replace=False)
        brow += list(rows)
        bcol += [p] * len(rows)
    brow, bcol = np.array(brow), np.array(bcol)
    w = BsrPattern(brow, bcol, (n_rows, n_elim), r, d)
    w_sub = rng.normal(size=(len(brow), r, d))
    a = rng.normal(size=(n_elim, d, d))
    C = a @ a.transpose(0, 2, 1) + np.eye(d)
    l_inv = np.linalg.inv(np.linalg.cholesky(C))
    pairs = PairProducts(w, bcol)
    out = pairs.products(w_sub, l_inv, bcol)
    W = np.zeros((n_rows * r, n_elim * d))
    for k, (i, p) in enumerate(zip(brow, bcol, strict=True)):
        W[i * r:(i + 1) * r, p * d:(p + 1) * d] = w_sub[k]
    Cinv = np.zeros((n_elim * d, n_elim * d))
    for p in range(n_elim):
        Cinv[p * d:(p + 1) * d, p * d:(p + 1) * d] = np.linalg.inv(C[p])
    full = W @ Cinv @ W.T
    for q, (i, j) in enumerate(zip(pairs.bi, pairs.bj, strict=True)):
        np.testing.assert_allclose(out[q], full[i * r:(i + 1) * r, j * r:(j + 1) * r],
                                   rtol=1e-10, atol=1e-10)
    S = np.zeros_like(full)
    pairs.subtract_from(S, w_sub, l_inv, bcol)
    np.testing.assert_allclose(-S, full, rtol=1e-10, atol=1e-10)


def test_pair_products_refuse_an_index_out_of_range():
    w_sub, l_inv = np.zeros((3, 9, 3)), np.zeros((2, 3, 3))
    vt = np.empty((3, 3, 9))
    ok = np.array([0, 1, 1])
    with pytest.raises(IndexError, match="sub_pos"):
        blocks.pair_products(w_sub, l_inv, np.array([0, 1, 2]), ok, ok, np.array([0, 3]), vt)
    with pytest.raises(IndexError, match="tb"):
        blocks.pair_products(w_sub, l_inv, ok, ok, np.array([0, 1, 3]), np.array([0, 3]), vt)


@pytest.mark.parametrize("d", [1, 2, 3, 6, 9])
def test_inverse_cholesky_matches_numpy(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(30, d, d))
    C = a @ a.transpose(0, 2, 1) + 0.05 * np.eye(d)
    inv, linv, bad = blocks.inverse_cholesky(C)
    assert bad == -1
    np.testing.assert_allclose(inv, np.linalg.inv(C), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(linv, np.linalg.inv(np.linalg.cholesky(C)), rtol=1e-9,
                               atol=1e-9)
    assert np.all(np.triu(linv, 1) == 0.0)


def test_inverse_cholesky_names_the_first_bad_block():
    C = np.tile(np.eye(3), (6, 1, 1))
    C[4, 1, 1] = -1.0
    C[5, 0, 0] = np.nan
    assert blocks.inverse_cholesky(C)[2] == 4
    C[4] = np.eye(3)
    assert blocks.inverse_cholesky(C)[2] == 5
    C[2, 2, 2] = 0.0  # singular: not positive definite either
    assert blocks.inverse_cholesky(C)[2] == 2


def test_kernels_take_strided_indices_and_refuse_misaligned_data():
    """Index arrays of any stride give the sums of their contiguous copies; a float64 array
    whose data is not 8-byte aligned is refused (reading it is undefined in C)."""
    rng = np.random.default_rng(7)
    ja, jb = rng.normal(size=(50, 2, 3)), rng.normal(size=(50, 2, 4))
    seg = Segments(rng.integers(0, 7, 50))
    want = blocks.segment_gram(ja, jb, seg.order, seg.bounds)
    order2 = np.zeros(100, np.int64)
    order2[::2] = seg.order
    bounds2 = np.zeros(2 * len(seg.bounds), np.int64)
    bounds2[::2] = seg.bounds
    assert np.array_equal(blocks.segment_gram(ja, jb, order2[::2], bounds2[::2]), want)
    raw = np.zeros(50 * 2 * 3 * 8 + 1, np.uint8)
    shifted = np.frombuffer(raw.data, dtype=np.float64, count=300, offset=1).reshape(50, 2, 3)
    with pytest.raises(ValueError, match="aligned"):
        blocks.segment_gram(shifted, jb, seg.order, seg.bounds)


def test_se3_kernel_needs_its_series_and_may_write_in_place():
    from calib.lie import _series, se3

    rng = np.random.default_rng(8)
    x = se3.exp(rng.normal(size=(5, 6)))
    delta = rng.normal(size=(5, 6)) * 0.01
    want = se3.compose(se3.exp(delta), x)
    with pytest.raises(ValueError, match="series needs at least 1 rows"):
        blocks._k.se3_plus(x, delta, np.zeros((0, 3)), _series.SMALL_ANGLE, np.empty_like(x))
    blocks._k.se3_plus(x, delta, _series._RODRIGUES, _series.SMALL_ANGLE, x)  # out is x
    np.testing.assert_allclose(x, want, rtol=0, atol=1e-14)


def _dense_reference(jacs, cols, r, n):
    """``J^T J`` and ``J^T r`` of the rows scattered into a dense Jacobian (numpy)."""
    j = np.concatenate(jacs, axis=2)  # (N, m, W)
    rows, m, w = j.shape
    dense = np.zeros((rows * m, n + 1))  # column n collects the skipped (-1) entries
    c = np.where(cols < 0, n, cols)
    np.add.at(dense, (np.arange(rows * m)[:, None], np.repeat(c, m, axis=0)),
              j.reshape(rows * m, w))
    dense = dense[:, :n]
    return dense.T @ dense, dense.T @ r.ravel()


@pytest.mark.parametrize("rows,m,widths,n", [(19, 2, (6, 3, 3), 48), (200, 1, (6,), 6),
                                             (7, 3, (2, 4, 1, 5), 30), (1, 2, (9, 3), 12)])
def test_dense_gram_matches_a_dense_jacobian(rows, m, widths, n):
    """The tiny path's sums against the dense Jacobian's products, with skipped (-1)
    columns, a column repeated within a row (its products add up), strided Jacobians and
    accumulation onto what ``a`` and ``g`` held."""
    rng = np.random.default_rng(rows + n)
    w = sum(widths)
    wide = rng.normal(size=(rows, m, w + 3))
    jacs, start = [], 1
    for d in widths:  # column slices of a wider array: strided views
        jacs.append(wide[:, :, start:start + d])
        start += d
    cols = rng.integers(-1, n, size=(rows, w))
    cols[0, :2] = [n - 1, n - 1]
    r = rng.normal(size=(rows, m))
    a0, g0 = rng.normal(size=(n, n)), rng.normal(size=n)
    a, g = a0.copy(), g0.copy()
    blocks.dense_gram(jacs, cols, r, a, g)
    want_a, want_g = _dense_reference(jacs, cols, r, n)
    np.testing.assert_allclose(a - a0, want_a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g - g0, want_g, rtol=1e-12, atol=1e-12)
    a, g = np.zeros((n, n)), np.zeros(n)
    blocks.dense_gram(jacs, cols, r, a, g)
    assert np.array_equal(a, a.T)  # each product formed once and mirrored


def test_dense_gram_refuses_bad_columns_and_widths():
    rng = np.random.default_rng(2)
    j = rng.normal(size=(5, 2, 4))
    r, a, g = rng.normal(size=(5, 2)), np.zeros((6, 6)), np.zeros(6)
    cols = np.zeros((5, 4), np.int64)
    with pytest.raises(IndexError, match="outside"):
        blocks.dense_gram([j], np.full((5, 4), 6), r, a, g)
    with pytest.raises(IndexError, match="outside"):
        blocks.dense_gram([j], np.full((5, 4), -2), r, a, g)
    with pytest.raises(ValueError, match="columns"):
        blocks.dense_gram([j, j], cols, r, a, g)
    with pytest.raises(ValueError, match="a has"):
        blocks.dense_gram([j], cols, r, np.zeros((6, 5)), g)
    with pytest.raises(ValueError, match="jacobian"):
        blocks.dense_gram([j[:4]], cols, r, a, g)
    assert not a.any() and not g.any()


def test_all_finite_agrees_with_numpy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 2, 5))
    assert blocks.all_finite(x, x[:, :, ::2], np.zeros(0), np.float64(1.0))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[5, 1, 4] = bad
        assert not blocks.all_finite(x, y)
        assert blocks.all_finite(y[:, :, :4])  # the bad entry outside a strided view
        assert not blocks.all_finite(y[:, :, ::2])
    assert not blocks.all_finite(np.array([1, np.nan], np.float32))  # numpy's way for others
    big = rng.normal(size=(3000, 2, 6))  # long runs: read whole, or by numpy when strided
    assert blocks.all_finite(big, big[:, :, ::2], big[::-1])
    big[2999, 1, 4] = np.inf
    assert not blocks.all_finite(big) and not blocks.all_finite(big[:, :, ::2])
    assert not blocks.all_finite(big[:, :, :5], big) and blocks.all_finite(big[:, :, :4])
    for args in ((np.array([np.nan]), "x"), ("x", np.array([np.nan]))):  # in either order
        with pytest.raises(ValueError, match="float64"):
            blocks._k.all_finite(*args)


def test_dense_gram_takes_any_number_of_parts_and_refuses_rows_too_wide():
    """17 and 40 one-column Jacobians (a family with that many slots) sum as one wide one;
    a broadcast row whose scratch copy would overflow is refused, not written past."""
    rng = np.random.default_rng(9)
    for k in (17, 40):
        j = rng.normal(size=(6, 1, k))
        cols = rng.integers(-1, 10, size=(6, k))
        r = rng.normal(size=(6, 1))
        a, g = np.zeros((10, 10)), np.zeros(10)
        blocks.dense_gram([j[:, :, i:i + 1] for i in range(k)], cols, r, a, g)
        want_a, want_g = _dense_reference([j], cols, r, 10)
        np.testing.assert_allclose(a, want_a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(g, want_g, rtol=1e-12, atol=1e-12)
    m, d = 2 ** 40, 2 ** 19
    wide = [np.broadcast_to(1.0, (1, m, d))] * 4
    cols = np.full((1, 4 * d), -1, np.int64)
    with pytest.raises(MemoryError, match="too wide"):
        blocks.dense_gram(wide, cols, np.broadcast_to(1.0, (1, m)), np.zeros((1, 1)), np.zeros(1))
