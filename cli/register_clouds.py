"""``calib register-clouds``: rigid alignment of two point clouds."""

from __future__ import annotations

from pathlib import Path

import typer

from calib.errors import InputError

from .common import check_outputs, info, write_json, write_text


def register(app: typer.Typer) -> None:
    @app.command("register-clouds")
    def register_clouds_cmd(
        source: Path = typer.Argument(..., help="Cloud to move (PCD, PLY, XYZ/PTS, NPY)."),
        target: Path = typer.Argument(..., help="Fixed cloud."),
        output: Path = typer.Option(..., "-o", "--output", help="4x4 T_target_source (text)."),
        init: Path = typer.Option(None, "--init", help="Initial 4x4 (text or JSON); default: "
                                  "global FPFH + RANSAC alignment."),
        method: str = typer.Option("point-to-plane", "--method",
                                   help="point-to-plane | point-to-point."),
        voxel: float = typer.Option(None, "--voxel", help="Downsample voxel size (m)."),
        max_distance: float = typer.Option(None, "--max-distance",
                                           help="Max correspondence distance (m)."),
        loss: str = typer.Option("auto", "--loss",
                                 help="auto (Huber for point-to-plane) |none|huber|cauchy|tukey."),
        loss_scale: float = typer.Option(None, "--loss-scale",
                                         help="Loss scale (m); default: from the residuals."),
        max_iterations: int = typer.Option(30, "--max-iterations", help="ICP iteration cap."),
        report: Path = typer.Option(None, "--report", help="JSON report."),
        aligned: Path = typer.Option(None, "--aligned", help="Write the moved source (PLY)."),
        plot: Path = typer.Option(None, "--plot", help="Before/after PNG."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Align SOURCE onto TARGET; writes T_target_source (maps source into target)."""
        import numpy as np  # imported here so that `calib --help` starts fast

        from calib.io.clouds import read_cloud, read_transform, write_ply
        from calib.registration import ICPOptions
        from calib.registration import register as register_clouds

        check_outputs(output, report, aligned, plot)
        opts = ICPOptions(method=method, voxel_size=voxel, max_correspondence_distance=max_distance,
                          loss=None if loss == "none" else loss, loss_scale=loss_scale,
                          max_iterations=max_iterations)
        src = read_cloud(source)
        tgt = read_cloud(target)
        T0 = read_transform(init) if init is not None else None
        result = register_clouds(src, tgt, T0, opts)
        write_text(output, "\n".join(" ".join(f"{v:.17g}" for v in row)
                                     for row in result.T_target_source) + "\n")
        if report is not None:
            write_json(report, result.to_dict())
        if aligned is not None:
            T = result.T_target_source
            write_ply(aligned, src @ T[:3, :3].T + T[:3, 3])
        if plot is not None:
            from calib.registration.plots import plot_registration

            plot_registration(src, tgt, T0 if T0 is not None else np.eye(4), result, plot)
        if not quiet:
            typer.echo(result.summary())
        for w in result.warnings:
            info(f"warning: {w}", quiet=False)
        if not np.isfinite(result.T_target_source).all():
            raise InputError("internal: non-finite transform")
