"""`vdeval export RUN --format vbench -o DIR`: the command; the work is in vdeval.export.<format>."""
from __future__ import annotations

from pathlib import Path

import typer

FORMATS = ("vbench",)


def export(
    run: Path = typer.Argument(..., help="Run directory (or its results.json) to export."),
    format: str = typer.Option(..., "--format", "-f", help="Output format: vbench."),
    out: Path | None = typer.Option(None, "-o", "--out", help="Output directory (default: RUN/export-FORMAT)."),
) -> None:
    """Write a run's numbers in another tool's results layout (VBench: {generator}_eval_results.json)."""
    from vdeval.errors import VdevalError, closest

    if format not in FORMATS:
        guess = closest(format, FORMATS)
        raise VdevalError(f"unknown export format {format!r}", f"did you mean {guess!r}?" if guess else f"one of {', '.join(FORMATS)}")
    from vdeval.export.vbench import export_vbench

    base = run.parent if run.is_file() else run
    out = out or base / f"export-{format}"
    summary = export_vbench(run, out)
    for gen, s in summary["generators"].items():
        for dim, d in s["exported"].items():
            typer.echo(f"{gen}: {dim} = {d['aggregate']:.4f} ({d['videos']} videos; vdeval {d['vdeval_metric']} on {d['backbone']})")
        for dim, why in s["not_exported"].items():
            typer.echo(f"{gen}: {dim} not exported: {why}")
    typer.echo(f"written: {out}")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
