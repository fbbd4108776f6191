"""`vdeval check RUN [--baseline RUN] [--rules FILE]`: the command; the rules are in vdeval.check.rules.

Exit codes: 0 every rule holds, 1 a rule fails, 2 bad input (a VdevalError, mapped by vdeval.cli).
"""
from __future__ import annotations

from pathlib import Path

import typer

EXIT_RULE_FAILED = 1


def check(
    run: Path = typer.Argument(..., help="Run directory (or its results.json) to check."),
    baseline: Path | None = typer.Option(None, "--baseline", help="Run to compare with (needed by "
                                            "max_regression and not_significantly_worse rules)."),
    rules: Path | None = typer.Option(None, "--rules", help="YAML rules file (default: the suite's checks:)."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here."),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="Write a Markdown summary here."),
) -> None:
    """Check a run against rules; exit 0 if all hold, 1 if any fails, 2 on bad input."""
    from vdeval.check.rules import junit_xml, markdown, run_check
    from vdeval.store import atomic_write_bytes, atomic_write_text

    outcomes = run_check(run, baseline, rules)
    for o in outcomes:
        typer.echo(o.line())
    failed = sum(not o.passed for o in outcomes)
    typer.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    if junit is not None:
        atomic_write_bytes(junit, junit_xml(outcomes))
    if markdown_out is not None:
        atomic_write_text(markdown_out, markdown(outcomes))
    if failed:
        raise typer.Exit(EXIT_RULE_FAILED)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
