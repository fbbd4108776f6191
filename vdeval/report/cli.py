"""`vdeval report RUN [RUN ...] -o DIR`: the command; the work is in vdeval.report.build."""
from __future__ import annotations

from pathlib import Path

import typer


def report(
    runs: list[Path] = typer.Argument(..., help="Run directories (or their results.json); several are merged."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Output directory (default: RUN/report for one run)."),
    baseline: str | None = typer.Option(None, "--baseline", help="Generator the others are compared with "
                                           "(default: the suite's baseline:, else the last step, else the first)."),
    previews: int = typer.Option(1, "--previews", min=0, help="Best and worst clips shown per per-clip metric "
                                 "and generator."),
    grid_prompt: list[str] | None = typer.Option(None, "--grid-prompt", help="A prompt for the same-prompt "
                                                    "grid (repeat; default: the most discriminating)."),
    grid: int = typer.Option(4, "--grid", min=0, help="Prompts in the same-prompt grid when none is chosen."),
) -> None:
    """Write index.html (self-contained), summary.md and summary.csv from results files."""
    from vdeval.errors import VdevalError
    from vdeval.report import write_report

    if out is None:
        if len(runs) != 1:
            raise VdevalError("several runs need an output directory", "pass -o DIR")
        out = (runs[0].parent if runs[0].is_file() else runs[0]) / "report"
    index = write_report(runs, out, baseline=baseline, previews_per_metric=previews, grid_prompts=grid_prompt or None,
                         grid_size=grid)
    typer.echo(f"report: {index}")
    typer.echo(f"summary: {index.parent / 'summary.md'}  table: {index.parent / 'summary.csv'}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
