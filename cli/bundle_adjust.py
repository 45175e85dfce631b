"""``calib bundle-adjust``: refine a BAL problem's cameras and points."""

from __future__ import annotations

from pathlib import Path

import typer

from calib.errors import InputError

from .common import check_outputs, info, write_json


def register(app: typer.Typer) -> None:
    @app.command("bundle-adjust")
    def bundle_adjust_cmd(
        problem: Path = typer.Argument(..., help="BAL problem file."),
        output: Path = typer.Option(..., "-o", "--output", help="Refined BAL file."),
        report: Path = typer.Option(None, "--report", help="JSON report."),
        loss: str = typer.Option("none", "--loss", help="none|huber|cauchy|soft_l1|tukey."),
        loss_scale: float = typer.Option(1.0, "--loss-scale", help="Loss scale (pixels)."),
        max_iterations: int = typer.Option(50, "--max-iterations", help="LM iteration cap."),
        linear_solver: str = typer.Option("auto", "--linear-solver",
                                          help="auto | dense | sparse | cg."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary."),
    ) -> None:
        """Bundle adjustment with points eliminated by the Schur complement."""
        from calib.bundle import bundle_adjust_problem, read_bal, write_bal  # fast --help

        if linear_solver not in ("auto", "dense", "sparse", "cg"):
            raise InputError(f"--linear-solver {linear_solver!r}: choose auto, dense, sparse "
                             "or cg")
        check_outputs(output, report)
        bal = read_bal(problem)
        info(f"{problem}: {len(bal.cameras)} cameras, {len(bal.points)} points, "
             f"{len(bal.observations)} observations", quiet)

        def progress(rec):
            if not quiet:
                typer.echo(f"iter {rec.iteration:3d}  cost {rec.cost:.6e}  |g| "
                           f"{rec.gradient_max_norm:.2e}  mu {rec.damping:.1e}  "
                           f"{'accepted' if rec.accepted else 'rejected'}  {rec.time_s:.3f} s",
                           err=True)

        res = bundle_adjust_problem(bal, loss=None if loss == "none" else loss,
                                    loss_scale=loss_scale, max_iterations=max_iterations,
                                    linear_solver=linear_solver, callback=progress)
        write_bal(output, res.as_problem(bal))
        if report is not None:
            write_json(report, res.to_dict())
        if not quiet:
            typer.echo(f"{res.termination}: {res.message}\ninitial cost {res.initial_cost:.6e}"
                       f"  final cost {res.final_cost:.6e}  iterations {res.iterations}  "
                       f"time {res.time_s:.2f} s  ({res.summary.linear_solver})")
