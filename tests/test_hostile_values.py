"""Values numpy would quietly change (issue 15): complex numbers lose their imaginary part,
text becomes numbers, a non-rotation has a plausible logarithm. Each is refused, naming the
argument; real input is unaffected."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import calib
from calib.errors import InputError
from calib.io.validate import as_array
from calib.lie import se3, so3


@pytest.mark.parametrize("value", [np.array([1 + 0j, 2, 3]), np.array([1 + 2j, 2, 3]),
                                   [1, 2j, 3], np.array(["1", "2", "3"]), ["1_0", "2", "3"]])
def test_validator_refuses_complex_and_text(value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning on the way to the refusal
        with pytest.raises(InputError, match="^pts: not a numeric array"):
            as_array("pts", value, (3,))
        with pytest.raises(InputError, match="^phi: not a numeric array"):
            so3.exp(value)
    np.testing.assert_array_equal(as_array("pts", [1, 2, 3], (3,)), [1.0, 2.0, 3.0])


def test_api_entry_points_refuse_complex():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(100, 3))
    with pytest.raises(InputError, match="not a numeric array.*complex"):
        calib.register(pts + 1e-3j, pts, np.eye(4))
    obj = np.c_[rng.uniform(0, 0.2, (20, 2)), np.zeros(20)]
    img = rng.uniform(0, 400, (4, 20, 2)) * (1 + 0j)
    with pytest.raises(InputError, match="^image_points: not a numeric array.*complex"):
        calib.fit_intrinsics(obj, img, (640, 480))


@pytest.mark.parametrize(("m", "match"), [
    (2 * np.eye(3), r"max \|R\^T R - I\| = 3 .*det = 8"),
    (np.zeros((3, 3)), r"max \|R\^T R - I\| = 1 .*det = 0"),
    (np.diag([1.0, 1, -1]), r"a reflection, max \|R\^T R - I\| = 0 .*det = -1"),
])
def test_log_refuses_non_rotations(m, match):
    for fn, name in ((so3.log, "R"), (so3.to_quat, "R"), (so3.to_scipy, "R")):
        with pytest.raises(InputError, match=f"^{re.escape(name)}: not a rotation matrix: "
                           + match):
            fn(m)
    T = np.eye(4)
    T[:3, :3] = m
    with pytest.raises(InputError, match=r"^T\[:3, :3\]: not a rotation matrix: " + match):
        se3.log(T)
    batch = np.stack([np.eye(3), m])
    with pytest.raises(InputError, match=r"^R: not a rotation matrix \(matrix 1 of 2\)"):
        so3.log(batch)


def test_log_accepts_rounded_rotations():
    phi = np.array([0.3, -0.2, 0.5])
    r4 = np.round(so3.exp(phi), 4)  # as printed by logs and tf_echo
    np.testing.assert_allclose(so3.log(r4), phi, atol=2e-4)
    np.testing.assert_allclose(so3.log(so3.exp(phi)), phi, atol=1e-12)
