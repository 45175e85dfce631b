"""``write_plots``: every PNG is written and readable, the figures say what they show (axis
labels, units, magnification, per-view RMS), and the distortion map masks every pixel where
the model folds or cannot be inverted, with its colour scale from the valid pixels only."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest

from calib.camera.pinhole import CameraModel, undistort_normalized
from calib.intrinsics import FitOptions, fit_intrinsics, plots
from calib.intrinsics.diagnostics import check_distortion

PNGS = ["residuals.png", "per_view_rms.png", "histogram.png", "coverage.png",
        "distortion.png", "projection_uncertainty.png"]
# strong barrel distortion that folds inside a 1280x960 image: with s = r^2,
# d r_d / d r = 1 - 3 s + 1.5 s^2 vanishes at s = 1 - 1/sqrt(3) (r = 0.650), and the image
# corners reach a normalized radius of 0.889
FOLD = np.array([900.0, 900.0, 640.0, 480.0, -1.0, 0.3, 0.0, 0.0, 0.0])
FOLD_R = np.sqrt(1 - 1 / np.sqrt(3))
FOLD_RD = FOLD_R * (1 - FOLD_R ** 2 + 0.3 * FOLD_R ** 4)  # largest distorted radius


@pytest.fixture(scope="module")
def result(shared_datasets):
    """8 views of the shared synthetic set (0.3 px noise), one of them spoiled by 4 px
    noise so that outlier rejection drops it."""
    d = np.load(shared_datasets / "synthetic" / "calib_100x140.npz")
    img = d["image_points"][:8].copy()
    img[3] += np.random.default_rng(0).normal(0, 4.0, img[3].shape)
    res = fit_intrinsics(d["object_points"], img, tuple(int(v) for v in d["image_size"]),
                         FitOptions(reject_outliers=True),
                         view_names=[f"img_{i:02d}.png" for i in range(8)])
    assert res.rejected_views == ("img_03.png",)
    assert res.camera.image_size == (1280, 960)
    return res


@pytest.fixture()
def close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def _figure(name, result):
    return dict(plots.PLOTS)[name](result)


def test_write_plots_writes_readable_pngs(result, tmp_path):
    paths = plots.write_plots(result, tmp_path / "plots")
    assert [p.name for p in paths] == PNGS
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(PNGS)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        img = cv2.imread(str(p))
        assert img is not None, p
        h, w, c = img.shape
        assert c == 3 and 450 <= h <= 1200 and 800 <= w <= 2700, (p.name, img.shape)
        assert img.std() > 20, p.name  # drawn, not a blank canvas


def test_every_plot_labels_its_axes(result, close_figures):
    units = {"residuals.png": ("u (px)", "v (px)"), "coverage.png": ("u (px)", "v (px)"),
             "distortion.png": ("u (px)", "v (px)"),
             "projection_uncertainty.png": ("u (px)", "v (px)"),
             "per_view_rms.png": ("view", "RMS reprojection error (px)"),
             "histogram.png": ("corner reprojection error |e| (px)", "number of corners")}
    for name in PNGS:
        fig = _figure(name, result)
        ax = fig.axes[0]
        assert (ax.get_xlabel(), ax.get_ylabel()) == units[name], name
        assert ax.get_title(loc="left"), name
        caption = [t.get_text() for t in ax.texts if t.get_text().startswith("verdict")]
        assert len(caption) == 1 and f"verdict {result.verdict}  |  7/8 views" in caption[0]
        assert f"fx {result.camera.params[0]:.1f}" in caption[0], name
    cbar = {"coverage.png": "corners per cell", "distortion.png": "distortion displacement (px)",
            "projection_uncertainty.png": "projection σ at infinity (px"}
    for name, label in cbar.items():
        fig = _figure(name, result)
        assert fig.axes[1].get_ylabel().startswith(label), name


def test_residual_arrows_magnification_in_words_and_coloured_by_view(result, close_figures):
    fig = _figure("residuals.png", result)
    ax = fig.axes[0]
    m = re.fullmatch(r"Reprojection residuals, arrows magnified (\d+)x", ax.get_title("left"))
    assert m, ax.get_title("left")
    q = ax.collections[0]
    err = np.linalg.norm(result.residuals, axis=1)
    gain = np.hypot(q.U, q.V).sum() / err.sum()
    assert int(m.group(1)) == round(gain) and gain > 10
    # one colour per used view, as many as views used (7 of 8)
    colors = np.unique(np.round(q.get_facecolors(), 6), axis=0)
    assert len(colors) == int(result.views_used.sum()) == 7
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum(t.startswith("img_03.png  rejected") for t in legend) == 1
    assert len(legend) == 8


def test_per_view_rms_bars(result, close_figures):
    fig = _figure("per_view_rms.png", result)
    ax = fig.axes[0]
    used = result.views_used
    bars = ax.containers[0]
    np.testing.assert_allclose([b.get_height() for b in bars], result.per_view_rms_px[used])
    np.testing.assert_allclose([b.get_x() + b.get_width() / 2 for b in bars],
                               np.flatnonzero(used))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(result.view_names)
    overall = [ln for ln in ax.lines if np.allclose(ln.get_ydata(), result.rms_px)]
    assert len(overall) == 1
    assert not np.isfinite(result.per_view_rms_px[3])
    # the rejected view: a hatched column with its RMS before rejection (off the scale here)
    before = dict(getattr(result, "rejected_view_rms_px", None) or {}).get("img_03.png")
    label = "rejected" if before is None else f"rejected: {before:.2f} px before"
    assert label in [t.get_text() for t in ax.texts]
    hatched = [b for c in ax.containers[1:] for b in c if b.get_hatch()]
    assert [b.get_x() + b.get_width() / 2 for b in hatched] == [3.0]
    assert hatched[0].get_height() <= ax.get_ylim()[1]


def test_coverage_dots_are_visible(result, close_figures):
    fig = _figure("coverage.png", result)
    dots = fig.axes[0].collections[0]
    assert len(dots.get_offsets()) == len(result.points_px)
    assert dots.get_sizes().min() >= 3.0  # points^2: ~3 px dots at 120 dpi, not 1-px ','


def test_distortion_map_of_a_well_behaved_camera(shared_datasets):
    d = np.load(shared_datasets / "synthetic" / "calib_100x140.npz")
    K = d["K_gt"]
    params = np.r_[K[0, 0], K[1, 1], K[0, 2], K[1, 2], d["dist_gt_k1k2p1p2k3"]]
    size = tuple(int(v) for v in d["image_size"])
    m = plots.distortion_map(params, size)
    dc = check_distortion(params, size)
    assert dc.monotonic and dc.invertible and m.first_fold_radius is None
    assert not m.invalid.any()
    assert m.displacement_px.shape == (120, 160) == m.invalid.shape
    # the same displacement as check_distortion's (its grid reaches the corner pixels' edges)
    assert 0.95 * dc.max_displacement_px <= m.vmax <= dc.max_displacement_px
    assert m.vmin == 0.0 and np.nanmin(m.displacement_px) < 0.5  # ~0 at the centre


def test_distortion_map_of_the_fit_masks_its_extrapolated_fold(result):
    """7 central views: k1..k3 extrapolate to a fold in the image corners (verdict FAIL);
    check_distortion's 2400 px beyond the fold stay out of the colour scale."""
    dc = check_distortion(result.camera.params, result.camera.image_size)
    assert not dc.monotonic and result.verdict == "FAIL"
    m = plots.distortion_map(result.camera.params, result.camera.image_size)
    assert 0.002 < m.invalid.mean() < 0.05
    assert m.invalid[0, 0] and m.invalid[-1, -1] and not m.invalid[60, 80]
    assert m.vmax < 0.2 * dc.max_displacement_px


def test_distortion_map_masks_the_fold_and_scales_on_valid_pixels(result, close_figures):
    size = (1280, 960)
    dc = check_distortion(FOLD, size)
    assert not dc.monotonic and abs(dc.first_fold_radius - FOLD_R) < 2e-3
    m = plots.distortion_map(FOLD, size)
    assert m.first_fold_radius == dc.first_fold_radius
    uu, vv = np.meshgrid(m.u, m.v)
    rd = np.hypot((uu - 640) / 900, (vv - 480) / 900)  # distorted radius of each cell
    # valid exactly inside the disk the unfolded model reaches (margin: a cell), masked outside
    inside, outside = rd < FOLD_RD - 0.01, rd > FOLD_RD + 0.01
    assert inside.sum() > 5000 and outside.sum() > 10000
    assert not m.invalid[inside].any()
    assert m.invalid[outside].all()
    assert np.isnan(m.displacement_px[m.invalid]).all()
    assert np.isfinite(m.displacement_px[~m.invalid]).all()
    # Newton alone converges on many cells beyond the fold, to rays on the far branch of
    # r_d(r) hundreds of px away: the speckles a convergence-only mask would keep
    xd = np.stack([(uu.ravel() - 640) / 900, (vv.ravel() - 480) / 900], axis=1)
    xy, ok = undistort_normalized(xd, FOLD)
    naive = np.where(ok, np.linalg.norm(xy - xd, axis=1) * 900, np.nan).reshape(uu.shape)
    speckles = ok.reshape(uu.shape) & m.invalid
    assert speckles.sum() > 1000 and np.nanmax(naive[speckles]) > 500
    # the colour scale: from the valid cells only, at most the displacement at the fold
    assert m.vmax == np.nanmax(m.displacement_px[~m.invalid])
    assert 200 < m.vmax <= (FOLD_R - FOLD_RD) * 900 + 1e-6 < 0.5 * np.nanmax(naive)
    # and the figure uses them: masked cells drawn as the hatched grey background
    folded = dataclasses.replace(result, camera=CameraModel(FOLD, size))
    fig = _figure("distortion.png", folded)
    im = fig.axes[0].images[0]
    assert im.get_clim() == (0.0, m.vmax)
    assert np.array_equal(np.ma.getmaskarray(im.get_array()), m.invalid)
    assert "unusable" in fig.axes[0].get_title("left")
