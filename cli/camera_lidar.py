"""``calib camera-lidar``: T_camera_lidar from frames of one board seen by a camera and a
LiDAR. Frames pair an image with a cloud by the last number in their file names."""

from __future__ import annotations

import re
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
    refuse_most_outliers,
    write_json,
    write_outputs,
    write_text,
)
from .hand_eye import detect_views, load_camera, make_target

CLOUD_EXT = {".ply", ".pcd", ".npy", ".xyz", ".txt", ".pts", ".csv"}


def pair_frames(images: list[Path], clouds: list[Path]) -> list[tuple[int, Path, Path]]:
    """``(number, image, cloud)`` per frame, by the last number in the file names;
    :class:`InputError` naming a file without a number, a repeated number, or a frame
    without a partner."""
    from calib.errors import InputError
    from calib.io.frames import index_by_frame

    im, cl = index_by_frame(images), index_by_frame(clouds)
    lone = sorted(set(im) ^ set(cl))
    if lone:
        k = lone[0]
        p, other = (im[k], "cloud") if k in im else (cl[k], "image")
        raise InputError(f"{p}: frame {k} has no {other} partner ({len(lone)} unpaired "
                         f"frame(s): {', '.join(map(str, lone[:8]))})")
    return [(k, im[k], cl[k]) for k in sorted(im)]


def parse_roi(text: str | None):
    import numpy as np

    from calib.errors import InputError

    if text is None:
        return None
    try:
        v = [float(x) for x in re.split(r"[,\s]+", text.strip()) if x]
    except ValueError:
        v = []
    if len(v) != 6 or not np.all(np.isfinite(v)) or v[0] >= v[1] or v[2] >= v[3] or v[4] >= v[5]:
        raise InputError(f"--roi {text!r}: expected xmin,xmax,ymin,ymax,zmin,zmax (m, LiDAR "
                         "frame, each min < max)")
    return tuple(v)


def board_size(target, text: str | None) -> tuple[float, float]:
    """The board's outer size (m): ``--board-size WxH``, or the point grid plus one spacing
    each way (the outer squares of a chessboard)."""
    import numpy as np

    from calib.errors import InputError

    if text is not None:
        m = re.fullmatch(r"\s*([0-9.]+)\s*[xX*,]\s*([0-9.]+)\s*", text)
        if not m or not (float(m.group(1)) > 0 and float(m.group(2)) > 0):
            raise InputError(f"--board-size {text!r}: expected WIDTHxHEIGHT in metres")
        return float(m.group(1)), float(m.group(2))
    pts = target.points()
    ext = np.ptp(pts[:, :2], axis=0) + 2 * target.spacing
    return float(ext[0]), float(ext[1])


def write_plot(path: Path, frames, clouds, model: str, params, T: np.ndarray,
               image_size) -> None:
    """Each frame's LiDAR points projected into its image, coloured by depth (one panel a
    frame, up to 12), written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from calib.camera import get_model
    from calib.io import atomic_write
    from calib.lie import se3
    from calib.targets.detect import read_gray

    lens = get_model(model)
    show = list(zip(frames, clouds, strict=True))[:12]
    cols = min(3, len(show))
    rows = -(-len(show) // cols)
    w, h = image_size
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 5 * rows * h / w + 0.4),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, ((k, img, _), cloud) in zip(axes.ravel(), show, strict=False):
        pc = se3.act(T, cloud)
        uv, ok = lens.project(pc[pc[:, 2] > 0.1], params)
        z = pc[pc[:, 2] > 0.1, 2]
        inside = ok & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
        ax.imshow(read_gray(img), cmap="gray", vmin=0, vmax=255)
        sc = ax.scatter(uv[inside, 0], uv[inside, 1], c=z[inside], s=1.5, cmap="turbo",
                        linewidths=0)
        ax.set_title(f"frame {k}: {img.name}", fontsize=9)
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
    fig.colorbar(sc, ax=axes.ravel().tolist(), shrink=0.6, label="depth (m)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def register(app: typer.Typer) -> None:
    @app.command("camera-lidar")
    def camera_lidar_cmd(
        images: list[str] = typer.Option(None, "--images", help="Image folder, glob or files."),
        clouds: list[str] = typer.Option(None, "--clouds", help="Cloud folder, glob or files."),
        camera: Path = typer.Option(..., "--camera", help="Camera file (intrinsics)."),
        output: Path = typer.Option(..., "-o", "--output", help="4x4 text: T_camera_lidar."),
        report: Path = typer.Option(None, "--report", help="JSON report to write."),
        plot: Path = typer.Option(None, "--plot", help="PNG: LiDAR points over the images."),
        board: str = typer.Option(None, "--board", help="Inner corners COLSxROWS, e.g. 7x5."),
        square: float = typer.Option(None, "--square", help="Square size in metres."),
        target_file: Path = typer.Option(None, "--target", help="Kalibr-style target.yaml."),
        size: str = typer.Option(None, "--board-size",
                                 help="Outer board size WxH (m), if not grid + one square."),
        edges: bool = typer.Option(False, "--edges",
                                   help="Use the board's edges too where the scan rings "
                                        "cross them: needs --board-size, the exact outer "
                                        "size (either order), the pattern centred."),
        roi: str = typer.Option(None, "--roi", help="xmin,xmax,ymin,ymax,zmin,zmax (LiDAR, m)."),
        pairs: Path = typer.Option(None, "--correspondences",
                                   help="2D-3D pairs instead of frames: NPZ (image_points, "
                                        "lidar_points) or text rows u v x y z."),
        detector: str = typer.Option("classic", "--detector", help="classic | sb (chessboard)."),
        workers: int = typer.Option(0, "--workers", help="Detection processes (0: all cores)."),
        timeout: float = typer.Option(30.0, "--timeout", help="Seconds allowed per image."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Camera-LiDAR extrinsics: the board plane from the camera, the board's points in
        each cloud, point-to-plane distances minimised over all frames together."""
        import numpy as np

        from calib.errors import InputError
        from calib.extrinsics import CameraLidarOptions, calibrate_camera_lidar
        from calib.io.clouds import read_cloud

        check_outputs(output, report, plot)
        if pairs is not None:
            if images or clouds or plot is not None:
                raise InputError("--correspondences replaces --images/--clouds (and --plot)")
            return _from_pairs(pairs, camera, output, report, quiet)
        if not images or not clouds:
            raise InputError("give --images and --clouds (or --correspondences FILE)")
        if edges and size is None:
            raise InputError("--edges needs the board's exact outer size: --board-size WxH "
                             "(m, the pattern centred on the board)")
        opts = CameraLidarOptions(roi=parse_roi(roi), edges=edges)
        target = make_target(board, square, target_file, detector)
        bsize = board_size(target, size)
        img_paths = expand_inputs(images, IMAGE_EXT, "image")
        cloud_paths = expand_inputs(clouds, CLOUD_EXT, "cloud")
        check_distinct({"-o": output, "--report": report, "--plot": plot},
                       [*img_paths, *cloud_paths, camera, *([target_file] if target_file else [])])
        frames = pair_frames(img_paths, cloud_paths)
        model, params, isize = load_camera(camera)
        views, reasons = detect_views([f[1] for f in frames], target, isize, workers, timeout,
                                      quiet)
        bad = [(f, r) for f, r in zip(frames, reasons, strict=True) if r is not None]
        for (k, img, _), r in bad:
            info(f"calib: warning: frame {k} ({img.name}) dropped: {r}")
        keep = [i for i, r in enumerate(reasons) if r is None]
        if len(keep) < 3:
            raise InputError(f"only {len(keep)} of {len(frames)} frames have a usable board "
                             "in the image; camera-LiDAR needs at least 3")
        frames = [frames[i] for i in keep]
        cl = [read_cloud(f[2]) for f in frames]
        res = calibrate_camera_lidar(cl, target.points(), [views[i] for i in keep], params,
                                     bsize, model=model, options=opts,
                                     frame_names=[f[2].name for f in frames])
        if not res.converged:
            info(f"calib: warning: the refinement did not converge ({res.message})")
        refuse_most_outliers(res.outlier_frames, len(frames), "frames",
                             "are the images and clouds paired frame by frame, and did the "
                             "board stay still between each image and its scan?")
        if res.outlier_frames:
            info("calib: warning: outlier frames: " + ", ".join(res.outlier_frames))
        report_data = {**res.to_dict(), "inputs": {
            "camera": str(camera), "board_size_m": bsize, "roi": opts.roi,
            "frames": [{"number": k, "image": str(i), "cloud": str(c)} for k, i, c in frames],
            "dropped": [{"number": k, "image": str(i), "reason": r} for (k, i, _), r in bad]}}
        write_outputs([
            (plot, lambda p: write_plot(p, frames, cl, model, params, res.T_camera_lidar, isize)),
            (output, lambda p: write_text(p, matrix_text(res.T_camera_lidar))),
            (report, lambda p: write_json(p, report_data))])
        if not quiet:
            t = res.T_camera_lidar[:3, 3]
            typer.echo(f"T_camera_lidar: t = [{t[0]:.4f}, {t[1]:.4f}, {t[2]:.4f}] m, σ "
                       f"{res.std_trans_m * 1e3:.2f} mm, {res.std_rot_deg:.3f} deg; plane RMS "
                       f"{np.sqrt(np.mean(res.frame_plane_rms_m ** 2)) * 1e3:.1f} mm over "
                       f"{len(frames)} frames")


def load_pairs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels (N, 2), lidar points (N, 3))`` from an NPZ (``image_points``,
    ``lidar_points``) or a text file of ``u v x y z`` rows (comma or whitespace)."""
    import numpy as np

    from calib.errors import InputError
    from calib.io.validate import check_file

    check_file(path, "correspondences file")
    try:
        if path.read_bytes()[:2] == b"PK":
            d = np.load(path, allow_pickle=False)
            return np.asarray(d["image_points"], float), np.asarray(d["lidar_points"], float)
        rows = np.loadtxt(path, delimiter=None if b"," not in path.read_bytes() else ",",
                          ndmin=2)
    except KeyError as exc:
        raise InputError(f"{path}: missing key {exc} (need image_points, lidar_points)"
                         ) from None
    except ValueError as exc:
        raise InputError(f"{path}: not rows of u v x y z ({exc})") from None
    if rows.shape[1] != 5:
        raise InputError(f"{path}: rows have {rows.shape[1]} values, expected 5 (u v x y z)")
    return rows[:, :2], rows[:, 2:]


def _from_pairs(pairs: Path, camera: Path, output: Path, report, quiet: bool) -> None:
    from calib.extrinsics.correspondences import calibrate_from_pairs

    check_distinct({"-o": output, "--report": report}, [pairs, camera])
    uv, pts = load_pairs(pairs)
    model, params, _ = load_camera(camera)
    res = calibrate_from_pairs(pts, uv, params, model)
    data = {**res.to_dict(), "inputs": {"camera": str(camera), "correspondences": str(pairs)}}
    write_outputs([(output, lambda p: write_text(p, matrix_text(res.T_camera_lidar))),
                   (report, lambda p: write_json(p, data))])
    if not quiet:
        d = res.to_dict()
        typer.echo(f"T_camera_lidar from {len(uv)} pairs: RMS {d['rms_all_px']:.2f} px "
                   f"({int(res.inliers.sum())} inliers: {d['rms_inliers_px']:.2f} px), σ "
                   f"{res.std_trans_m * 1e3:.1f} mm, {res.std_rot_deg:.2f} deg")
