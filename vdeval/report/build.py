"""Assemble a report: tables -> statistics -> figures -> previews -> files (written atomically)."""
from __future__ import annotations

from pathlib import Path

from vdeval.errors import ResultsError
from vdeval.report import compare, html, markdown, plots, previews, tables
from vdeval.store import RunDir, atomic_write_bytes, atomic_write_text, csv_safe_frame

GRID_PROMPTS = 4


def build_report(run_dirs: list[Path], out_dir: Path, baseline: str | None = None,
                 previews_per_metric: int = 1, grid_prompts: list[str] | None = None,
                 grid_size: int = GRID_PROMPTS) -> Path:
    merged = tables.load_runs(run_dirs)
    if baseline is not None:
        base, why = merged.resolve_generator(baseline), "chosen with --baseline"  # raises with a guess
    else:
        base, why = merged.default_baseline()
    out = RunDir(out_dir).root  # refuses an out path that is a file

    diffs = compare.compare_generators(merged, base) if len(merged.generators) > 1 else []
    best = compare.best_marks(merged)
    figures = {
        "summary": plots.summary_plot(merged),
        "differences": plots.differences_plot(diffs, merged) if diffs else None,
        "steps": plots.steps_plot(merged, compare.step_series(merged)),
        "curves": plots.curves_plot(merged, compare.curves_by_metric(merged)),
    }
    chosen = previews.select_previews(merged, k=previews_per_metric)
    prompts, grid_why = _grid_prompts(merged, grid_prompts, grid_size)
    grid = previews.grid_previews(merged, prompts)
    failures_df = tables.failures(merged)
    title = "vdeval report: " + ", ".join(merged.generators)

    page = html.render(merged, title=title, diffs=diffs, baseline=base if diffs else None, plots=figures,
                       prompt_tables=tables.per_prompt(merged), previews=chosen, failures_df=failures_df,
                       best=best, baseline_why=why, grid=grid, grid_why=grid_why)
    summary_md = markdown.render(merged, title=title, diffs=diffs, baseline=base if diffs else None,
                                 failures_df=failures_df, best=best, baseline_why=why)
    summary = tables.summary_table(merged)
    atomic_write_text(out / "summary.csv", csv_safe_frame(summary).to_csv(index=False, lineterminator="\n"))
    _write_parquet(out / "summary.parquet", summary)
    atomic_write_text(out / "summary.md", summary_md)
    if diffs:
        atomic_write_text(out / "comparison.csv",
                          csv_safe_frame(compare.differences_frame(diffs)).to_csv(index=False, lineterminator="\n"))
    elif (out / "comparison.csv").exists():  # stale from an earlier, multi-generator report
        (out / "comparison.csv").unlink()
    return atomic_write_text(out / "index.html", page)


def _grid_prompts(merged, chosen: list[str] | None, k: int) -> tuple[list[str], str]:
    """The grid's prompts and a sentence saying how they were picked."""
    if chosen:
        known = {c.prompt for c in merged.clips}
        for p in chosen:
            if p not in known:
                from vdeval.registry import closest

                guess = closest(p, known)
                raise ResultsError(f"grid prompt {p!r} is not in the results",
                                   f"did you mean {guess!r}?" if guess else "pass a prompt exactly as in the suite")
        return list(chosen), "Prompts chosen for the report."
    picked = compare.discriminating_prompts(merged, k)
    return picked, (f"The {len(picked)} prompts on which the generators differ most (range of per-prompt means "
                    "across generators, in units of each metric's spread, summed over per-clip metrics).")


def _write_parquet(path: Path, df) -> Path | None:
    """A Parquet copy of a table when pyarrow is installed (the `parquet` extra); else nothing."""
    import importlib.util
    import io

    if importlib.util.find_spec("pyarrow") is None:
        return None
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())
