"""``calib fit-rig``: a stereo pair or an N-camera rig from board images or pre-detected
corners, in one joint fit.

``--camera NAME=INPUTS`` once per camera (the first is the reference). INPUTS is, told
apart by the file extension:

- images: a folder, a quoted glob or a comma-separated list of files;
- one corners file ``.npz``/``.json`` (the format ``fit-intrinsics --corners`` reads,
  :func:`calib.io.corners.read_corner_views`): its view names pair the frames; its board
  (``object_points``, or ``pattern_cols_rows`` + ``square_size_m``) is used when it has one;
- yac's AprilGrid corner CSVs (a folder, glob or list of ``.csv``, one per image,
  :func:`calib.io.corners.read_aprilgrid_csv`): the grid comes from the files; they carry no
  image size, so give ``--image-size WxH`` (or ``NAME=WxH``, or a ``--intrinsics`` file).

Frames pair across cameras by the last number in the file or view name (``left07.jpg``
with ``right07.jpg``); a view no other camera shares is used for its camera's intrinsics
only and counted in the output. ``--board``/``--square``/``--target`` give the board for
images and for corner files without one; a file whose board differs from it, or from
another camera's file, is an error naming the file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer

from .common import (
    GLOB_CHARS,
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
#: Extensions of a corners file (one per camera) and of yac's AprilGrid CSVs (one per image).
CORNER_EXT = {".npz", ".json"}
CSV_EXT = {".csv"}
PLOT_FILES = ("rig_3d.png", "residuals.png", "covisibility.png")


def _parse_cameras(specs: list[str]) -> dict[str, list[str]]:
    """``{name: [image specs]}`` in the order given; one-line errors naming the option."""
    out: dict[str, list[str]] = {}
    for spec in specs or []:
        name, sep, images = spec.partition("=")
        name = name.strip()
        if not sep or not name or not images.strip():
            raise_input(f"--camera {spec!r}: expected NAME=IMAGES (a folder, a quoted glob or "
                        "files separated by commas) or NAME=CORNERS (.npz/.json, or .csv "
                        "AprilGrid files)")
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


def _expand(name: str, items: list[str]) -> tuple[str, list[Path]]:
    """``(kind, paths)`` of one camera's inputs: ``"images"``, ``"corners"`` (one .npz/.json
    file) or ``"csv"`` (yac AprilGrid CSVs); told apart by the extension. A folder gives
    its images, or its .csv files when it has no image."""
    from calib.errors import InputError

    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            try:
                paths += expand_inputs([item], IMAGE_EXT, "image")
            except InputError:
                found = sorted(q for q in p.iterdir() if q.suffix.lower() in CSV_EXT)
                if not found:
                    raise_input(f"{item}: no image or AprilGrid CSV files in this folder")
                paths += found
        elif p.suffix.lower() in CORNER_EXT | CSV_EXT and not p.exists() \
                and not any(c in item for c in GLOB_CHARS):
            paths.append(p)  # the reader says the file does not exist, naming it
        else:
            paths += expand_inputs([item], IMAGE_EXT, "image")
    kinds = {"corners" if q.suffix.lower() in CORNER_EXT else
             "csv" if q.suffix.lower() in CSV_EXT else "images" for q in paths}
    if len(kinds) > 1 or ("corners" in kinds and len(paths) > 1):
        raise_input(f"--camera {name}: give images, one corners file (.npz/.json) or "
                    f"AprilGrid CSVs (.csv), not a mix ({len(paths)} files: "
                    f"{', '.join(sorted(kinds))})")
    return kinds.pop(), paths


def _parse_sizes(specs: list[str], names: list[str]) -> dict:
    """``{name or None: (width, height)}`` from ``--image-size [NAME=]WxH`` (None: every
    camera)."""
    import re

    out: dict = {}
    for spec in specs or []:
        name, sep, wh = spec.rpartition("=")
        name = name.strip() if sep else None
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", wh)
        if (sep and name not in names) or m is None or min(int(v) for v in m.groups()) < 1:
            raise_input(f"--image-size {spec!r}: expected WIDTHxHEIGHT in pixels, or "
                        f"NAME=WIDTHxHEIGHT with NAME one of {', '.join(names)}")
        if name in out:
            raise_input(f"--image-size {name or 'WxH'}: given twice")
        out[name] = (int(m.group(1)), int(m.group(2)))
    return out


def _size_for(name: str, sizes: dict, given: dict, found=None) -> tuple[int, int]:
    """A camera's image size: its files' (checked against ``--image-size``), else
    ``--image-size``, else its ``--intrinsics`` file's."""
    want = sizes.get(name, sizes.get(None))
    if found is not None:
        if name in sizes and tuple(sizes[name]) != tuple(found):
            raise_input(f"--image-size {name}={sizes[name][0]}x{sizes[name][1]}: camera "
                        f"{name}'s corners file says {found[0]}x{found[1]}")
        return tuple(found)
    if want is not None:
        return want
    if name in given:
        return tuple(given[name].image_size)
    raise_input(f"--camera {name}: AprilGrid CSVs carry no image size; give --image-size "
                f"{name}=WIDTHxHEIGHT (or WIDTHxHEIGHT for every camera)")


def _same_points(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = float(np.ptp(b[:, :2])) if b.size else 1.0
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=0, atol=1e-9 + 1e-6 * scale))


def _corner_file(name: str, path: Path, target, sizes: dict, given: dict):
    """``(observations, board points (N, 3))`` of one camera's .npz/.json corners file."""
    import numpy as np

    from calib.intrinsics import Chessboard
    from calib.io.corners import read_corner_views
    from calib.targets.base import Observation

    names, obj, img, size = read_corner_views(path, target, Chessboard)
    size = _size_for(name, sizes, given, size)
    ids = np.arange(len(obj))
    return [Observation(n, size, ids, uv) for n, uv in zip(names, img, strict=True)], obj


def _csv_camera(name: str, paths: list[Path], sizes: dict, given: dict):
    """``(used observations, skipped, grid)`` of one camera's yac AprilGrid CSVs (one grid
    in all files; the view filter of the image path)."""
    from calib.io.corners import read_aprilgrid_csv
    from calib.io.frames import index_by_frame
    from calib.targets import select_views
    from calib.targets.aprilgrid import AprilGrid
    from calib.targets.base import Observation

    index_by_frame(paths, "frame")
    size = _size_for(name, sizes, given)
    obs, grid, first = [], None, None
    for p in paths:
        g, ids, uv = read_aprilgrid_csv(p, AprilGrid)
        if g is not None and grid is not None and g != grid:
            raise_input(f"{p}: its AprilGrid ({_grid_text(g)}) differs from {first}'s "
                        f"({_grid_text(grid)})")
        if g is not None and grid is None:
            grid, first = g, p
        obs.append(Observation(str(p), size, ids, uv,
                               None if len(ids) else "no AprilGrid corners in the file"))
    if grid is None:
        raise_input(f"--camera {name}: none of its {len(paths)} CSV files has a corner")
    sel = select_views(obs, grid, label=f"--camera {name}")
    return sel.used, [(name, v, r) for v, r in sel.skipped], grid, first


def _grid_text(g) -> str:
    return f"{g.tag_cols}x{g.tag_rows} tags of {g.tag_size:g} m, spacing {g.tag_spacing:g}"


def _detect(cams: dict, target, label, workers, timeout, quiet):
    """``({name: used observations}, [(camera, image, reason)])`` of the image cameras: one
    detection run over every image (one progress bar), then the view filter per camera."""
    from calib.targets import detect_images, select_views

    flat = [p for ps in cams.values() for p in ps]
    if not flat:
        return {}, []
    with progress_bar(len(flat), "detecting corners", quiet) as advance:
        obs = detect_images(flat, target, workers or None, timeout,
                            on_done=lambda o: advance())
    used, skipped, k = {}, [], 0
    for n, ps in cams.items():
        mine, k = obs[k:k + len(ps)], k + len(ps)
        sel = select_views(mine, target, label=label)
        skipped += [(n, v, r) for v, r in sel.skipped]
        if not sel.used:
            raise_input(f"--camera {n}: no usable board in any of its {len(ps)} images "
                        f"({label})")
        used[n] = sel.used
    return used, skipped


def _observations(inputs: dict, target, label, sizes, given, workers, timeout, quiet):
    """``(used {name: observations} in camera order, skipped, board points (P, 3))`` from
    every camera's images, corners file or AprilGrid CSVs, with one board for all."""
    images = {n: ps for n, (kind, ps) in inputs.items() if kind == "images"}
    for n in set(images) & set(sizes):
        raise_input(f"--image-size {n}=...: camera {n} is given as images, which carry their "
                    "size (--image-size is for AprilGrid CSVs)")
    if images and target is None:
        raise_input(f"--camera {next(iter(images))}: images need --board COLSxROWS --square "
                    "METRES or --target FILE")
    used, skipped = _detect(images, target, label, workers, timeout, quiet)
    board, where = (target.points(), label) if target is not None else (None, None)
    for n, (kind, ps) in inputs.items():
        if kind == "images":
            continue
        if kind == "corners":
            used[n], pts = _corner_file(n, ps[0], target, sizes, given)
            first = ps[0]
        else:
            used[n], sk, grid, first = _csv_camera(n, ps, sizes, given)
            skipped += sk
            pts = grid.points()
            if not used[n]:
                raise_input(f"--camera {n}: no usable board in any of its {len(ps)} CSV "
                            "files")
        if board is None:
            board, where = pts, str(first)
        elif not _same_points(pts, board):
            raise_input(f"{first}: the file's board ({len(pts)} points) differs from "
                        f"{where}'s ({len(board)} points)")
    return {n: used[n] for n in inputs}, skipped, board


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
                                         help="NAME=IMAGES (folder, quoted glob or a,b,c) "
                                         "or NAME=CORNERS (one .npz/.json corners file as "
                                         "fit-intrinsics --corners reads, or yac AprilGrid "
                                         ".csv files: folder, glob or list); repeat per "
                                         "camera, the first is the reference."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 9x6."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        target_file: Path = typer.Option(None, "--target",
                                         help="Kalibr-style target.yaml (any board type)."),
        model: list[str] = typer.Option(None, "--model",
                                        help="NAME=MODEL per camera (pinhole by default)."),
        intrinsics: list[str] = typer.Option(None, "--intrinsics",
                                             help="NAME=FILE: start that camera from a "
                                             "camera file (OpenCV, ROS, Kalibr, JSON)."),
        image_size: list[str] = typer.Option(None, "--image-size",
                                             help="[NAME=]WIDTHxHEIGHT for cameras given "
                                             "as AprilGrid CSVs (which carry no size)."),
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
        """Calibrate a stereo pair or a multi-camera rig: intrinsics and camera poses, from
        board images or pre-detected corners (a corners file's board, if it has one, stands
        for --board; AprilGrid CSVs need --image-size)."""
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
        sizes = _parse_sizes(image_size, list(cams))
        _check_options(board, square, workers, timeout, loss, loss_scale, method, target_file)
        check_outputs(output, report)
        parent = _stage_plots(plot)
        sources = {n: _expand(n, specs) for n, specs in cams.items()}
        check_distinct({"-o": output, "--report": report},
                       [p for _, ps in sources.values() for p in ps])
        target, label = _board(board, square, method, target_file)
        used, skipped, points = _observations(sources, target, label, sizes, given, workers,
                                              timeout, quiet)
        _check_sizes(used, given)
        fixed = tuple(n.strip() for n in (fix or "").split(",") if n.strip())
        if fmt == "kalibr" and any(models.get(n, "pinhole") == "pinhole" for n in cams):
            fixed += ("pinhole:k3",)  # Kalibr's radtan has k1, k2, p1, p2 (fisheye keeps k3)
        opts = RigOptions(models=models, fix=fixed, fix_intrinsics=fix_intrinsics,
                          intrinsics={n: c.params for n, c in given.items()},
                          loss=None if loss.lower() == "none" else loss.lower(),
                          loss_scale=loss_scale)
        result = fit_rig(used, points, None, opts)
        for cam, view, reason in skipped:
            info(f"skipped {cam} {view}: {reason}")  # listed even with --quiet
        if result.unpaired:
            info(f"{len(result.unpaired)} view(s) without a partner in another camera (used for "
                 "their camera's intrinsics only): "
                 + ", ".join(f"{c}:{Path(v).name}" for c, v in result.unpaired[:6])
                 + (" ..." if len(result.unpaired) > 6 else ""))
        inputs = {"cameras": {n: [str(s) for s in v] for n, v in cams.items()},
                  "sources": {n: k for n, (k, _) in sources.items()},
                  "image_sizes": {n: list(o[0].image_size) for n, o in used.items()},
                  "target": label, "models": models, "fix": list(fixed),
                  "intrinsics": list(intrinsics or []),
                  "fix_intrinsics": fix_intrinsics,
                  "skipped": [{"camera": c, "image": v, "reason": r} for c, v, r in skipped]}
        _write(result, output, fmt, report, plot, parent, inputs)
        if not quiet:
            typer.echo(result.summary())
