"""Reports from results files: index.html (self-contained), summary.md, summary.csv.

`write_report(run_dirs, out_dir)` is what `vdeval run` calls at the end of a run and what
`vdeval report` calls; it reads results.json (and clips/ for previews) and nothing else.
"""
from __future__ import annotations

from pathlib import Path


def write_report(run_dirs: list[Path], out_dir: Path, baseline: str | None = None,
                 previews_per_metric: int = 3) -> Path:
    """Write index.html, summary.md and summary.csv into out_dir; return the index.html path.

    baseline: display name of the generator others are compared with (default: the first).
    Raises vdeval.errors.ResultsError on unreadable or incompatible results."""
    from vdeval.report.build import build_report

    return build_report([Path(p) for p in run_dirs], Path(out_dir), baseline=baseline,
                        previews_per_metric=previews_per_metric)


__all__ = ["write_report"]
