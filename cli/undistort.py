"""``calib undistort``: rectilinear images from any calibrated camera."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from calib.errors import InputError

from .common import IMAGE_EXT, check_outputs, expand_inputs, info, progress_bar


def _inputs(images: list[str]) -> list[Path]:
    paths = expand_inputs(images, IMAGE_EXT, "image")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{missing[0]}: image file does not exist")
    names = [p.name for p in paths]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise InputError(f"two input images are called {dup}: the outputs would collide")
    return paths


def _check_outdir(outdir: Path, paths: list[Path]) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise InputError(f"-o {outdir}: not a folder")
    if not outdir.exists():
        check_outputs(outdir)  # its parent must exist and be writable
    out = Path(os.path.realpath(outdir))
    for p in paths:
        if Path(os.path.realpath(p)).parent == out:
            raise InputError(f"-o {outdir}: it holds the input {p.name}, which would be "
                             "overwritten; choose another output folder")


def _write_image(path: Path, image) -> None:
    import cv2

    from calib.io import atomic_write

    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(f"{path}: OpenCV cannot encode a {path.suffix} image")
    atomic_write(path, buf.tobytes())


def _read_image(path: Path):
    import cv2
    import numpy as np

    if path.stat().st_size == 0:
        raise InputError(f"{path}: image file is empty")
    # any depth and channels, EXIF orientation applied (as fit-intrinsics reads images)
    img = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8),
                       cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    if img is None:
        raise InputError(f"{path}: not a readable image (PNG, JPG, BMP or TIFF expected)")
    return img


def register(app: typer.Typer) -> None:
    @app.command("undistort")
    def undistort_cmd(
        images: list[str] = typer.Argument(..., help="Image folder, glob or files."),
        camera: Path = typer.Option(..., "--camera", help="Camera file (OpenCV, ROS, Kalibr "
                                    "or JSON; any lens model)."),
        outdir: Path = typer.Option(..., "-o", "--output", help="Folder for the images "
                                    "(same file names; created if missing)."),
        balance: float = typer.Option(0.0, "--balance", help="0: only valid pixels (zoomed "
                                      "in) .. 1: keep the whole source image."),
        model: str = typer.Option(None, "--model", help="Read the camera file's coefficients "
                                  "as this model (for files that mislabel it)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Undistort images to rectilinear (pinhole) images, one per input, same file name."""
        from calib.camera.undistort import undistortion_maps
        from calib.io.camera_files import read_camera

        if not 0.0 <= balance <= 1.0:
            raise InputError(f"--balance {balance}: must be between 0 and 1")
        cam = read_camera(camera, model)
        paths = _inputs(images)
        _check_outdir(outdir, paths)
        try:
            mx, my, K_new = undistortion_maps(cam, balance)
        except InputError as e:  # the camera's own problem: name its file
            raise InputError(f"{camera}: {e}") from None
        outdir.mkdir(exist_ok=True)
        _run(paths, cam, mx, my, outdir, quiet)
        info(f"wrote {len(paths)} rectilinear image(s) to {outdir} (fx {K_new[0, 0]:.2f}, "
             f"fy {K_new[1, 1]:.2f}, cx {K_new[0, 2]:.2f}, cy {K_new[1, 2]:.2f})", quiet)


def _image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` as :func:`_read_image` returns it, from the file header (Pillow
    reads only the header; a format it does not know is decoded by OpenCV)."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation
            return (h, w) if turned else (w, h)
    except Exception:
        img = _read_image(path)
        return img.shape[1], img.shape[0]


def _run(paths: list[Path], cam, mx, my, outdir: Path, quiet: bool) -> None:
    """Check every input's size first (a wrong one fails before any output), then remap and
    write each image atomically."""
    import cv2

    w, h = cam.image_size
    for p in paths:
        if p.stat().st_size == 0:
            raise InputError(f"{p}: image file is empty")
        iw, ih = _image_size(p)
        if (iw, ih) != (w, h):
            raise InputError(f"{p}: image is {iw}x{ih} but the camera is {w}x{h}")
    with progress_bar(len(paths), "undistorting", quiet) as advance:
        for p in paths:
            out = cv2.remap(_read_image(p), mx, my, cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            _write_image(outdir / p.name, out)
            advance()
