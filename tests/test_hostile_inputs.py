"""Hostile values at the public API found by the infrastructure review (issue 6).

Each case names the file it exercises; all were bugs once and are fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import calib
from calib.errors import CalibError
from calib.io.validate import as_array

ROOT_DATA = Path(__file__).resolve().parents[1] / "datasets"


def test_as_array_accepts_integral_values_for_integer_dtype():
    out = as_array("idx", np.array([0.0, 1.0, 2.0]), (-1,), dtype=np.int64)
    assert out.dtype == np.int64 and out.tolist() == [0, 1, 2]


def test_fractional_indices_are_refused():
    p = calib.read_bal(ROOT_DATA / "bal" / "dubrovnik-3-7-pre.txt")
    with pytest.raises(CalibError):
        calib.bundle_adjust(p.cameras, p.points, p.camera_index + 0.9, p.point_index,
                            p.observations, max_iterations=2)


def test_detect_chessboard_board_argument():
    """A (cols, rows) pair is accepted as the board; anything else is an InputError."""
    assert calib.detect_chessboard(np.zeros((480, 640), np.uint8), (9, 6)) is None
    with pytest.raises(CalibError):
        calib.detect_chessboard(np.zeros((480, 640), np.uint8), "9x6")


def test_corners_outside_the_image_are_refused():
    d = np.load(ROOT_DATA / "chessboard_left" / "corners_9x6.npz")
    with pytest.raises(CalibError):
        calib.fit_intrinsics(d["object_points"], d["image_points"], (10, 10))
