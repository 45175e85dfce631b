"""``calib fit-intrinsics``: camera intrinsics and distortion from chessboard images."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from calib.errors import CalibError, DegenerateError, InputError

if TYPE_CHECKING:  # the task modules are imported in the command, so --help starts fast
    import numpy as np

    from calib.intrinsics import Chessboard

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
    import numpy as np

    from calib.intrinsics import Chessboard
    from calib.io.validate import check_file

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


LOSSES = ("none", "huber", "cauchy", "soft_l1", "arctan", "tukey")


def _check_options(board, square, workers, timeout, loss, loss_scale, method) -> None:
    """Every option checked before any work (one line each, exit 2)."""
    import numpy as np

    from calib.intrinsics.detect import METHODS

    if square is not None and not (np.isfinite(square) and square > 0):
        raise InputError(f"--square {square:g}: must be a positive number of metres")
    if board is not None and square is None:
        raise InputError("--board needs --square METRES (the size of one square)")
    if square is not None and board is None:
        raise InputError("--square needs --board COLSxROWS (inner corners)")
    if workers < 0:
        raise InputError(f"--workers {workers}: must be 0 (all cores) or a positive count")
    if not timeout > 0:
        raise InputError(f"--timeout {timeout:g}: must be a positive number of seconds")
    if loss.lower() not in LOSSES:
        raise InputError(f"--loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if not (np.isfinite(loss_scale) and loss_scale > 0):
        raise InputError(f"--loss-scale {loss_scale:g}: must be a positive number of pixels")
    if method not in METHODS:
        raise InputError(f"--detector {method!r}: choose one of {', '.join(METHODS)}")


def _check_distinct(outputs: dict, inputs: list[Path]) -> None:
    """No output may overwrite another output or an input."""
    seen: dict[Path, str] = {}
    ins = {p.resolve(): p for p in inputs if p.exists()}
    for flag, p in outputs.items():
        if p is None:
            continue
        key = p.resolve()
        if key in seen:
            raise InputError(f"{p}: {flag} and {seen[key]} name the same file")
        if key in ins:
            raise InputError(f"{p}: {flag} would overwrite an input file")
        seen[key] = flag


def _check_plot_dir(plot: Path, inputs: list[Path]) -> Path:
    """The folder the plots are staged in (beside the plot folder). Fails before any work if
    the plot folder cannot be made there, or a plot would replace an input or a folder."""
    from calib.intrinsics.plots import PLOT_FILES

    if plot.exists() and not plot.is_dir():
        raise InputError(f"{plot}: --plot needs a folder, and a file of that name exists")
    parent = plot.parent if str(plot.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{plot}: {parent} is not a folder" if parent.exists() else
                         f"{plot}: folder {parent} does not exist")
    ins = {p.resolve() for p in inputs if p.exists()}
    for name in PLOT_FILES:
        target = plot / name
        if target.resolve() in ins:
            raise InputError(f"{target}: --plot would overwrite an input file")
        if target.is_dir():
            raise InputError(f"{target}: a folder is in the way of the plot file")
    try:
        tempfile.TemporaryDirectory(dir=parent, prefix=".calib-plots-").cleanup()
    except OSError as exc:
        raise InputError(f"{plot}: cannot write in {parent} ({exc.strerror})") from None
    return parent


_EDGE_WORDS = {"first_col": "first column", "last_col": "last column",
               "first_row": "first row", "last_row": "last row"}


def _check_board_size(b: Chessboard, good: list, skipped: list) -> tuple[list, list]:
    """A board with more inner corners than ``--board`` shows the chessboard pattern past
    the detected grid: an error when several views show it (the spec is wrong), else the
    view or two that do are skipped (a pattern behind the board, say)."""
    flagged = [d for d in good if d.grid_continues]
    if not flagged:
        return good, skipped
    if len(flagged) >= max(2, 0.25 * len(good)):
        edges = sorted({e for d in flagged for e in d.grid_continues}, key=list(_EDGE_WORDS).index)
        where = ", ".join(_EDGE_WORDS[e] for e in edges)
        raise InputError(f"--board {b.cols}x{b.rows}: the board has more inner corners than "
                         f"that: the chessboard pattern continues past the detected grid's "
                         f"{where} in {len(flagged)} of {len(good)} images (count the INNER "
                         "corners, COLSxROWS)")
    skipped = skipped + [
        (d.name, f"the chessboard pattern continues past the detected {b.cols}x{b.rows} grid "
                 f"({', '.join(_EDGE_WORDS[e] for e in d.grid_continues)})") for d in flagged]
    return [d for d in good if not d.grid_continues], skipped


def _same_board(obj: np.ndarray, b: Chessboard) -> bool:
    import numpy as np

    ref = b.object_points()
    return obj.shape == ref.shape and np.allclose(obj, ref, atol=1e-9 + 1e-6 * b.square)


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
        loss: str = typer.Option("none", "--loss", help="|".join(LOSSES) + "."),
        loss_scale: float = typer.Option(1.0, "--loss-scale", help="Loss scale in pixels."),
        reject: bool = typer.Option(False, "--reject-outliers",
                                    help="Drop outlier corners and views, then refit."),
        workers: int = typer.Option(0, "--workers", help="Detection threads (0: all cores)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds allowed per image."),
        strict: bool = typer.Option(False, "--strict",
                                    help="Exit 3 and write nothing when the verdict is FAIL."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Fit fx, fy, cx, cy, k1, k2, p1, p2, k3 from chessboard images or corners."""
        import numpy as np  # imported here so that `calib --help` starts fast

        from calib.intrinsics import Chessboard, FitOptions, detect_images, fit_intrinsics
        from calib.io.camera_files import FORMATS, write_camera

        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        _check_options(board, square, workers, timeout, loss, loss_scale, method)
        check_outputs(output, report)
        b = Chessboard.parse(board, square) if board is not None else None
        inputs: dict = {"board": None if b is None else f"{b.cols}x{b.rows}",
                        "square_m": None if b is None else b.square}
        if corners is not None:
            _check_distinct({"-o": output, "--report": report, "--plot": plot}, [corners])
            stage_parent = _check_plot_dir(plot, [corners]) if plot is not None else None
            names, obj, img, size = _load_corners(corners, b)
            if b is not None and not _same_board(np.asarray(obj, float), b):
                raise InputError(f"{corners}: the file's board ({len(obj)} corners) differs "
                                 f"from --board {b.cols}x{b.rows} --square {b.square:g}; drop "
                                 "--board/--square or correct them")
            inputs.update(corners=str(corners))
            label = str(corners)
        else:
            if not images:
                raise InputError("give board images (folder, glob or files) or --corners FILE")
            if b is None:
                raise InputError("--board COLSxROWS and --square METRES are required with images")
            paths = _expand(images)
            _check_distinct({"-o": output, "--report": report, "--plot": plot}, paths)
            stage_parent = _check_plot_dir(plot, paths) if plot is not None else None
            label = ", ".join(images[:2]) + (" ..." if len(images) > 2 else "")
            with progress_bar(len(paths), "detecting corners", quiet) as advance:
                dets = detect_images(paths, b, method, workers or None, timeout,
                                     on_done=lambda d: advance())
            good = [d for d in dets if d.ok]
            skipped = [(d.name, d.reason) for d in dets if not d.ok]
            sizes = {d.image_size for d in good}
            if len(sizes) > 1:
                common = max(sizes, key=lambda s: sum(d.image_size == s for d in good))
                skipped += [(d.name, f"image size {d.image_size} differs from {common}")
                            for d in good if d.image_size != common]
                good = [d for d in good if d.image_size == common]
            good, skipped = _check_board_size(b, good, skipped)
            for name, reason in skipped:
                info(f"skipped {name}: {reason}")  # listed even with --quiet
            inputs.update(images=[d.name for d in dets], detector=method,
                          skipped=[{"image": n, "reason": r} for n, r in skipped])
            readable = [d for d in dets if d.image_size is not None]
            if not readable:
                raise InputError(f"{label}: none of the {len(dets)} images could be read "
                                 f"({dets[0].reason})")
            if not good:
                raise InputError(f"{label}: no {b.cols}x{b.rows} chessboard found in any of the "
                                 f"{len(readable)} readable images (is --board the number of "
                                 "INNER corners, COLSxROWS?)")
            if len(good) < 3:
                raise InputError(f"{label}: only {len(good)} of {len(dets)} images have a "
                                 "usable board; need at least 3")
            names = [Path(d.name).name for d in good]
            img = [d.corners for d in good]
            obj = b.object_points()
            size = good[0].image_size
        opts = FitOptions(fix_k3=fix_k3, fix_aspect=fix_aspect, zero_tangent=zero_tangent,
                          fix_principal_point=fix_pp,
                          loss=None if loss.lower() == "none" else loss.lower(),
                          loss_scale=loss_scale, reject_outliers=reject)
        try:
            result = fit_intrinsics(obj, img, size, opts, view_names=names)
        except CalibError as exc:
            if corners is None or str(exc).startswith(str(corners)):
                raise
            raise type(exc)(f"{corners}: {exc}") from None
        if result.verdict == "FAIL":
            if strict:
                raise DegenerateError(f"{label}: verdict FAIL (--strict: nothing written): "
                                      + "; ".join(result.reasons))
            info("calib: warning: verdict FAIL: " + "; ".join(result.reasons))  # even quiet
        stage = None
        if plot is not None:
            from calib.intrinsics.plots import write_plots

            stage = Path(tempfile.mkdtemp(dir=stage_parent, prefix=".calib-plots-"))
        try:
            if stage is not None:
                write_plots(result, stage)
            write_camera(output, result.camera, fmt,
                         {"rms_px": result.rms_px} if fmt != "ros" else None)
            if report is not None:
                write_json(report, {**result.to_dict(), "inputs": inputs})
            if stage is not None:
                plot.mkdir(exist_ok=True)
                for f in sorted(stage.iterdir()):
                    os.replace(f, plot / f.name)
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        if not quiet:
            typer.echo(result.summary())
