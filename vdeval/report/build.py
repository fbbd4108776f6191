"""Assemble a report: tables -> statistics -> figures -> previews -> files (written atomically)."""
from __future__ import annotations

from pathlib import Path

from vdeval.report import compare, html, markdown, plots, previews, tables
from vdeval.store import RunDir, atomic_write_text, csv_safe_frame


def build_report(run_dirs: list[Path], out_dir: Path, baseline: str | None = None,
                 previews_per_metric: int = 3) -> Path:
    merged = tables.load_runs(run_dirs)
    base = merged.resolve_generator(baseline)  # raises with a guess before any work is done
    out = RunDir(out_dir).root  # refuses an out path that is a file

    diffs = compare.compare_generators(merged, base) if len(merged.generators) > 1 else []
    figures = {
        "summary": plots.summary_plot(merged),
        "differences": plots.differences_plot(diffs) if diffs else None,
        "steps": plots.steps_plot(merged, compare.step_series(merged)),
        "curves": plots.curves_plot(merged, compare.curves_by_metric(merged)),
    }
    chosen = previews.select_previews(merged, k=previews_per_metric)
    failures_df = tables.failures(merged)
    title = "vdeval report: " + ", ".join(merged.generators)

    page = html.render(merged, title=title, diffs=diffs, baseline=base if diffs else None, plots=figures,
                       prompt_tables=tables.per_prompt(merged), previews=chosen, failures_df=failures_df)
    summary_md = markdown.render(merged, title=title, diffs=diffs, baseline=base if diffs else None,
                                 failures_df=failures_df)
    csv_text = csv_safe_frame(tables.summary_table(merged)).to_csv(index=False, lineterminator="\n")

    atomic_write_text(out / "summary.csv", csv_text)
    atomic_write_text(out / "summary.md", summary_md)
    if diffs:
        atomic_write_text(out / "comparison.csv",
                          csv_safe_frame(compare.differences_frame(diffs)).to_csv(index=False, lineterminator="\n"))
    elif (out / "comparison.csv").exists():  # stale from an earlier, multi-generator report
        (out / "comparison.csv").unlink()
    return atomic_write_text(out / "index.html", page)
