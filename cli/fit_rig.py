"""``calib fit-rig``: a stereo pair or an N-camera rig from board images, in one joint fit.

``--camera NAME=IMAGES`` once per camera (the first is the reference); IMAGES is a folder, a
quoted glob or a comma-separated list of files. Frames pair across cameras by the last
number in the file name (``left07.jpg`` with ``right07.jpg``); a view no other camera
shares is used for its camera's intrinsics only and counted in the output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer

from .common import (
    IMAGE_EXT,
    check_distinct,
    check_outputs,
    expand_inputs,
    info,
    progress_bar,
    write_json,
    write_outputs,
    write_text,
)

FORMATS = ("opencv", "kalibr", "json")
PLOT_FILES = ("rig_3d.png", "residuals.png", "covisibility.png")


def _parse_cameras(specs: list[str]) -> dict[str, list[str]]:
    """``{name: [image specs]}`` in the order given; one-line errors naming the option."""
    out: dict[str, list[str]] = {}
    for spec in specs or []:
        name, sep, images = spec.partition("=")
        name = name.strip()
        if not sep or not name or not images.strip():
            raise_input(f"--camera {spec!r}: expected NAME=IMAGES (a folder, a quoted glob or "
                        "files separated by commas)")
        if name in out:
            raise_input(f"--camera {name}: the camera is named twice; give each camera once")
        out[name] = [s for s in images.split(",") if s.strip()]
    if not out:
        raise_input("give at least one --camera NAME=IMAGES")
    return out


def _parse_models(specs: list[str], names: list[str]) -> dict[str, str]:
    from calib.camera import get_model, model_names

    out: dict[str, str] = {}
    for spec in specs or []:
        name, sep, model = spec.partition("=")
        if not sep or name.strip() not in names:
            raise_input(f"--model {spec!r}: expected NAME=MODEL with NAME one of "
                        f"{', '.join(names)}")
        try:
            out[name.strip()] = get_model(model).name
        except Exception:
            raise_input(f"--model {spec!r}: choose one of {', '.join(model_names())}")
    return out


def _read_intrinsics(specs: list[str], names: list[str], models: dict) -> dict:
    """``{name: Camera}`` from ``--intrinsics NAME=FILE`` (any camera file calib reads);
    the file's model becomes the camera's (a different ``--model`` is an error)."""
    from calib.io.camera_files import read_camera

    out = {}
    for spec in specs or []:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or name not in names or not path.strip():
            raise_input(f"--intrinsics {spec!r}: expected NAME=FILE with NAME one of "
                        f"{', '.join(names)}")
        if name in out:
            raise_input(f"--intrinsics {name}: given twice")
        cam = read_camera(Path(path.strip()))
        if name in models and models[name] != cam.model:
            raise_input(f"--intrinsics {spec}: the file holds a {cam.model} camera but "
                        f"--model says {models[name]}")
        models[name] = cam.model
        out[name] = cam
    return out


def _check_sizes(used: dict, given: dict) -> None:
    for name, cam in given.items():
        size = tuple(int(v) for v in used[name][0].image_size)
        if tuple(cam.image_size) != size:
            raise_input(f"--intrinsics {name}: the camera file is for {cam.image_size[0]}x"
                        f"{cam.image_size[1]} images, camera {name}'s are {size[0]}x{size[1]}")


def raise_input(message: str):
    from calib.errors import InputError

    raise InputError(message)


def _observations(cams, target, label, workers, timeout, quiet):
    """``({name: used observations}, [(camera, image, reason)])``: one detection run over
    every image (one progress bar), then the view filter per camera."""
    from calib.targets import detect_images, select_views

    paths = {n: expand_inputs(specs, IMAGE_EXT, "image") for n, specs in cams.items()}
    flat = [p for ps in paths.values() for p in ps]
    with progress_bar(len(flat), "detecting corners", quiet) as advance:
        obs = detect_images(flat, target, workers or None, timeout,
                            on_done=lambda o: advance())
    used, skipped, k = {}, [], 0
    for n, ps in paths.items():
        mine, k = obs[k:k + len(ps)], k + len(ps)
        sel = select_views(mine, target, label=label)
        skipped += [(n, v, r) for v, r in sel.skipped]
        if not sel.used:
            raise_input(f"--camera {n}: no usable board in any of its {len(ps)} images "
                        f"({label})")
        used[n] = sel.used
    return used, skipped, flat


def _stage_plots(plot: Path | None) -> Path | None:
    if plot is None:
        return None
    if plot.exists() and not plot.is_dir():
        raise_input(f"{plot}: --plot needs a folder, and a file of that name exists")
    parent = plot.parent if str(plot.parent) else Path(".")
    if not parent.is_dir():
        raise_input(f"{plot}: folder {parent} does not exist")
    return parent


def _write(result, output, fmt, report, plot, parent, inputs) -> None:
    """Every output or none: plots staged beside their folder, files written atomically."""
    from calib.rig.export import rig_text

    text = rig_text(result, fmt)  # a format error (Kalibr without k3) before any file
    stage = Path(tempfile.mkdtemp(dir=parent, prefix=".calib-plots-")) if plot else None
    try:
        if stage is not None:
            from calib.rig.plots import write_plots

            write_plots(result, stage)
        write_outputs([(output, lambda p: write_text(p, text)),
                       (report, lambda p: write_json(p, {**result.to_dict(), "inputs": inputs}))])
        if stage is not None:
            plot.mkdir(exist_ok=True)
            for f in sorted(stage.iterdir()):
                os.replace(f, plot / f.name)
    finally:
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)


def register(app: typer.Typer) -> None:
    @app.command("fit-rig")
    def fit_rig_cmd(
        camera: list[str] = typer.Option(None, "--camera",
                                         help="NAME=IMAGES (folder, quoted glob or a,b,c); "
                                         "repeat per camera, the first is the reference."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 9x6."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        target_file: Path = typer.Option(None, "--target",
                                         help="Kalibr-style target.yaml (any board type)."),
        model: list[str] = typer.Option(None, "--model",
                                        help="NAME=MODEL per camera (pinhole by default)."),
        intrinsics: list[str] = typer.Option(None, "--intrinsics",
                                             help="NAME=FILE: start that camera from a "
                                             "camera file (OpenCV, ROS, Kalibr, JSON)."),
        fix_intrinsics: bool = typer.Option(False, "--fix-intrinsics",
                                            help="Hold the --intrinsics cameras fixed "
                                            "(every camera needs one)."),
        fix: str = typer.Option(None, "--fix", help="Parameters held at 0, e.g. k3 or "
                                "pinhole:k3 (--format kalibr holds pinhole:k3)."),
        output: Path = typer.Option(..., "-o", "--output", help="Rig file to write."),
        report: Path = typer.Option(None, "--report", help="JSON report to write."),
        fmt: str = typer.Option("opencv", "--format", help="opencv | kalibr | json."),
        plot: Path = typer.Option(None, "--plot", help="Folder for PNG plots."),
        method: str = typer.Option("classic", "--detector", help="classic | sb."),
        loss: str = typer.Option("none", "--loss", help="Robust loss on pixel errors."),
        loss_scale: float = typer.Option(1.0, "--loss-scale", help="Loss scale in pixels."),
        workers: int = typer.Option(0, "--workers", help="Detection workers (0: all cores)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds allowed per image."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Calibrate a stereo pair or a multi-camera rig: intrinsics and camera poses."""
        from calib.rig import RigOptions, fit_rig

        from .fit_intrinsics import _board, _check_options

        if fmt not in FORMATS:
            raise_input(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        cams = _parse_cameras(camera)
        models = _parse_models(model, list(cams))
        given = _read_intrinsics(intrinsics, list(cams), models)
        if fix_intrinsics and set(given) != set(cams):
            missing = ", ".join(n for n in cams if n not in given)
            raise_input(f"--fix-intrinsics needs --intrinsics for every camera (missing: "
                        f"{missing})")
        _check_options(board, square, workers, timeout, loss, loss_scale, method, target_file)
        if board is None and target_file is None:
            raise_input("--board COLSxROWS --square METRES or --target FILE is required")
        check_outputs(output, report)
        parent = _stage_plots(plot)
        target, label = _board(board, square, method, target_file)
        used, skipped, paths = _observations(cams, target, label, workers, timeout, quiet)
        check_distinct({"-o": output, "--report": report}, paths)
        _check_sizes(used, given)
        fixed = tuple(n.strip() for n in (fix or "").split(",") if n.strip())
        if fmt == "kalibr" and any(models.get(n, "pinhole") == "pinhole" for n in cams):
            fixed += ("pinhole:k3",)  # Kalibr's radtan has k1, k2, p1, p2 (fisheye keeps k3)
        opts = RigOptions(models=models, fix=fixed, fix_intrinsics=fix_intrinsics,
                          intrinsics={n: c.params for n, c in given.items()},
                          loss=None if loss.lower() == "none" else loss.lower(),
                          loss_scale=loss_scale)
        result = fit_rig(used, target.points(), None, opts)
        for cam, view, reason in skipped:
            info(f"skipped {cam} {view}: {reason}")  # listed even with --quiet
        if result.unpaired:
            info(f"{len(result.unpaired)} view(s) without a partner in another camera (used for "
                 "their camera's intrinsics only): "
                 + ", ".join(f"{c}:{Path(v).name}" for c, v in result.unpaired[:6])
                 + (" ..." if len(result.unpaired) > 6 else ""))
        inputs = {"cameras": {n: [str(s) for s in v] for n, v in cams.items()},
                  "target": label, "models": models, "fix": list(fixed),
                  "intrinsics": list(intrinsics or []),
                  "fix_intrinsics": fix_intrinsics,
                  "skipped": [{"camera": c, "image": v, "reason": r} for c, v, r in skipped]}
        _write(result, output, fmt, report, plot, parent, inputs)
        if not quiet:
            typer.echo(result.summary())
