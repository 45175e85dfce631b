"""``calib hand-eye``: where the camera sits on the robot (or the robot sits in front of it).

Inputs: robot poses (CSV ``x y z qx qy qz qw`` of T_base_gripper, one station a line, or a
folder of one YAML/JSON file per station with those keys, ordered and paired with the
images by the last number in the file names) and, per station in the same order, a board
image (with ``--camera`` and ``--board``/``--target``), or pre-detected corners
(``--corners``, the ``fit-intrinsics --corners`` layout, one view per station), or the
board poses themselves (``--target-poses``, T_camera_target in the same CSV layout).
Output: X as a 4x4 text matrix, a JSON report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported in the functions: --help starts fast
    import numpy as np

from .common import (
    IMAGE_EXT,
    check_distinct,
    check_outputs,
    expand_inputs,
    info,
    matrix_text,
    progress_bar,
    refuse_most_outliers,
    write_json,
    write_outputs,
    write_text,
)

SETUP_HELP = "eye-in-hand (camera on the gripper) | eye-to-hand (camera fixed)."


def load_camera(path: Path):
    """``(model name, params, image_size)`` of a camera file."""
    import numpy as np

    from calib.io.camera_files import read_camera
    from calib.io.validate import check_file

    check_file(path, "camera file")
    cam = read_camera(path)
    model = getattr(cam, "model", "pinhole")
    return getattr(model, "name", model), np.asarray(cam.params, float), tuple(cam.image_size)


def make_target(board: str | None, square: float | None, target_file: Path | None,
                detector: str = "classic"):
    """The board from ``--board/--square`` or ``--target`` (one of the two)."""
    from calib.errors import InputError

    if target_file is not None:
        if board is not None or square is not None:
            raise InputError("--target replaces --board/--square; give one or the other")
        from calib.targets.config import load_target

        return load_target(target_file)
    if board is None or square is None:
        raise InputError("--board COLSxROWS and --square METRES (or --target FILE) are "
                         "required with images")
    from calib.targets.chessboard import Chessboard

    return Chessboard.parse(board, square, detector)


def detect_views(paths: list[Path], target, image_size, workers: int, timeout: float,
                 quiet: bool) -> tuple[list[np.ndarray], list[str | None]]:
    """Per image: ``(P, 2)`` pixels of the target's points (NaN where not seen) and the
    reason it has no board (None when it has one)."""
    import numpy as np

    from calib.errors import InputError
    from calib.targets import detect_images

    with progress_bar(len(paths), "detecting the board", quiet) as advance:
        obs = detect_images(paths, target, workers or None, timeout,
                            on_done=lambda o: advance())
    P = len(target.points())
    views, reasons = [], []
    for o in obs:
        uv = np.full((P, 2), np.nan)
        if o.ok:
            if image_size is not None and o.image_size != tuple(image_size):
                raise InputError(f"{o.view}: image is {o.image_size[0]}x{o.image_size[1]} "
                                 f"but the camera file is for {image_size[0]}x{image_size[1]}")
            uv[o.ids] = o.uv
        views.append(uv)
        reasons.append(None if o.ok and len(o.ids) >= 4 else (o.reason or "too few points"))
    return views, reasons


def expand_images(inputs: list[str]) -> list[Path]:
    return expand_inputs(inputs, IMAGE_EXT, "image")


def pair_stations(paths: list[Path], numbers: list[int], poses: Path) -> list[Path]:
    """Images in the order of the pose files' ``numbers``, paired by the last number in
    the file names; :class:`InputError` naming a station without a partner."""
    from calib.errors import InputError
    from calib.io.frames import index_by_frame

    by: dict[int, Path] = index_by_frame(paths, "station")
    lone = sorted(set(by) ^ set(numbers))
    if lone:
        k = lone[0]
        what = f"image {by[k]} has no pose file" if k in by else \
            f"pose file {k} in {poses} has no image"
        raise InputError(f"station {k}: {what} ({len(lone)} unpaired station(s): "
                         f"{', '.join(map(str, lone[:8]))})")
    return [by[k] for k in numbers]


def station_order(paths: list[Path]) -> list[Path]:
    """Images in station order for a pose CSV: by the last number in the file names when
    each has its own (``0.png, 1.png, ..., 10.png``, where name order would put ``10``
    before ``2`` and pair it with the third row), else by name."""
    from calib.errors import InputError
    from calib.io.frames import index_by_frame

    try:
        by = index_by_frame(paths, "station")
    except InputError:
        return paths
    return [by[k] for k in sorted(by)]


def _stations(robot_poses, images, corners, target_poses, camera, board, square, target_file,
              detector, workers, timeout, quiet):
    """``(B, kwargs for calibrate_hand_eye, station names, inputs for the report)``."""
    from calib.errors import InputError
    from calib.extrinsics import read_pose_csv

    if Path(robot_poses).is_dir():
        from calib.extrinsics.poses import read_pose_folder

        numbers, B = read_pose_folder(robot_poses)
    else:
        numbers, B = None, read_pose_csv(robot_poses)
    names = [str(i) for i in range(len(B))]
    given = [x for x in (bool(images), corners is not None, target_poses is not None) if x]
    if len(given) != 1:
        raise InputError("give exactly one of: board IMAGES, --corners FILE, --target-poses FILE")
    inputs = {"robot_poses": str(robot_poses), "stations": len(B)}
    if target_poses is not None:
        C = read_pose_csv(target_poses)
        inputs["target_poses"] = str(target_poses)
        return B, {"target_poses": C}, names, inputs
    if camera is None:
        raise InputError("--camera FILE is required with images or --corners")
    model, params, size = load_camera(camera)
    inputs["camera"] = str(camera)
    if corners is not None:
        from calib.io.corners import read_corners
        from calib.targets.chessboard import Chessboard

        tgt = make_target(board, square, target_file) if (board or target_file) else None
        cnames, obj, img, _ = read_corners(corners, tgt, Chessboard)
        inputs["corners"] = str(corners)
        if len(img) != len(B):
            raise InputError(f"{corners}: {len(img)} views but {robot_poses} has {len(B)} "
                             "stations: one view per station, in station order")
        return B, {"board_points": obj, "image_points": img, "params": params,
                   "model": model}, cnames, inputs
    paths = expand_images(images)
    paths = station_order(paths) if numbers is None else \
        pair_stations(paths, numbers, robot_poses)
    if len(paths) != len(B):
        raise InputError(f"{len(paths)} images but {robot_poses} has {len(B)} stations: one "
                         "image per station, in station order (by the last number in the "
                         "file names)")
    tgt = make_target(board, square, target_file, detector)
    views, reasons = detect_views(paths, tgt, size, workers, timeout, quiet)
    keep = [i for i, r in enumerate(reasons) if r is None]
    for i, r in enumerate(reasons):
        if r is not None:
            info(f"calib: warning: station {i} ({paths[i].name}) dropped: {r}")
    inputs.update(images=[str(p) for p in paths],
                  dropped=[{"station": i, "image": str(paths[i]), "reason": r}
                           for i, r in enumerate(reasons) if r is not None])
    return B[keep], {"board_points": tgt.points(), "image_points": [views[i] for i in keep],
                     "params": params, "model": model}, [paths[i].name for i in keep], inputs


def register(app: typer.Typer) -> None:
    @app.command("hand-eye")
    def hand_eye_cmd(
        images: list[str] = typer.Argument(None, help="Board images, one per station, in "
                                     "station order by the last number in the names."),
        robot_poses: Path = typer.Option(..., "--robot-poses",
                                         help="CSV of x y z qx qy qz qw (T_base_gripper, m), "
                                              "or a folder of one YAML/JSON file per station "
                                              "(keys x..qw), paired with the images by the "
                                              "last number in the file names."),
        setup: str = typer.Option(..., "--setup", help=SETUP_HELP),
        output: Path = typer.Option(..., "-o", "--output",
                                    help="4x4 text: T_gripper_camera | T_base_camera."),
        report: Path = typer.Option(None, "--report", help="JSON report to write."),
        camera: Path = typer.Option(None, "--camera", help="Camera file (intrinsics)."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 9x6."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        target_file: Path = typer.Option(None, "--target", help="Kalibr-style target.yaml."),
        corners: Path = typer.Option(None, "--corners",
                                     help="Pre-detected corners (NPZ/JSON), one view a station."),
        target_poses: Path = typer.Option(None, "--target-poses",
                                          help="CSV of T_camera_target per station."),
        refine_intrinsics: bool = typer.Option(False, "--refine-intrinsics",
                                               help="Refine the camera parameters too."),
        sigma_mm: float = typer.Option(0.2, "--robot-sigma-mm",
                                       help="Robot position noise (mm, per axis)."),
        sigma_deg: float = typer.Option(0.02, "--robot-sigma-deg",
                                        help="Robot rotation noise (deg, per axis)."),
        estimate: bool = typer.Option(False, "--estimate-robot-noise",
                                      help="Estimate the robot noise from the residuals "
                                           "(the stated σ is the start)."),
        detector: str = typer.Option("classic", "--detector", help="classic | sb (chessboard)."),
        workers: int = typer.Option(0, "--workers", help="Detection processes (0: all cores)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds allowed per image."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Hand-eye calibration: closed-form start, then a joint refinement of both unknowns
        on the board corners with the robot poses weighted by their stated noise."""
        import numpy as np

        from calib.errors import InputError
        from calib.extrinsics import SETUPS, HandEyeOptions, calibrate_hand_eye

        if setup not in SETUPS:
            raise InputError(f"--setup {setup!r}: choose one of {', '.join(SETUPS)}")
        opts = HandEyeOptions(robot_sigma_mm=sigma_mm, robot_sigma_deg=sigma_deg,
                              refine_intrinsics=refine_intrinsics,
                              estimate_robot_noise=estimate)
        check_outputs(output, report)
        given = [p for p in (robot_poses, camera, corners, target_poses, target_file) if p]
        check_distinct({"-o": output, "--report": report},
                       given + (expand_images(images) if images else []))
        B, kw, names, inputs = _stations(robot_poses, images, corners, target_poses, camera,
                                         board, square, target_file, detector, workers,
                                         timeout, quiet)
        res = calibrate_hand_eye(B, setup, options=opts, station_names=names, **kw)
        refuse_most_outliers(res.outlier_stations, len(names), "stations",
                             "is each robot pose paired with its own image, in order?")
        if not res.converged:
            info(f"calib: warning: the refinement did not converge ({res.message})")
        if res.outlier_stations:
            info("calib: warning: outlier stations: " + ", ".join(res.outlier_stations))
        if res.robot_noise_warning:
            info(f"calib: warning: {res.robot_noise_warning}")
        write_outputs([(output, lambda p: write_text(p, matrix_text(res.X))),
                       (report, lambda p: write_json(p, {**res.to_dict(), "inputs": inputs}))])
        if not quiet:
            t = res.X[:3, 3]
            typer.echo(f"{res.x_name}: t = [{t[0]:.5f}, {t[1]:.5f}, {t[2]:.5f}] m, "
                       f"σ {res.std_trans_m * 1e3:.3f} mm, {res.std_rot_deg:.4f} deg; "
                       f"residual RMS {np.sqrt(np.mean(res.station_rms ** 2)):.3g} "
                       f"{res.residual_unit} over {len(names)} stations")
