"""``calib fit-intrinsics``: camera intrinsics and distortion from chessboard images."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import numpy as np
import typer

from calib.errors import DegenerateError, InputError
from calib.intrinsics import Chessboard, FitOptions, detect_images, fit_intrinsics
from calib.io.camera_files import FORMATS, write_camera
from calib.io.validate import check_file

from .common import check_outputs, info, progress_bar, write_json

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _expand(inputs: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXT)
        elif any(c in item for c in "*?["):
            paths += sorted(Path(q) for q in glob.glob(item))
        else:
            paths.append(p)
    if not paths:
        raise InputError(f"no images found in {' '.join(inputs)} (PNG, JPG, BMP, TIFF)")
    return paths


def _load_corners(path: Path, board: Chessboard | None):
    """``(names, object_points, image_points, image_size)`` from an NPZ or JSON file.

    Keys: ``image_points`` (V, N, 2), ``image_size`` (or ``image_size_wh``), and either
    ``object_points`` (N, 3) or a board: ``pattern_cols_rows`` + ``square_size_m`` in the
    file, or ``--board``/``--square``.
    """
    check_file(path, "corners file")
    try:
        if path.read_bytes()[:2] == b"PK":  # NPZ is a zip archive
            d = dict(np.load(path, allow_pickle=False))
        else:
            d = json.loads(path.read_text())
    except Exception as exc:
        raise InputError(f"{path}: not an NPZ or JSON corners file ({exc})") from None
    try:
        if not isinstance(d, dict):
            raise TypeError("expected a mapping of arrays")
        img = [np.asarray(v, dtype=float) for v in d["image_points"]]
        if "object_points" in d:
            obj = np.asarray(d["object_points"], dtype=float)
        elif "pattern_cols_rows" in d and "square_size_m" in d:
            cols, rows = (int(v) for v in np.asarray(d["pattern_cols_rows"]).ravel())
            obj = Chessboard(cols, rows, float(d["square_size_m"])).object_points()
        elif board is not None:
            obj = board.object_points()
        else:
            raise KeyError("object_points (or give --board and --square)")
        size = d.get("image_size", d.get("image_size_wh"))
        if size is None:
            raise KeyError("image_size")
        size = tuple(int(v) for v in np.asarray(size, dtype=float).ravel()[:2])
        names = [str(n) for n in d.get("names", [f"view{i}" for i in range(len(img))])]
    except KeyError as exc:
        raise InputError(f"{path}: missing key {exc} (need image_points, object_points, "
                         "image_size)") from None
    except (TypeError, ValueError, IndexError, AttributeError) as exc:
        raise InputError(f"{path}: corners file has the wrong structure ({exc})") from None
    return names, obj, img, size


def register(app: typer.Typer) -> None:
    @app.command("fit-intrinsics")
    def fit_intrinsics_cmd(
        images: list[str] = typer.Argument(None, help="Image folder, glob or files."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 9x6."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        output: Path = typer.Option(..., "-o", "--output", help="Camera file to write."),
        fmt: str = typer.Option("opencv", "--format", help="opencv | ros | json."),
        report: Path = typer.Option(None, "--report", help="JSON report to write."),
        plot: Path = typer.Option(None, "--plot", help="Folder for PNG plots."),
        corners: Path = typer.Option(None, "--corners", help="Pre-detected corners (NPZ/JSON)."),
        method: str = typer.Option("classic", "--detector", help="classic | sb."),
        fix_k3: bool = typer.Option(False, "--fix-k3", help="Hold k3 = 0."),
        fix_aspect: bool = typer.Option(False, "--fix-aspect", help="Square pixels: fx = fy."),
        zero_tangent: bool = typer.Option(False, "--zero-tangent", help="Hold p1 = p2 = 0."),
        fix_pp: bool = typer.Option(False, "--fix-principal-point",
                                    help="Hold cx, cy at the image centre."),
        loss: str = typer.Option("none", "--loss", help="none|huber|cauchy|soft_l1|tukey."),
        loss_scale: float = typer.Option(1.0, "--loss-scale", help="Loss scale in pixels."),
        reject: bool = typer.Option(False, "--reject-outliers",
                                    help="Drop outlier corners and views, then refit."),
        workers: int = typer.Option(0, "--workers", help="Detection threads (0: all cores)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds allowed per image."),
        strict: bool = typer.Option(False, "--strict", help="Exit 3 when the verdict is FAIL."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Fit fx, fy, cx, cy, k1, k2, p1, p2, k3 from chessboard images or corners."""
        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        check_outputs(output, report)
        b = Chessboard.parse(board, square) if board and square else None
        if corners is not None:
            names, obj, img, size = _load_corners(corners, b)
        else:
            if not images:
                raise InputError("give board images (folder, glob or files) or --corners FILE")
            if b is None:
                raise InputError("--board COLSxROWS and --square METRES are required with images")
            paths = _expand(images)
            with progress_bar(len(paths), "detecting corners", quiet) as advance:
                dets = detect_images(paths, b, method, workers or None, timeout,
                                     on_done=lambda d: advance())
            good = [d for d in dets if d.ok]
            sizes = {d.image_size for d in good}
            if len(sizes) > 1:
                common = max(sizes, key=lambda s: sum(d.image_size == s for d in good))
                for d in good:
                    if d.image_size != common:
                        info(f"skipped {d.name}: image size {d.image_size} differs from "
                             f"{common}")
                good = [d for d in good if d.image_size == common]
            for d in dets:
                if not d.ok:
                    info(f"skipped {d.name}: {d.reason}")  # listed even with --quiet
            if not good:
                raise InputError(f"no {b.cols}x{b.rows} chessboard found in any of {len(dets)} "
                                 "images (is --board the number of INNER corners, COLSxROWS?)")
            if len(good) < 3:
                raise InputError(f"only {len(good)} of {len(dets)} images have a usable board; "
                                 "need at least 3")
            names = [Path(d.name).name for d in good]
            img = [d.corners for d in good]
            obj = b.object_points()
            size = good[0].image_size
        opts = FitOptions(fix_k3=fix_k3, fix_aspect=fix_aspect, zero_tangent=zero_tangent,
                          fix_principal_point=fix_pp, loss=None if loss == "none" else loss,
                          loss_scale=loss_scale, reject_outliers=reject)
        result = fit_intrinsics(obj, img, size, opts, view_names=names)
        extra = {"rms_px": result.rms_px}
        write_camera(output, result.camera, fmt, extra if fmt != "ros" else None)
        if report is not None:
            write_json(report, result.to_dict())
        if plot is not None:
            from calib.intrinsics.plots import write_plots

            write_plots(result, plot)
        if not quiet:
            typer.echo(result.summary())
        if result.verdict == "FAIL" and strict:
            raise DegenerateError("verdict FAIL: " + "; ".join(result.reasons))
