"""Registration API on hostile or unlucky input (issue 15): rigid initial guesses, checks
that say when a result is not to be trusted, option ranges, degeneracy in words, duplicate
points, units, read-only results."""

from __future__ import annotations

import json

import numpy as np
import pytest
from bunny import pose_error

from calib.errors import InputError, NotConvergedError
from calib.lie import se3
from calib.registration import ICPOptions, check_init, register
from calib.registration.degeneracy import name_subspace
from calib.registration.result import format_length, format_lengths
from calib.registration.spatial import open3d, spacing
from calib_datasets.cloud_synth import wavy_surface

TRUTH = se3.exp(np.array([0.1, -0.05, 0.02, 0.02, -0.01, 0.03]))


@pytest.fixture(scope="module")
def wavy():
    pts = wavy_surface(3000)
    return pts, pts @ TRUTH[:3, :3].T + TRUTH[:3, 3]


def test_reflection_refused_rounded_accepted_scaled_refused(wavy):
    src, tgt = wavy
    refl = TRUTH.copy()
    refl[:3, :3] = refl[:3, :3] @ np.diag([1.0, 1.0, -1.0])
    with pytest.raises(InputError, match="reflection"):
        register(src, tgt, refl, max_correspondence_distance=1.0)
    res = register(src, tgt, np.round(TRUTH, 4), max_correspondence_distance=1.0)
    assert any("from orthonormal" in w and "nearest rotation" in w for w in res.warnings)
    r, t = pose_error(res.T_target_source, TRUTH)
    assert r < 1e-3 and t < 1e-4 and res.ok
    T = check_init(np.round(TRUTH, 6))
    assert abs(np.linalg.det(T[:3, :3]) - 1) < 1e-12
    assert np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3), atol=1e-12)
    with pytest.raises(InputError, match=r"0\.1 from orthonormal"):
        check_init(np.diag([1.05, 1.05, 1.05, 1.0]))
    with pytest.raises(InputError, match="last row"):
        check_init(np.r_[TRUTH[:3], [[0, 0, 0.5, 1]]])


def test_inverted_guess_is_a_problem_and_said(bundled):
    from bunny import pair

    src, tgt, G = pair(bundled / "bunny", "bun045.ply", "bun000.ply")
    res = register(src, tgt, np.linalg.inv(G), voxel_size=0.002)
    assert not res.ok and pose_error(res.T_target_source, G)[0] > 10
    assert any("may be inverted" in p for p in res.problems)
    assert res.to_dict()["ok"] is False


def test_line_is_free_sphere_names_three_rotations():
    t = np.linspace(0, 1, 400)
    line = np.c_[t, 2 * t, 0 * t]
    res = register(line, line, np.eye(4))
    d = res.degeneracy
    assert d.singular and not res.ok
    assert "rotation about [0.45, 0.89, 0.00]" in d.free_motions  # the line's own axis
    json.dumps(res.to_dict(), allow_nan=False)  # condition is inf: written as null
    assert res.to_dict()["degeneracy"]["condition"] is None
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3000, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    res = register(s, s, np.eye(4))
    assert set(res.degeneracy.free_motions) == {"rotation about x (roll)",
                                                "rotation about y (pitch)",
                                                "rotation about z (yaw)"}


def test_weak_directions_named_in_words():
    arms = np.array([1.0, 2.0, 4.0])
    v = np.r_[1.0, 0, 0, 0, 0, 1.0] / np.sqrt(2)  # a screw: x translation with z rotation
    words = name_subspace(v[:, None], arms)
    assert words == ("translation along x coupled with rotation about z (50% translation)",)
    diag = np.r_[0, 0, 0, 0.6, 0.8, 0][:, None]  # scaled rotation -> unscaled axis
    u = np.array([0.6 / 1.0, 0.8 / 2.0, 0])
    u /= np.linalg.norm(u)
    assert name_subspace(diag, arms) == (f"rotation about [{u[0]:.2f}, {u[1]:.2f}, 0.00]",)


@pytest.mark.parametrize(("kw", "name"), [
    ({"normal_max_nn": 0}, "normal_max_nn"), ({"voxel_size": 1e-11}, "voxel_size"),
    ({"loss_scale": 1e-300}, "loss_scale"), ({"max_correspondence_distance": 1e300},
                                             "max_correspondence_distance"),
    ({"max_iterations": 2.5}, "max_iterations"), ({"workers": 0}, "workers"),
    ({"min_fitness": 2.0}, "min_fitness"), ({"scales": (1.0, float("inf"))}, "scales"),
    ({"uncertainty_tolerance": 0.0}, "uncertainty_tolerance"),
    ({"uncertainty_tolerance": float("nan")}, "uncertainty_tolerance"),
])
def test_options_out_of_range_name_the_field(kw, name):
    with pytest.raises(InputError, match=name):
        ICPOptions(**kw)


def test_keywords_and_options_are_input_errors(wavy):
    src, tgt = wavy
    with pytest.raises(InputError, match="not both"):
        register(src, tgt, np.eye(4), ICPOptions(), voxel_size=0.01)
    with pytest.raises(InputError, match="unknown option.*bogus"):
        register(src, tgt, np.eye(4), bogus=1)
    with pytest.raises(InputError, match="voxel_size 1e-08 m: too small"):
        register(src * 100, tgt * 100, np.eye(4), voxel_size=1e-8)


def test_duplicated_points_and_units(wavy):
    src, tgt = wavy
    twice = np.r_[src, src]
    assert spacing(twice) == pytest.approx(spacing(src), rel=0.2)
    assert spacing(twice) > 0
    res = register(twice, tgt, np.eye(4))
    r, t = pose_error(res.T_target_source, TRUTH)
    assert res.ok and r < 1e-3 and t < 1e-4
    with pytest.raises(NotConvergedError, match=r"\(\d+x\): are they in the same units"):
        register(src * 1000, tgt, np.eye(4), max_correspondence_distance=0.05)


def test_results_are_read_only_and_compare_by_identity(wavy):
    src, tgt = wavy
    res = register(src, tgt, np.eye(4), max_correspondence_distance=1.0)
    for a in (res.T_target_source, res.covariance, res.information,
              res.degeneracy.eigenvalues):
        with pytest.raises(ValueError):
            a[0] = 1.0
    with pytest.raises(TypeError):
        res.history[0]["fitness"] = 0.0
    assert res == res and res != register(src, tgt, np.eye(4), max_correspondence_distance=1.0)
    assert isinstance(hash(res), int)


def test_lengths_printed_with_fitting_units_and_open3d_quiet():
    assert format_lengths([7.8e-4, 5.2e-4, 3e-4]) == "[0.78, 0.52, 0.3] mm"
    assert format_lengths([2e-6, 0, 0]) == "[2, 0, 0] µm"
    assert format_length(1.5) == "1.5 m"
    o3d = open3d()
    assert o3d.utility.get_verbosity_level() == o3d.utility.VerbosityLevel.Error
