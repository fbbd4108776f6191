"""Load one or more runs' results and lay them out as pandas tables.

Only results files are read here (results.json via vdeval.results.load_results, typed); the
clips a run dir holds are looked at by previews.py, never by the tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vdeval.compare import num
from vdeval.errors import ResultsError
from vdeval.registry import closest
from vdeval.results import ClipRecord, GeneratorInfo, MetricRecord, Results, load_results
from vdeval.store import RESULTS_FILE

SUMMARY_COLUMNS = [
    "generator", "metric", "value", "ci_low", "ci_high", "n", "n_failed", "n_real",
    "backbone", "higher_is_better", "level", "step", "run", "error",
]


@dataclass
class Run:
    name: str
    dir: Path  # the run directory (where clips/ lives)
    results: Results


@dataclass
class Generator:
    name: str  # display name, unique across merged runs
    source: str  # name inside its run (clips/<source>/...)
    run: Run
    info: GeneratorInfo = field(default_factory=lambda: GeneratorInfo(kind="unknown"))

    @property
    def step(self):
        return None if self.info.step is None else float(self.info.step)


@dataclass
class Merged:
    """Several runs' results side by side: generators by display name, metrics by name."""

    runs: list[Run]
    generators: dict[str, Generator]
    metrics: dict[str, MetricRecord]
    summary: pd.DataFrame
    clips: list[ClipRecord]  # every run's clips, `generator` set to its display name

    @property
    def generator_names(self) -> list[str]:
        return list(self.generators)

    def clip_metrics(self) -> list[str]:
        return [m for m, meta in self.metrics.items() if meta.level != "set"]

    def default_baseline(self) -> tuple[str, str]:
        """(generator, why): the suite's declared `baseline:`, else the last training step, else the first."""
        for r in self.runs:
            declared = r.results.baseline
            if declared:
                hits = [g.name for g in self.generators.values() if g.source == declared and g.run is r]
                if hits:
                    return hits[0], "the suite's declared baseline"
        stepped = [(g.step, i, g.name) for i, g in enumerate(self.generators.values())
                   if g.step is not None and math.isfinite(g.step)]
        if stepped:
            return max(stepped)[2], "the last training step"
        return self.resolve_generator(None), "the first generator"

    def resolve_generator(self, name: str | None) -> str:
        """A generator's display name; None means the first. Unknown names raise with a guess."""
        if not self.generators:
            raise ResultsError("the results hold no generator")
        if name is None:
            return next(iter(self.generators))
        if name in self.generators:
            return name
        # accept the run-local name when it is unambiguous after prefixing
        by_source = [g.name for g in self.generators.values() if g.source == name]
        if len(by_source) == 1:
            return by_source[0]
        guess = closest(name, self.generators)
        hint = f"did you mean {guess!r}?" if guess else f"generators: {', '.join(self.generators)}"
        raise ResultsError(f"baseline generator {name!r} is not in the results", hint)


def _run_dir(path: Path) -> Path:
    path = Path(path)
    return path.parent if path.name == RESULTS_FILE or path.is_file() else path


def load_runs(paths: list[Path]) -> Merged:
    """Load and merge runs. Generator names that clash across runs get "<run>/" in front."""
    if not paths:
        raise ResultsError("no run given", "pass one or more run directories")
    loaded = []
    for p in paths:
        d = _run_dir(Path(p))
        loaded.append((d.resolve().name or str(d), d, load_results(p)))
    return merge_results(loaded)


def merge_results(loaded: list[tuple[str, Path, Results]]) -> Merged:
    """Merge (name, run dir, Results) triples; see load_runs."""
    if not loaded:
        raise ResultsError("no run given", "pass one or more run directories")
    runs = _named_runs(loaded)
    if len(runs) > 1:
        sets = [set(r.results.metrics) for r in runs]
        if not set.intersection(*sets):
            listing = "; ".join(f"{r.name}: {', '.join(sorted(s)) or 'none'}" for r, s in zip(runs, sets))
            raise ResultsError("the runs have no metric in common", listing)
    generators, rename = _merged_generators(runs)
    metrics = _merged_metrics(runs)
    summary = _summary_frame(runs, generators, rename, metrics)
    clips = [c.model_copy(update={"generator": rename[(r.name, c.generator)]})
             for r in runs for c in r.results.clips if (r.name, c.generator) in rename]
    return Merged(runs, generators, metrics, summary, clips)


def _named_runs(loaded: list[tuple[str, Path, Results]]) -> list[Run]:
    runs: list[Run] = []
    seen_names: dict[str, int] = {}
    for name, d, results in loaded:
        if name in seen_names:  # two runs named alike (a/run, b/run): number them
            seen_names[name] += 1
            name = f"{name}#{seen_names[name]}"
        else:
            seen_names[name] = 1
        runs.append(Run(name=name, dir=Path(d), results=results))
    return runs


def _merged_generators(runs: list[Run]) -> tuple[dict[str, Generator], dict[tuple[str, str], str]]:
    """Display names (prefixed with the run where a name recurs) and (run, source) -> display."""
    counts: dict[str, int] = {}
    for r in runs:
        for g in r.results.generator_names():
            counts[g] = counts.get(g, 0) + 1
    generators: dict[str, Generator] = {}
    rename: dict[tuple[str, str], str] = {}
    for r in runs:
        for g in r.results.generator_names():
            display = f"{r.name}/{g}" if counts[g] > 1 else g
            info = r.results.generators.get(g) or GeneratorInfo(kind="unknown")
            generators[display] = Generator(display, g, r, info)
            rename[(r.name, g)] = display
    return generators, rename


def _merged_metrics(runs: list[Run]) -> dict[str, MetricRecord]:
    """Each metric's record, in suite order (as the summary keeps it); a metric that only has
    summary rows gets a record made from them."""
    metrics: dict[str, MetricRecord] = {}
    for r in runs:
        for m in r.results.metric_names():
            if m in metrics:
                continue
            meta = r.results.metrics.get(m)
            if meta is None:
                row = next(x for x in r.results.summary if x.metric == m)
                meta = MetricRecord(name=m, version="", higher_is_better=row.higher_is_better, level=row.level,
                                    backbone=row.backbone or None)
            metrics[m] = meta
    return metrics


def _summary_frame(runs: list[Run], generators: dict[str, Generator], rename: dict,
                   metrics: dict[str, MetricRecord]) -> pd.DataFrame:
    rows = []
    for r in runs:
        for row in r.results.summary:
            g = rename.get((r.name, row.generator))
            if g is None or row.metric not in metrics:
                continue
            meta = metrics[row.metric]
            rows.append({
                "generator": g, "metric": row.metric, "value": num(row.value),
                "ci_low": num(row.ci_low), "ci_high": num(row.ci_high),
                "n": row.n, "n_failed": row.n_failed, "n_real": row.n_real,
                "backbone": row.backbone or meta.backbone_label or meta.backbone or "",
                "higher_is_better": row.higher_is_better, "level": row.level,
                "step": generators[g].step, "run": r.name, "error": str(row.error or ""),
            })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def direction(higher_is_better: bool) -> str:
    return "↑ higher is better" if higher_is_better else "↓ lower is better"


def summary_table(merged: Merged) -> pd.DataFrame:
    """One row per (generator, metric) with mean, 95% CI, n, backbone, direction; sorted for stability."""
    df = merged.summary.copy()
    df["direction"] = df["higher_is_better"].map(lambda h: "higher" if h else "lower")
    order_g = {g: i for i, g in enumerate(merged.generators)}
    order_m = {m: i for i, m in enumerate(merged.metrics)}
    df["_m"] = df["metric"].map(order_m)
    df["_g"] = df["generator"].map(order_g)
    df = df.sort_values(["_m", "_g"], kind="mergesort").drop(columns=["_m", "_g"]).reset_index(drop=True)
    return df[["metric", "generator", "value", "ci_low", "ci_high", "n", "n_failed", "n_real", "backbone",
               "direction", "level", "step", "run", "error"]]


def clip_scores(merged: Merged) -> pd.DataFrame:
    """Long table: generator, clip_id, prompt, seed, metric, value (failed clips and nulls dropped)."""
    rows = []
    for c in merged.clips:
        if c.error:
            continue
        for m, v in c.scores.items():
            if m not in merged.metrics:
                continue
            x = num(v)
            if math.isfinite(x):
                rows.append({"generator": c.generator, "clip_id": c.clip_id, "prompt": c.prompt, "seed": c.seed,
                             "metric": m, "value": x})
    return pd.DataFrame(rows, columns=["generator", "clip_id", "prompt", "seed", "metric", "value"])


def per_prompt(merged: Merged) -> dict[str, pd.DataFrame]:
    """For each per-clip metric, prompt x generator table of means (columns in generator order)."""
    long = clip_scores(merged)
    out = {}
    for m in merged.clip_metrics():
        sub = long[long["metric"] == m]
        if sub.empty:
            continue
        t = sub.pivot_table(index="prompt", columns="generator", values="value", aggfunc="mean")
        cols = [g for g in merged.generators if g in t.columns]
        out[m] = t[cols].sort_index()
    return out


def failures(merged: Merged) -> pd.DataFrame:
    rows = []
    rename = {(g.run.name, g.source): g.name for g in merged.generators.values()}
    for r in merged.runs:
        for f in r.results.failures:
            rows.append({"generator": rename.get((r.name, f.generator), f.generator), "clip_id": f.clip_id,
                         "stage": f.stage, "error": f.error})
    if not rows:  # older runners may only mark the clip
        for c in merged.clips:
            if c.error:
                rows.append({"generator": c.generator, "clip_id": c.clip_id, "stage": "", "error": c.error})
    return pd.DataFrame(rows, columns=["generator", "clip_id", "stage", "error"])


def fmt(v, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '—' for missing."""
    x = num(v)
    if not math.isfinite(x):
        return "—"
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_ci(lo, hi) -> str:
    lo, hi = num(lo), num(hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "no CI"
    return f"[{fmt(lo)}, {fmt(hi)}]"
