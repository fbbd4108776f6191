"""Reports from results files: index.html (self-contained), summary.md, summary.csv.

`write_report(run_dirs, out_dir)` is what `vdeval run` calls at the end of a run and what
`vdeval report` calls; it reads results.json (and clips/ for previews) and nothing else.
"""
from __future__ import annotations

from pathlib import Path


def write_report(run_dirs: list[Path], out_dir: Path, baseline: str | None = None,
                 previews_per_metric: int = 1, grid_prompts: list[str] | None = None, grid_size: int = 4) -> Path:
    """Write index.html, summary.md and summary.csv (and summary.parquet with pyarrow) into out_dir;
    return the index.html path.

    baseline: display name of the generator others are compared with (default: the suite's
    `baseline:`, else the generator with the last training step, else the first).
    previews_per_metric: best and worst clips per per-clip metric and generator.
    grid_prompts: prompts of the same-prompt grid (default: the grid_size most discriminating).
    Raises vdeval.errors.ResultsError on unreadable or incompatible results."""
    from vdeval.report.build import build_report

    return build_report([Path(p) for p in run_dirs], Path(out_dir), baseline=baseline,
                        previews_per_metric=previews_per_metric, grid_prompts=grid_prompts, grid_size=grid_size)


__all__ = ["write_report"]
