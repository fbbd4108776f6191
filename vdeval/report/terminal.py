"""The closing summary of `vdeval run` in the terminal: a rich table pivoted so generators are
columns and metrics rows, the best value per metric marked as in the HTML report (★ significant,
☆ best value but not significantly ahead). Reads a Results model, nothing else."""
from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vdeval.report.compare import best_marks
from vdeval.report.tables import fmt, fmt_ci, merge_results
from vdeval.results import Results


def summary_table(results: Results) -> Table:
    merged = merge_results([("run", Path("."), results)])
    best = best_marks(merged)
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    table = Table(title="vdeval summary", title_justify="left", show_lines=True)
    table.add_column("metric", style="bold", no_wrap=True)
    for g in merged.generators:
        table.add_column(escape(g), justify="right", overflow="fold")  # fold, never elide, a number
    for m, meta in merged.metrics.items():
        arrow = "↑" if meta.higher_is_better else "↓"
        backbones = sorted({str(r["backbone"]) for (g, mm), r in rows.items() if mm == m and r["backbone"]})
        cells = [f"{escape(m)} {arrow}\n[dim]{', '.join(backbones) or 'no backbone'}[/dim]"]
        b = best.get(m)
        for g in merged.generators:
            r = rows.get((g, m))
            if r is None:
                cells.append("—")
                continue
            mark = ""
            if b is not None and b.generator == g:
                mark = " [bold green]★[/bold green]" if b.significant else " ☆"
            value = "n/a" if r["error"] and fmt(r["value"]) == "—" else fmt(r["value"])
            n = f"n={int(r['n'])}" + (f" +{int(r['n_failed'])} failed" if r["n_failed"] else "")
            why = f"\n[red]{escape(r['error'][:60])}[/red]" if r["error"] else ""
            cells.append(f"[bold]{value}[/bold]{mark}\n[dim]{fmt_ci(r['ci_low'], r['ci_high'])}\n{n}[/dim]{why}")
        table.add_row(*cells)
    table.caption = ("↑/↓ better direction; value with 95% CI and clip count; ★ best and significantly "
                     "better than every other generator, ☆ best value, not significantly")
    table.caption_justify = "left"
    return table


def render(results: Results, width: int = 120, color: bool = False) -> str:
    """The table as text (ANSI colours only with color=True)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    console.print(summary_table(results))
    return buf.getvalue().rstrip("\n")
