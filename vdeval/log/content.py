"""What every logger sends, gathered once from results files: scalars (value, interval, n),
metric-against-step points, the summary and per-clip tables, figures (PNG) and previews (GIF)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vdeval.report import compare, plots, previews, tables


@dataclass
class Scalar:
    tag: str
    value: float
    step: int


@dataclass
class Content:
    name: str
    params: dict
    scalars: list[Scalar]
    summary: pd.DataFrame
    clips: pd.DataFrame
    figures: dict[str, bytes] = field(default_factory=dict)
    previews: dict[str, bytes] = field(default_factory=dict)


def tag(*parts) -> str:
    """A tag every tool accepts (MLflow allows letters, digits, _ - . / and space)."""
    return "/".join(re.sub(r"[^A-Za-z0-9_.\- ]", "_", str(p)) for p in parts)


def _scalars(merged: tables.Merged, step: int | None) -> list[Scalar]:
    out = []
    for r in merged.summary.to_dict("records"):
        g = merged.generators[r["generator"]]
        s = int(g.step) if g.step is not None and math.isfinite(g.step) else int(step or 0)
        # value, ci_low, ci_high, n side by side: no tag is a prefix of another (MLflow's file store
        # keeps metric "a/b" as a file, so "a/b/ci_low" could not exist beside it)
        for key in ("value", "ci_low", "ci_high", "n"):
            v = tables.num(r[key])
            if math.isfinite(v):
                out.append(Scalar(tag(r["metric"], r["generator"], key), v, s))
    # metric against step: one series per training run (see compare.step_series)
    for m, df in compare.step_series(merged).items():
        for row in df.to_dict("records"):
            for key in ("value", "ci_low", "ci_high"):
                v = tables.num(row[key])
                if math.isfinite(v):
                    out.append(Scalar(tag("by_step", m, row["line"], key), v, int(row["step"])))
    return out


def _clip_table(merged: tables.Merged) -> pd.DataFrame:
    long = tables.clip_scores(merged)
    if long.empty:
        return pd.DataFrame(columns=["generator", "clip_id", "prompt", "seed"])
    wide = long.pivot_table(index=["generator", "clip_id", "prompt", "seed"], columns="metric", values="value")
    return wide.reset_index()[["generator", "clip_id", "prompt", "seed"] + [m for m in merged.metrics
                                                                            if m in wide.columns]]


def collect(run_dirs: list[Path], step: int | None = None, previews: int = 1) -> Content:
    merged = tables.load_runs(run_dirs)
    figs = {
        "summary": plots.summary_plot(merged),
        "steps": plots.steps_plot(merged, compare.step_series(merged)),
        "curves": plots.curves_plot(merged, compare.curves_by_metric(merged)),
    }
    gifs = {}
    for p in previews_of(merged, previews):
        gifs[tag("previews", p.metric, p.generator, p.kind, p.clip_id)] = p.gif
    first = merged.runs[0].results
    params = {"suite": first.suite_name, "suite_hash": first.suite_hash, "vdeval": first.provenance.vdeval,
              "generators": ", ".join(merged.generators), "runs": ", ".join(r.name for r in merged.runs)}
    return Content(name=merged.runs[0].name, params=params, scalars=_scalars(merged, step),
                   summary=tables.summary_table(merged), clips=_clip_table(merged),
                   figures={k: v for k, v in figs.items() if v}, previews=gifs)


def previews_of(merged: tables.Merged, k: int):
    return [p for p in previews.select_previews(merged, k=k) if p.gif]
