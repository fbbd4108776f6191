"""Load one or more runs' results and lay them out as pandas tables.

Only results files are read here (results.json via store.load_results); the clips a run dir
holds are looked at by previews.py, never by the tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vdeval.errors import ResultsError
from vdeval.registry import closest
from vdeval.store import RESULTS_FILE, load_results

SUMMARY_COLUMNS = [
    "generator", "metric", "value", "ci_low", "ci_high", "n", "n_failed", "n_real",
    "backbone", "higher_is_better", "level", "step", "run", "error",
]


def num(v) -> float:
    """A results number (null stands for NaN) as a float."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def count(v) -> int:
    """A sample count from results; missing or non-numeric counts as 0."""
    x = num(v)
    return int(x) if math.isfinite(x) else 0


@dataclass
class Run:
    name: str
    dir: Path  # the run directory (where clips/ lives)
    results: dict


@dataclass
class Generator:
    name: str  # display name, unique across merged runs
    source: str  # name inside its run (clips/<source>/...)
    run: Run
    info: dict = field(default_factory=dict)

    @property
    def step(self):
        s = self.info.get("step") if isinstance(self.info, dict) else None
        return None if s is None else num(s)


@dataclass
class Merged:
    """Several runs' results side by side: generators by display name, metrics by name."""

    runs: list[Run]
    generators: dict[str, Generator]
    metrics: dict[str, dict]
    summary: pd.DataFrame
    clips: list[dict]  # each clip dict of the results, plus "generator" renamed and "_run"

    @property
    def generator_names(self) -> list[str]:
        return list(self.generators)

    def clip_metrics(self) -> list[str]:
        return [m for m, meta in self.metrics.items() if meta.get("level", "clip") != "set"]

    def default_baseline(self) -> tuple[str, str]:
        """(generator, why): the suite's declared `baseline:`, else the last training step, else the first."""
        for r in self.runs:
            declared = (r.results.get("suite") or {}).get("baseline") if isinstance(r.results.get("suite"), dict) else None
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


def generators_in_order(results: dict) -> list[tuple[str, dict]]:
    """Generators in the run's own order: results.json sorts mapping keys, but the summary and
    clips lists keep the order the suite gave, so the first of those comes first."""
    gens = results.get("generators") or {}
    order = list(dict.fromkeys([r.get("generator") for r in results.get("summary") or []]
                               + [c.get("generator") for c in results.get("clips") or []] + list(gens)))
    # a generator with rows but no info entry is still shown, never silently dropped
    return [(str(g), gens.get(g) or {}) for g in order if g is not None]


def load_runs(paths: list[Path]) -> Merged:
    """Load and merge runs. Generator names that clash across runs get "<run>/" in front."""
    if not paths:
        raise ResultsError("no run given", "pass one or more run directories")
    loaded = []
    for p in paths:
        d = _run_dir(Path(p))
        loaded.append((d.resolve().name or str(d), d, load_results(p)))
    return merge_results(loaded)


def merge_results(loaded: list[tuple[str, Path, dict]]) -> Merged:
    """Merge (name, run dir, results dict) triples; see load_runs."""
    if not loaded:
        raise ResultsError("no run given", "pass one or more run directories")
    runs: list[Run] = []
    seen_names: dict[str, int] = {}
    for name, d, results in loaded:
        if name in seen_names:  # two runs named alike (a/run, b/run): number them
            seen_names[name] += 1
            name = f"{name}#{seen_names[name]}"
        else:
            seen_names[name] = 1
        runs.append(Run(name=name, dir=Path(d), results=results))

    if len(runs) > 1:
        sets = [set(r.results.get("metrics") or {}) for r in runs]
        if not set.intersection(*sets):
            listing = "; ".join(f"{r.name}: {', '.join(sorted(s)) or 'none'}" for r, s in zip(runs, sets))
            raise ResultsError("the runs have no metric in common", listing)

    counts: dict[str, int] = {}
    for r in runs:
        for g in r.results.get("generators") or {}:
            counts[g] = counts.get(g, 0) + 1
    generators: dict[str, Generator] = {}
    rename: dict[tuple[str, str], str] = {}
    for r in runs:
        for g, info in generators_in_order(r.results):
            display = f"{r.name}/{g}" if counts[g] > 1 else g
            generators[display] = Generator(display, g, r, info if isinstance(info, dict) else {})
            rename[(r.name, g)] = display

    metrics: dict[str, dict] = {}
    for r in runs:
        # suite order, as kept by the summary list (the metrics mapping is stored with sorted keys)
        mm = r.results.get("metrics") or {}
        rows = {row.get("metric"): row for row in r.results.get("summary") or []}
        for m in dict.fromkeys(list(rows) + list(mm)):
            if m is None:
                continue
            meta = mm.get(m) or {k: rows[m].get(k) for k in ("higher_is_better", "level", "backbone")}
            metrics.setdefault(str(m), dict(meta))

    rows = []
    for r in runs:
        for row in r.results.get("summary") or []:
            g = rename.get((r.name, row.get("generator")))
            m = row.get("metric")
            if g is None or m not in metrics:
                continue
            meta = metrics[m]
            rows.append({
                "generator": g, "metric": m, "value": num(row.get("value")),
                "ci_low": num(row.get("ci_low")), "ci_high": num(row.get("ci_high")),
                "n": count(row.get("n")), "n_failed": count(row.get("n_failed")),
                "n_real": count(row.get("n_real")) if row.get("n_real") is not None else None,
                "backbone": row.get("backbone") or meta.get("backbone_label") or meta.get("backbone") or "",
                "higher_is_better": bool(row.get("higher_is_better", meta.get("higher_is_better", True))),
                "level": row.get("level") or meta.get("level") or "clip",
                "step": generators[g].step, "run": r.name, "error": str(row.get("error") or ""),
            })
    summary = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)

    clips = []
    for r in runs:
        for c in r.results.get("clips") or []:
            g = rename.get((r.name, c.get("generator")))
            if g is None:
                continue
            clips.append({**c, "generator": g, "_source": c.get("generator"), "_run": r.name})
    return Merged(runs, generators, metrics, summary, clips)


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
        if c.get("error"):
            continue
        for m, v in (c.get("scores") or {}).items():
            if m not in merged.metrics:
                continue
            x = num(v)
            if math.isfinite(x):
                rows.append({"generator": c["generator"], "clip_id": str(c.get("clip_id")),
                             "prompt": str(c.get("prompt", "")), "seed": c.get("seed"), "metric": m, "value": x})
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
        for f in r.results.get("failures") or []:
            rows.append({"generator": rename.get((r.name, f.get("generator")), f.get("generator")),
                         "clip_id": str(f.get("clip_id", "")), "stage": str(f.get("stage", "")),
                         "error": str(f.get("error", ""))})
    if not rows:  # older runners may only mark the clip
        for c in merged.clips:
            if c.get("error"):
                rows.append({"generator": c["generator"], "clip_id": str(c.get("clip_id")), "stage": "",
                             "error": str(c["error"])})
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
