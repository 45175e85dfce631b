"""``calib fit-intrinsics``: camera intrinsics and distortion from board images, for any lens
model (``--model pinhole|rational|fisheye|double-sphere``).

Boards: ``--board COLSxROWS --square S`` (a chessboard) or ``--target target.yaml``
(checkerboard, ChArUco, AprilGrid, circle grid; :mod:`calib.targets.config`). Partial
views of ChArUco boards and AprilGrids are used (:func:`calib.targets.select_views`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from calib.errors import CalibError, DegenerateError, InputError

if TYPE_CHECKING:  # the task modules are imported in the command, so --help starts fast
    import numpy as np

from .common import (
    IMAGE_EXT,
    check_distinct,
    check_outputs,
    expand_inputs,
    info,
    progress_bar,
    write_json,
    write_outputs,
)

LOSSES = ("none", "huber", "cauchy", "soft_l1", "arctan", "tukey")


def _check_model(model: str, fix: str | None) -> tuple[str, tuple[str, ...]]:
    """``(model name, names to hold fixed)`` from ``--model`` and ``--fix a,b``; one-line
    errors naming the option."""
    from calib.camera import get_model, model_names

    try:
        lens = get_model(model)
    except InputError:
        raise InputError(f"--model {model!r}: choose one of {', '.join(model_names())}"
                         ) from None
    names = tuple(n.strip() for n in (fix or "").split(",") if n.strip())
    bad = [n for n in names if n not in lens.param_names]
    if bad:
        raise InputError(f"--fix {','.join(bad)}: the {lens.name} model has no such "
                         f"parameter (it has {', '.join(lens.param_names)})")
    return lens.name, names


def _check_format(fmt: str, model: str, k3_fixed: bool) -> None:
    """The camera file format can hold the model (checked before any work)."""
    from calib.camera import get_model

    lens = get_model(model)
    if fmt == "kalibr" and lens.kalibr_name is None:
        raise InputError(f"--format kalibr: Kalibr has no {model} model (it has pinhole-radtan, "
                         "pinhole-equi and ds-none: --model pinhole, fisheye or double-sphere)")
    if fmt == "kalibr" and model == "pinhole" and not k3_fixed:
        raise InputError("--format kalibr: Kalibr's pinhole-radtan has no k3; add --fix-k3")
    if fmt == "ros" and lens.ros_name is None:
        raise InputError(f"--format ros: ROS camera_info has no {model} model; use --format "
                         "opencv, kalibr or json")


def _check_options(board, square, workers, timeout, loss, loss_scale, method,
                   target=None) -> None:
    """Every option checked before any work (one line each, exit 2)."""
    import numpy as np

    from calib.targets.chessboard import METHODS

    if target is not None and (board is not None or square is not None):
        raise InputError("--target replaces --board/--square; give one or the other")
    if square is not None and not (np.isfinite(square) and 1e-5 <= square <= 1e3):
        # a square of 25 (millimetres given as metres) gets a warning (_board), not this
        raise InputError(f"--square {square:g}: must be a positive length between 1e-05 and "
                         "1000 metres")
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


def _same_board(obj: np.ndarray, b) -> bool:
    import numpy as np

    ref = b.points()
    return obj.shape == ref.shape and np.allclose(obj, ref, atol=1e-9 + 1e-6 * b.spacing)


#: A spacing above this many metres is almost surely millimetres given as metres.
MAX_PLAUSIBLE_SPACING_M = 0.5


def _board(board, square, method, target_file):
    """The target and its label for messages (``--board 9x6`` or ``--target t.yaml``)."""
    if target_file is not None:
        from calib.targets.config import load_target

        t = load_target(target_file)
        if t.name == "checkerboard":
            from dataclasses import replace

            t = replace(t, detector=method)
        label = f"--target {target_file}"
    elif board is not None:
        from calib.targets.chessboard import Chessboard

        t = Chessboard.parse(board, square, method)
        label = f"--board {t.cols}x{t.rows}"
    else:
        return None, None
    if t.spacing > MAX_PLAUSIBLE_SPACING_M:
        info(f"calib: warning: {label}: point spacing {t.spacing:g} m is larger than "
             f"{MAX_PLAUSIBLE_SPACING_M:g} m; sizes are in metres (25 mm is 0.025)")
    return t, label


def _detect(paths, t, label, workers, timeout, quiet):
    """Detect, select views; ``(used observations, skipped, all observations)``."""
    from calib.targets import detect_images, select_views

    with progress_bar(len(paths), "detecting corners", quiet) as advance:
        obs = detect_images(paths, t, workers or None, timeout, on_done=lambda o: advance())
    sel = select_views(obs, t, label=label)
    for name, reason in sel.skipped:
        info(f"skipped {name}: {reason}")  # listed even with --quiet
    if sel.ignored_ids:
        info(f"ignored {sel.ignored_ids} detected point(s) whose id is not on the board")
    readable = [o for o in obs if o.image_size is not None]
    what = "" if not paths else f"{', '.join(map(str, paths[:2]))}"
    if not readable:
        raise InputError(f"{what}: none of the {len(obs)} images could be read "
                         f"({obs[0].reason})")
    if not sel.used:
        hint = (" (is --board the number of INNER corners, COLSxROWS?)"
                if t.name == "checkerboard" else f" (does {label} match the board?)")
        raise InputError(f"{what}: no {t.describe()} found in any of the {len(readable)} "
                         f"readable images{hint}")
    if len(sel.used) < 3:
        raise InputError(f"{what}: only {len(sel.used)} of {len(obs)} images have a "
                         "usable board; need at least 3")
    return sel, obs


def register(app: typer.Typer) -> None:
    @app.command("fit-intrinsics")
    def fit_intrinsics_cmd(
        images: list[str] = typer.Argument(None, help="Image folder, glob or files."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 9x6."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        target_file: Path = typer.Option(None, "--target",
                                         help="Kalibr-style target.yaml (any board type)."),
        output: Path = typer.Option(..., "-o", "--output", help="Camera file to write."),
        model: str = typer.Option("pinhole", "--model",
                                  help="Lens model: pinhole | rational | fisheye | "
                                  "double-sphere."),
        fmt: str = typer.Option("opencv", "--format", help="opencv | ros | kalibr | json."),
        report: Path = typer.Option(None, "--report", help="JSON report to write."),
        plot: Path = typer.Option(None, "--plot", help="Folder for PNG plots."),
        corners: Path = typer.Option(None, "--corners", help="Pre-detected corners (NPZ/JSON)."),
        method: str = typer.Option("classic", "--detector", help="classic | sb."),
        fix_k3: bool = typer.Option(False, "--fix-k3",
                                    help="Hold k3 = 0 (pinhole, rational, fisheye)."),
        fix: str = typer.Option(None, "--fix", help="More parameters to hold at their "
                                "start, comma-separated (e.g. k4,k5,k6 or xi)."),
        fix_aspect: bool = typer.Option(False, "--fix-aspect", help="Square pixels: fx = fy."),
        zero_tangent: bool = typer.Option(False, "--zero-tangent",
                                          help="Hold p1 = p2 = 0 (pinhole, rational)."),
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
        """Fit a camera (fx, fy, cx, cy and the model's distortion) from board images or
        corners."""
        import numpy as np

        from calib.intrinsics import Chessboard, FitOptions, fit_intrinsics
        from calib.io.camera_files import FORMATS, write_camera
        from calib.io.corners import read_corners

        if fmt not in FORMATS:
            raise InputError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        model, fixed = _check_model(model, fix)
        _check_format(fmt, model, fix_k3 or "k3" in fixed)
        for flag, on, ok in (("--fix-k3", fix_k3, ("pinhole", "rational", "fisheye")),
                             ("--zero-tangent", zero_tangent, ("pinhole", "rational"))):
            if on and model not in ok:
                raise InputError(f"{flag}: the {model} model has no such parameter (only "
                                 f"{', '.join(ok)})")
        _check_options(board, square, workers, timeout, loss, loss_scale, method, target_file)
        check_outputs(output, report)
        b, blabel = _board(board, square, method, target_file)
        inputs: dict = {"board": f"{b.cols}x{b.rows}" if board is not None else None,
                        "square_m": b.square if board is not None else None}
        if target_file is not None:
            inputs.update(target=str(target_file), target_type=b.name)
        views = None
        if corners is not None:
            check_distinct({"-o": output, "--report": report, "--plot": plot}, [corners])
            stage_parent = _check_plot_dir(plot, [corners]) if plot is not None else None
            names, obj, img, size = read_corners(corners, b, Chessboard)
            if b is not None and not _same_board(np.asarray(obj, float), b):
                what = (f"--board {b.cols}x{b.rows} --square {b.square:g}" if board is not None
                        else blabel)
                raise InputError(f"{corners}: the file's board ({len(obj)} corners) differs "
                                 f"from {what}; drop {what.split()[0]} or correct it")
            inputs.update(corners=str(corners))
            label = str(corners)
        else:
            if not images:
                raise InputError("give board images (folder, glob or files) or --corners FILE")
            if b is None:
                raise InputError("--board COLSxROWS and --square METRES (or --target FILE) "
                                 "are required with images")
            paths = expand_inputs(images, IMAGE_EXT, "image")
            check_distinct({"-o": output, "--report": report, "--plot": plot}, paths)
            stage_parent = _check_plot_dir(plot, paths) if plot is not None else None
            label = ", ".join(images[:2]) + (" ..." if len(images) > 2 else "")
            sel, obs = _detect(paths, b, blabel, workers, timeout, quiet)
            inputs.update(images=[o.view for o in obs],
                          detector=method if b.name == "checkerboard" else None,
                          skipped=[{"image": n, "reason": r} for n, r in sel.skipped],
                          ignored_ids=sel.ignored_ids)
            pts = b.points()
            names = [Path(o.view).name for o in sel.used]
            img = [o.uv for o in sel.used]
            obj = [pts[o.ids] for o in sel.used]
            size = sel.used[0].image_size
            views = [(o.view, len(o.ids)) for o in sel.used]
        opts = FitOptions(model=model, fix=fixed, fix_k3=fix_k3, fix_aspect=fix_aspect,
                          zero_tangent=zero_tangent,
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
            extra = {"rms_px": result.rms_px} if fmt != "ros" else None
            write_outputs([(output, lambda p: write_camera(p, result.camera, fmt, extra)),
                           (report, lambda p: write_json(p, {**result.to_dict(),
                                                             "inputs": inputs,
                                                             "views": _views(result, views)}))])
            if stage is not None:
                plot.mkdir(exist_ok=True)
                for f in sorted(stage.iterdir()):
                    os.replace(f, plot / f.name)
                info(f"plots: {plot}/", quiet)
        finally:
            if stage is not None:
                shutil.rmtree(stage, ignore_errors=True)
        if not quiet:
            typer.echo(result.summary())


def _views(result, views) -> list[dict]:
    """The report's ``views``: ``{file, corners, rms_px}`` per fitted view (rms_px None
    for a view the fit rejected)."""
    import numpy as np

    if views is None:  # pre-detected corners: one entry per view of the file
        views = [(n, None) for n in result.view_names]
    out = []
    for (file, n), rms, used in zip(views, result.per_view_rms_px, result.views_used,
                                    strict=True):
        ok = bool(used) and bool(np.isfinite(rms))
        out.append({"file": str(file), "corners": n, "rms_px": float(rms) if ok else None})
    return out
