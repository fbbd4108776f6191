"""The closing summary of `vdeval run` in the terminal: generators as columns and metrics as rows,
marked by the report's rules (vdeval/report/rules.py: ★/☆ best among the compared generators,
references and controls named, frozen flags). Reads a Results model, nothing else.

It fits the width it is given without breaking a number or a name: generators are wrapped by
column into as many tables as the width needs (each repeating the metric column), and when not
even one generator column fits, every value is stacked on its own line instead."""
from __future__ import annotations

import io
import os
import shutil
import sys
import textwrap
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from vdeval.report import rules
from vdeval.report.compare import best_marks
from vdeval.report.tables import Merged, fmt, fmt_ci, merge_results
from vdeval.results import Results

DEFAULT_WIDTH = 100  # no terminal (a log file, a pipe, CI) and no $COLUMNS


def output_width(stream=None) -> int:
    """The terminal's width; $COLUMNS when set; else DEFAULT_WIDTH (never a guess at a pipe's)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return max(20, int(os.environ["COLUMNS"]))
    stream = stream if stream is not None else sys.stdout
    try:
        if stream.isatty():
            return max(20, shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns)
    except (AttributeError, ValueError, OSError):
        pass
    return DEFAULT_WIDTH


class _Cells:
    """Every cell's text once, shared by the table and the stacked layouts."""

    def __init__(self, results: Results):
        self.merged: Merged = merge_results([("run", Path("."), results)])
        m = self.merged
        self.best = best_marks(m)
        self.frozen = rules.frozen_fractions(m)
        self.rows = {(r["generator"], r["metric"]): r for r in m.summary.to_dict("records")}

    def metric(self, metric: str) -> tuple[str, str]:
        meta = self.merged.metrics[metric]
        arrow = "↑" if meta.higher_is_better else "↓"
        backbones = sorted({str(r["backbone"]) for (g, mm), r in self.rows.items() if mm == metric and r["backbone"]})
        return f"{metric} {arrow}", ", ".join(backbones) or "no backbone"

    def header(self, g: str) -> list[str]:
        label = rules.role_label(self.merged, g)
        return [g] + ([f"({label})"] if label else [])

    def value(self, g: str, metric: str) -> list[tuple[str, str]]:
        """(text, style) lines: value with marks, interval, count, error."""
        r = self.rows.get((g, metric))
        if r is None:
            return [("—", "")]
        b = self.best.get(metric)
        mark = ""
        if b is not None and b.generator == g:
            mark = f" {rules.STAR}" if b.significant else f" {rules.HOLLOW}"
        flag = rules.frozen_flag(self.merged, g, metric, self.frozen)
        value = "n/a" if r["error"] and fmt(r["value"]) == "—" else fmt(r["value"])
        n = f"n={int(r['n'])}" + (f" +{int(r['n_failed'])} failed" if r["n_failed"] else "")
        out = [(value + mark + (f" {flag}" if flag else ""), "bold"), (fmt_ci(r["ci_low"], r["ci_high"]), "dim"),
               (n, "dim")]
        if r["error"]:
            out.append((r["error"][:60], "red"))
        return out

    def legend(self) -> list[str]:
        return ["↑/↓ better direction; value with 95% CI and clip count."] + rules.legend(self.merged)


def _table(cells: _Cells, gens: list[str], title: str) -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("metric", style="bold", no_wrap=True)
    for g in gens:
        table.add_column(escape("\n".join(cells.header(g))), justify="right", no_wrap=True)
    for m in cells.merged.metrics:
        name, backbone = cells.metric(m)
        row = [f"{escape(name)}\n[dim]{escape(backbone)}[/dim]"]
        for g in gens:
            row.append("\n".join(f"[{style}]{escape(t)}[/{style}]" if style else escape(t)
                                 for t, style in cells.value(g, m)))
        table.add_row(*row)
    return table


def _fits(console: Console, table: Table, width: int) -> bool:
    """The table's natural width (every cell on its lines, unbroken) is at most `width`."""
    return console.measure(table, options=console.options.update_width(10_000)).maximum <= width


def _stacked(cells: _Cells, width: int) -> str:
    """One line per value, indented under its metric; long lines wrap at spaces only."""
    lines = ["vdeval summary"]
    wrap = lambda text, indent: textwrap.wrap(text, width, subsequent_indent=indent, break_long_words=False,  # noqa: E731
                                              break_on_hyphens=False) or [text]
    for m in cells.merged.metrics:
        name, backbone = cells.metric(m)
        lines += wrap(f"{name} [{backbone}]", "  ")
        for g in cells.merged.generators:
            head = " ".join(cells.header(g))
            lines += wrap(f"  {head}: " + "  ".join(t for t, _ in cells.value(g, m)), "      ")
    return "\n".join(lines)


def render(results: Results, width: int = 120, color: bool = False) -> str:
    """The summary as text at most `width` columns wide (ANSI colours only with color=True)."""
    cells = _Cells(results)
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=color, color_system="standard" if color else None,
                      highlight=False)
    gens = list(cells.merged.generators)
    groups: list[list[str]] = []
    for g in gens:  # wrap by column: as many generators per table as the width holds
        if groups and _fits(console, _table(cells, groups[-1] + [g], ""), width):
            groups[-1].append(g)
        elif _fits(console, _table(cells, [g], ""), width):
            groups.append([g])
        else:
            groups = []
            break
    if gens and not groups:
        text = _stacked(cells, width)
    else:
        for group in groups or [[]]:
            part = f" ({gens.index(group[0]) + 1}-{gens.index(group[-1]) + 1} of {len(gens)} generators)" \
                if len(groups) > 1 else ""
            console.print(_table(cells, group, "vdeval summary" + part))
        text = "\n".join(line.rstrip() for line in buf.getvalue().rstrip("\n").splitlines())
    legend = [ln for para in cells.legend() for ln in textwrap.wrap(para, width, break_long_words=False)]
    return text + "\n" + "\n".join(legend)
