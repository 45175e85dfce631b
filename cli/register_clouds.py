"""``calib register-clouds``: rigid alignment of two point clouds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # imported in the functions: --help starts fast
    import numpy as np

from .common import (
    check_distinct,
    check_outputs,
    flags,
    info,
    matrix_text,
    write_json,
    write_outputs,
    write_text,
)

#: the library's parameter names and this command's flags (library messages name the former)
FLAGS = {"init": "--init", "voxel_size": "--voxel", "max_correspondence_distance":
         "--max-distance", "loss_scale": "--loss-scale", "loss": "--loss",
         "max_iterations": "--max-iterations", "method": "--method",
         "min_fitness": "--min-fitness"}


def _check_trust(result, keep: bool) -> None:
    """Exit 3 when the data leave motions free, exit 4 when the result fails its checks;
    ``--keep-unconverged`` writes it anyway (the problems are printed as warnings)."""
    from calib.errors import DegenerateError, NotConvergedError
    from calib.registration.icp import UNITS_QUESTION

    if keep:
        return
    tail = " (nothing written; --keep-unconverged writes it anyway)"
    # the clouds' sizes differing by ~1000x is the likeliest cause of any failure: say so
    units = [w for w in result.warnings if w.endswith(UNITS_QUESTION)]
    if units:
        tail = f"; {units[0]}{tail}"
    if result.degeneracy.singular:
        raise DegenerateError("the clouds do not determine the pose: free "
                              + ", ".join(result.degeneracy.free_motions) + tail)
    if result.problems:
        raise NotConvergedError("; ".join(result.problems) + tail)


def _check_transform(T: np.ndarray) -> None:
    """A non-finite or non-rotation result is calib's fault (exit 1), caught before writing."""
    import numpy as np

    from calib.errors import CalibError

    if not np.isfinite(T).all() or not np.linalg.det(T[:3, :3]) > 0:
        raise CalibError("internal error: the registration produced a non-finite or "
                         "non-rigid transform (nothing written; rerun with --debug)")


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
        min_fitness: float = typer.Option(0.3, "--min-fitness",
                                          help="Least matched fraction of the source to accept."),
        keep: bool = typer.Option(False, "--keep-unconverged",
                                  help="Write the result even when it did not converge, fails "
                                  "its checks or leaves motions free (exit 0, with warnings)."),
        report: Path = typer.Option(None, "--report", help="JSON report."),
        aligned: Path = typer.Option(None, "--aligned", help="Write the moved source (PLY)."),
        plot: Path = typer.Option(None, "--plot", help="Before/after PNG."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary."),
    ) -> None:
        """Align SOURCE onto TARGET; writes T_target_source (maps source into target).

        Exit 0 only for a converged result that passed its checks; exit 3 when the clouds
        leave a motion free (a line, a sphere, a plane), exit 4 when it did not converge or
        matched less than --min-fitness of the source; nothing is written then."""
        from calib.io.clouds import read_cloud, read_transform, write_ply
        from calib.lie import se3
        from calib.registration import ICPOptions
        from calib.registration import register as register_clouds

        check_outputs(output, report, aligned, plot)
        check_distinct({"-o": output, "--report": report, "--aligned": aligned,
                        "--plot": plot}, [source, target, init])
        with flags(FLAGS):
            opts = ICPOptions(method=method, voxel_size=voxel,
                              max_correspondence_distance=max_distance,
                              loss=None if loss == "none" else loss, loss_scale=loss_scale,
                              max_iterations=max_iterations, min_fitness=min_fitness)
            src = read_cloud(source)
            tgt = read_cloud(target)
            T0 = read_transform(init) if init is not None else None
            result = register_clouds(src, tgt, T0, opts)
        T = result.T_target_source
        _check_transform(T)
        _check_trust(result, keep)

        def draw(path: Path) -> None:
            import numpy as np

            from calib.registration.plots import plot_registration

            plot_registration(src, tgt, T0 if T0 is not None else np.eye(4), result, path)

        write_outputs([(output, lambda p: write_text(p, matrix_text(T))),
                       (report, lambda p: write_json(p, result.to_dict())),
                       (aligned, lambda p: write_ply(p, se3.act(T, src))),
                       (plot, draw)])
        if not quiet:
            typer.echo(result.summary(warnings=False))
            if plot is not None:
                info(f"plot: {plot}")
        for w in result.warnings + result.problems:
            info(f"warning: {w}")
