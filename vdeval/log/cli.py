"""`vdeval log RUN [RUN ...] --to tensorboard|wandb|mlflow`: the command; the work is in vdeval.log."""
from __future__ import annotations

from pathlib import Path

import typer


def log(
    runs: list[Path] = typer.Argument(..., help="Run directories (or their results.json)."),
    to: str = typer.Option(..., "--to", help="tensorboard, wandb or mlflow."),
    dest: str | None = typer.Option(None, "--dest", help="TensorBoard log dir, W&B dir, or MLflow tracking "
                                       "URI / directory (default: RUN/logs/<tool>)."),
    project: str | None = typer.Option(None, "--project", help="W&B project / MLflow experiment (default vdeval)."),
    name: str | None = typer.Option(None, "--name", help="Run name in the tool (default: the run directory's)."),
    step: int | None = typer.Option(None, "--step", help="Step for generators that record none (default 0)."),
) -> None:
    """Log summary values with intervals and n, metric against step, per-clip tables, figures and previews."""
    from vdeval.log import log_run

    where = log_run(runs, to, dest=dest, project=project, name=name, step=step)
    typer.echo(f"logged to {to}: {where}")


def register(app: typer.Typer) -> None:
    app.command("log")(log)
