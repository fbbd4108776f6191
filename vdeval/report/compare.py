"""The report's comparisons over merged runs: each generator against the baseline, the best
generator per metric, metric against step, per-frame curves with bands, discriminating prompts.

The statistics themselves (paired Wilcoxon test and bootstrap interval of per-clip differences,
set-level intervals, ALPHA) live in vdeval/compare.py, shared with `vdeval check`.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from vdeval.compare import ALPHA, Difference, clip_values, num, pair_values, paired_difference, set_difference, unjudged
from vdeval.report import rules
from vdeval.report.tables import Merged
from vdeval.stats import BOOTSTRAP_SEED


def compare_pair(merged: Merged, metric: str, g: str, base: str, alpha: float = ALPHA,
                 rows: dict | None = None) -> Difference | None:
    """`g` against `base` on one metric; None when either has no numbers for it."""
    meta = merged.metrics[metric]
    hib, level = meta.higher_is_better, meta.level
    if rows is None:
        rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    bb, bb_base = (rows.get((g, metric)) or {}).get("backbone"), (rows.get((base, metric)) or {}).get("backbone")
    if bb and bb_base and bb != bb_base:
        # numbers from different backbones are different quantities: never compare them
        return unjudged(g, base, metric, level, hib, f"not comparable: backbone {bb} vs {bb_base}",
                        num(rows[(g, metric)]["value"]), num(rows[(base, metric)]["value"]))
    if level == "set":
        if (g, metric) in rows and (base, metric) in rows:
            return set_difference(rows[(g, metric)], rows[(base, metric)], generator=g, baseline=base,
                                  metric=metric, higher_is_better=hib)
        return None
    a = clip_values(merged.clips, g, metric)
    b = clip_values(merged.clips, base, metric)
    if not a or not b:
        return None
    xa, xb = pair_values(a, b)
    if xa.size == 0:
        return unjudged(g, base, metric, "clip", hib, "no clips in common (different prompts or seeds)")
    return paired_difference(xa, xb, generator=g, baseline=base, metric=metric, higher_is_better=hib, alpha=alpha)


def compare_generators(merged: Merged, baseline: str | None = None, alpha: float = ALPHA) -> list[Difference]:
    """Each generator against `baseline` (display name; default the first) on every metric both have."""
    base = merged.resolve_generator(baseline)
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    out = []
    for m in merged.metrics:
        for g in merged.generators:
            if g != base:
                d = compare_pair(merged, m, g, base, alpha, rows)
                if d is not None:
                    out.append(d)
    return out


@dataclass
class Best:
    """The best generator on one metric, and whether it beats every other one significantly."""

    metric: str
    generator: str
    value: float
    significant: bool  # significantly better than each other generator
    ties: list[str]  # generators it is not significantly better than (or could not be judged against)


def best_marks(merged: Merged, alpha: float = ALPHA) -> dict[str, Best]:
    """Per metric, rule 3 of vdeval/report/rules.py: among the generators that may take it (no
    reference, control, or frozen generator on a metric a still clip wins), two or more, the best
    point value by the metric's direction, significant only when its difference to each other
    one is (paired test or set CIs)."""
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    frozen = rules.frozen_fractions(merged)
    out = {}
    for m, meta in merged.metrics.items():
        hib = meta.higher_is_better
        vals = [(num((rows.get((g, m)) or {}).get("value")), g) for g in rules.may_be_best(merged, m, frozen)]
        vals = [(v, g) for v, g in vals if math.isfinite(v)]
        if len(vals) < 2 or len({v for v, _ in vals}) == 1:  # one generator, or all alike: no best
            continue
        v, best = (max if hib else min)(vals, key=lambda t: t[0])
        if sum(x == v for x, _ in vals) > 1:  # several share the best value: none stands out
            continue
        ties = []
        for _, g in vals:
            if g == best:
                continue
            d = compare_pair(merged, m, best, g, alpha, rows)
            if d is None or d.verdict != "better":
                ties.append(g)
        out[m] = Best(m, best, v, not ties, ties)
    return out


def relative_text(d: Difference, merged: Merged) -> str:
    """The relative difference for tables, or why it is not shown (rule 4 of report/rules.py)."""
    return rules.relative_text(d.diff, d.rel_diff, d.baseline_value, rules.metric_scale(merged, d.metric))


def discriminating_prompts(merged: Merged, k: int = 4) -> list[str]:
    """The k prompts whose per-generator means differ most, summed over per-clip metrics with
    each metric's differences scaled by its spread over all clips (so units do not matter)."""
    from vdeval.report.tables import clip_scores

    long = clip_scores(merged)
    if long.empty or len(merged.generators) < 1:
        return []
    score: dict[str, float] = {}
    for _metric, sub in long.groupby("metric", sort=False):
        spread = float(sub["value"].std(ddof=0))
        means = sub.groupby(["prompt", "generator"])["value"].mean().unstack()
        rng = (means.max(axis=1) - means.min(axis=1)) / (spread if spread > 0 else 1.0)
        for p, r in rng.items():
            score[p] = score.get(p, 0.0) + (float(r) if math.isfinite(r) else 0.0)
    return [p for p, _ in sorted(score.items(), key=lambda t: (-t[1], t[0]))[:k]]


def differences_frame(diffs: list[Difference]) -> pd.DataFrame:
    cols = ["metric", "generator", "baseline", "level", "n", "value", "baseline_value", "diff", "ci_low",
            "ci_high", "p_value", "test", "significant", "verdict", "note"]
    return pd.DataFrame([{**asdict(d), "verdict": d.verdict} for d in diffs], columns=cols)


def step_series(merged: Merged) -> dict[str, pd.DataFrame]:
    """For each metric, rows (line, run, step, generator, value, ci_low, ci_high) of generators with a step.

    A line is one training run: the checkpoints of one results file (a suite listing ckpt_1k,
    ckpt_2k, ...), or one generator name repeated across results files (an Evaluator writes one
    results file per step)."""
    df = merged.summary.dropna(subset=["step"]).copy()
    source = {g.name: g.source for g in merged.generators.values()}
    runs_per_source = df.assign(_src=df["generator"].map(source)).groupby("_src")["run"].nunique()
    df["line"] = [source[g] if runs_per_source.get(source[g], 0) > 1 else run
                  for g, run in zip(df["generator"], df["run"])]
    out = {}
    for m in merged.metrics:
        sub = df[(df["metric"] == m) & np.isfinite(df["value"].astype(float))]
        if len(sub) >= 2:
            out[m] = sub.sort_values(["line", "step"], kind="mergesort")[
                ["line", "run", "step", "generator", "value", "ci_low", "ci_high"]].reset_index(drop=True)
    return out


def curve_band(curves: list[list], n_boot: int = 1000, level: float = 0.95, seed: int = BOOTSTRAP_SEED):
    """Mean of curves along the clip and a percentile-bootstrap band (clips resampled).

    Curves may differ in length and hold nulls: each position averages the clips that have a
    finite value there, to the end of the longest (a long clip's tail is drawn from it alone,
    its band a line). Returns (mean, low, high, count) arrays, or None without 2 curves."""
    rows = [np.array([num(v) for v in c], np.float64) for c in curves if c]
    if len(rows) < 2:
        return None
    T = max(len(r) for r in rows)
    X = np.full((len(rows), T), np.nan)
    for i, r in enumerate(rows):
        X[i, : len(r)] = r
    count = np.isfinite(X).sum(axis=0)
    keep = count >= 1
    if not keep.any():
        return None
    X = X[:, : int(np.nonzero(keep)[0][-1]) + 1]
    count = count[: X.shape[1]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices inside a resample
        mean = np.nanmean(X, axis=0)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, X.shape[0], size=(n_boot, X.shape[0]))
        boots = np.nanmean(X[idx], axis=1)  # (n_boot, T)
        a = (1 - level) / 2
        lo = np.nanquantile(boots, a, axis=0)
        hi = np.nanquantile(boots, 1 - a, axis=0)
    return mean, lo, hi, count


MAX_CURVE_POINTS = 2000


def time_grid(curves: list[tuple[list, float]]) -> np.ndarray:
    """Times in seconds for curves of clips at different rates ([(values, points per second)]):
    the finest rate among them (at most MAX_CURVE_POINTS points), to the end of the longest."""
    end = max(len(v) / fps for v, fps in curves)
    step = max(1.0 / max(fps for _, fps in curves), end / MAX_CURVE_POINTS)
    return np.arange(0.0, end - 1e-9, step)


def at_times(values: list, fps: float, t: np.ndarray) -> list:
    """A curve's value in force at each time of `t` (point k covers [k / fps, (k + 1) / fps)),
    None after its end."""
    k = np.floor(t * fps + 1e-9).astype(int)
    return [values[i] if i < len(values) else None for i in k]


def curves_by_metric(merged: Merged) -> dict[str, dict[str, tuple]]:
    """{metric: {generator: (mean, low, high, count, x, in_seconds)}} for metrics whose clips carry
    curves: against time in seconds when every clip records its curve's rate (each clip at its
    own frame rate, so 24, 30 and 60 fps clips line up), else against the point index."""
    gathered: dict[str, dict[str, list]] = {}
    for c in merged.clips:
        if c.error:
            continue
        for m, curve in c.curves.items():
            if m in merged.metrics and curve:
                gathered.setdefault(m, {}).setdefault(c.generator, []).append((curve, c.curve_fps.get(m)))
    out = {}
    for m in merged.metrics:
        every = [x for g in gathered.get(m, {}).values() for x in g]
        timed = bool(every) and all(fps for _, fps in every)
        grid = time_grid(every) if timed else None
        per_g = {}
        for g in merged.generators:
            got = gathered.get(m, {}).get(g, [])
            curves = [at_times(v, fps, grid) for v, fps in got] if grid is not None else [v for v, _ in got]
            band = curve_band(curves)
            if band is not None:
                x = grid[: band[0].size] if grid is not None else np.arange(band[0].size)
                per_g[g] = (*band, x, timed)
        if per_g:
            out[m] = per_g
    return out


def headline(diffs: list[Difference]) -> list[tuple[str, dict[str, list[str]]]]:
    """Per generator: metrics grouped by verdict, for a one-line answer to "is it better?"."""
    out: dict[str, dict[str, list[str]]] = {}
    for d in diffs:
        out.setdefault(d.generator, {"better": [], "worse": [], "n.s.": [], "—": []})[d.verdict].append(d.metric)
    return list(out.items())
