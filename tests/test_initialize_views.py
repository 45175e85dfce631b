"""Zhang's start on views with different numbers of corners: the collinearity test of all
views at once (segment sums) against the one-view test, and the degenerate view named."""

from __future__ import annotations

import numpy as np
import pytest

from calib.errors import DegenerateError
from calib.intrinsics.initialize import _collinear, _collinear_views, homographies


def _views(seed: int):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(30):
        n = int(rng.integers(4, 60))
        p = rng.uniform(0, 600, (n, 2))
        if k % 7 == 3:  # on a line (exactly, up to rounding)
            t = rng.uniform(0, 1, n)
            p = np.c_[100 + 400 * t, 50 + 300 * t]
        if k % 11 == 5:  # one point repeated
            p = np.repeat(p[:1], n, axis=0)
        out.append(p)
    return out


def test_collinear_views_equal_the_one_view_test():
    views = _views(1)
    want = np.array([_collinear(v[None])[0] for v in views])
    assert want.sum() >= 5  # lines and repeated points among them
    np.testing.assert_array_equal(_collinear_views(views), want)


def test_partial_views_homographies_name_the_degenerate_view():
    """Unequal views take the per-view path; the first collinear view is the one named."""
    rng = np.random.default_rng(2)
    H = np.array([[900.0, 20.0, 300.0], [-15.0, 880.0, 250.0], [0.05, -0.02, 1.0]])
    boards, pixels = [], []
    for k in range(6):
        b = rng.uniform(0, 0.2, (10 + k, 2))
        if k == 4:
            b[:, 1] = 0.1 + 0.5 * b[:, 0]
        q = np.c_[b, np.ones(len(b))] @ H.T
        boards.append(b)
        pixels.append(q[:, :2] / q[:, 2:])
    good = homographies(boards[:4], pixels[:4])
    np.testing.assert_allclose(good / good[:, 2:, 2:], np.broadcast_to(H, (4, 3, 3)),
                               rtol=1e-3)  # OpenCV solves in single precision
    with pytest.raises(DegenerateError) as err:
        homographies(boards, pixels)
    assert err.value.view == 4
