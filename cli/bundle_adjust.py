"""``calib bundle-adjust``: refine a BAL problem's cameras and points."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import check_distinct, check_outputs, flags, info, write_json, write_outputs

FLAGS = {"loss_scale": "--loss-scale", "loss": "--loss", "max_iterations": "--max-iterations",
         "linear_solver": "--linear-solver"}


def register(app: typer.Typer) -> None:
    @app.command("bundle-adjust")
    def bundle_adjust_cmd(
        problem: Path = typer.Argument(..., help="BAL problem file."),
        output: Path = typer.Option(..., "-o", "--output", help="Refined BAL file."),
        report: Path = typer.Option(None, "--report", help="JSON report."),
        plot: Path = typer.Option(None, "--plot", help="PNG: cost per iteration and a "
                                  "histogram of reprojection errors."),
        loss: str = typer.Option("none", "--loss", help="none|huber|cauchy|soft_l1|tukey."),
        loss_scale: float = typer.Option(1.0, "--loss-scale", help="Loss scale (pixels)."),
        max_iterations: int = typer.Option(50, "--max-iterations", help="LM iteration cap."),
        linear_solver: str = typer.Option("auto", "--linear-solver",
                                          help="auto | dense | sparse | cg."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Bundle adjustment with points eliminated by the Schur complement."""
        from calib.bundle import bundle_adjust_problem, read_bal, write_bal
        from calib.errors import InputError

        if linear_solver not in ("auto", "dense", "sparse", "cg"):
            raise InputError(f"--linear-solver {linear_solver!r}: choose auto, dense, sparse "
                             "or cg")
        check_outputs(output, report, plot)
        check_distinct({"-o": output, "--report": report, "--plot": plot}, [problem])
        bal = read_bal(problem)
        info(f"{problem}: {len(bal.cameras)} cameras, {len(bal.points)} points, "
             f"{len(bal.observations)} observations", quiet)

        def progress(rec):
            if not quiet:
                typer.echo(f"iter {rec.iteration:3d}  cost {rec.cost:.6e}  |g| "
                           f"{rec.gradient_max_norm:.2e}  mu {rec.damping:.1e}  "
                           f"{'accepted' if rec.accepted else 'rejected'}  {rec.time_s:.3f} s",
                           err=True)

        with flags(FLAGS):
            res = bundle_adjust_problem(bal, loss=None if loss == "none" else loss,
                                        loss_scale=loss_scale, max_iterations=max_iterations,
                                        linear_solver=linear_solver, callback=progress)

        def draw(path: Path) -> None:
            from calib.bundle.plots import plot_bundle

            plot_bundle(bal, res, path)

        data = res.to_dict() if report is None else {**res.to_dict(),
                                                     "intrinsics_std": _intrinsics_std(bal, res,
                                                                                       loss,
                                                                                       loss_scale)}
        write_outputs([(output, lambda p: write_bal(p, res.as_problem(bal))),
                       (report, lambda p: write_json(p, data)), (plot, draw)])
        if not quiet:
            typer.echo(f"{res.termination}: {res.message}\ninitial cost {res.initial_cost:.6e}"
                       f"  final cost {res.final_cost:.6e}  iterations {res.iterations}  "
                       f"time {res.time_s:.2f} s  ({res.summary.linear_solver})")
            if plot is not None:
                info(f"plot: {plot}")


def _intrinsics_std(bal, res, loss: str, loss_scale: float) -> dict:
    """The report's σ of every camera's ``(f, k1, k2)`` (null where a camera has no
    observation; ``skipped`` when the camera system is too large for a dense inverse)."""
    import numpy as np

    from calib.bundle.uncertainty import MAX_CAMERAS, intrinsics_std

    sd = intrinsics_std(res.cameras, res.points, bal.camera_index, bal.point_index,
                        bal.observations, None if loss == "none" else loss, loss_scale)
    if sd is None:
        return {"skipped": f"{len(res.cameras)} cameras; computed up to {MAX_CAMERAS}"}
    return {name: [float(v) if np.isfinite(v) else None for v in sd[:, k]]
            for k, name in enumerate(("f", "k1", "k2"))}
