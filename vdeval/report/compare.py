"""Comparison statistics: paired differences against a baseline generator, metric vs step,
per-frame curves with bands.

Per-clip metrics: clips are paired by (prompt, seed) (by clip_id when prompt+seed is not
unique); the difference is other - baseline per pair; its 95% interval is a percentile
bootstrap of the mean (vdeval.stats.bootstrap_mean_ci, fixed seed) and the test is the
Wilcoxon signed-rank test (two-sided, scipy.stats.wilcoxon), which does not assume normal
differences. A difference is "significant" when p < ALPHA.

Set-level metrics (FVD, KVD) have one value per generator and no pairs: the difference of the
point values gets an interval of ± the two bootstrap intervals' half-widths added in quadrature
(independent estimates; half-widths because a bootstrap interval of a biased distance sits
above its point value); it is significant when that interval excludes 0. Without both
intervals significance is unknown (None), never assumed.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from vdeval.report.tables import Merged, num
from vdeval.stats import BOOTSTRAP_SEED, bootstrap_mean_ci

ALPHA = 0.05
PAIRED_TEST = "Wilcoxon signed-rank"
SET_TEST = "bootstrap CIs (set-level)"


@dataclass
class Difference:
    generator: str
    baseline: str
    metric: str
    level: str
    higher_is_better: bool
    n: int  # pairs (per-clip) or the generator's clip count (set-level)
    value: float  # other's mean (per-clip: over the pairs) or value
    baseline_value: float
    diff: float  # other - baseline
    ci_low: float
    ci_high: float
    p_value: float | None
    test: str
    significant: bool | None  # None: could not be judged (too few pairs, no CI)
    note: str = ""

    @property
    def verdict(self) -> str:
        """'better' / 'worse' (significant), 'n.s.' (not significant), '—' (not judged)."""
        if self.significant is None:
            return "—"
        if not self.significant:
            return "n.s."
        improved = self.diff > 0 if self.higher_is_better else self.diff < 0
        return "better" if improved else "worse"

    @property
    def rel_diff(self) -> float:
        b = self.baseline_value
        return self.diff / abs(b) if math.isfinite(b) and b != 0 else math.nan


def clip_values(clips: list[dict], generator: str, metric: str) -> list[tuple[tuple, str, float]]:
    """((prompt, seed), clip_id, value) for each clip of `generator` that scored `metric`."""
    out = []
    for c in clips:
        if c.get("generator") != generator or c.get("error"):
            continue
        v = num((c.get("scores") or {}).get(metric))
        if math.isfinite(v):
            out.append(((str(c.get("prompt", "")), str(c.get("seed"))), str(c.get("clip_id")), v))
    return out


def pair_values(a: list[tuple[tuple, str, float]], b: list[tuple[tuple, str, float]]):
    """Arrays (a_i, b_i) of values matched by prompt+seed, or by clip_id when prompt+seed repeats."""
    def unique(rows, i):
        keys = [r[i] for r in rows]
        return len(set(keys)) == len(keys)

    i = 0 if unique(a, 0) and unique(b, 0) else 1
    bm = {r[i]: r[2] for r in b}
    keys = sorted((r[i], r[2]) for r in a if r[i] in bm)
    xa = np.array([v for _, v in keys], np.float64)
    xb = np.array([bm[k] for k, _ in keys], np.float64)
    return xa, xb


def paired_test(d: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value of differences d; None with fewer than 2."""
    d = np.asarray(d, np.float64)
    if d.size < 2:
        return None
    if np.all(d == 0):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ties / small-sample notices
        p = sps.wilcoxon(d).pvalue
    return float(p) if math.isfinite(p) else None


def paired_difference(other: np.ndarray, base: np.ndarray, *, generator: str, baseline: str, metric: str,
                      higher_is_better: bool, alpha: float = ALPHA) -> Difference:
    d = other - base
    n = int(d.size)
    ci = bootstrap_mean_ci(d, seed=BOOTSTRAP_SEED)
    p = paired_test(d)
    note = "" if n >= 2 else f"only {n} matched clip(s)"
    return Difference(
        generator, baseline, metric, "clip", higher_is_better, n,
        float(other.mean()) if n else math.nan, float(base.mean()) if n else math.nan,
        float(d.mean()) if n else math.nan,
        ci[0] if ci else math.nan, ci[1] if ci else math.nan,
        p, PAIRED_TEST, None if p is None else bool(p < alpha), note,
    )


def set_difference(row: dict, base_row: dict, *, generator: str, baseline: str, metric: str,
                   higher_is_better: bool) -> Difference:
    v, b = num(row.get("value")), num(base_row.get("value"))
    diff = v - b
    lo_v, hi_v, lo_b, hi_b = (num(row.get("ci_low")), num(row.get("ci_high")),
                              num(base_row.get("ci_low")), num(base_row.get("ci_high")))
    if all(math.isfinite(x) for x in (v, b, lo_v, hi_v, lo_b, hi_b)):
        # half-widths, not distances to the point value: a bootstrap interval of a biased distance
        # (FVD) sits above its point value, but its width is still the spread
        half = math.hypot(abs(hi_v - lo_v) / 2, abs(hi_b - lo_b) / 2)
        lo, hi = diff - half, diff + half
        sig, note = bool(lo > 0 or hi < 0), ""
    else:
        lo = hi = math.nan
        sig, note = None, "no confidence interval in the results"
    n = int(num(row.get("n")) if math.isfinite(num(row.get("n"))) else 0)  # clips the set value rests on
    return Difference(generator, baseline, metric, "set", higher_is_better, n, v, b, diff, lo, hi,
                      None, SET_TEST, sig, note)


def compare_pair(merged: Merged, metric: str, g: str, base: str, alpha: float = ALPHA,
                 rows: dict | None = None) -> Difference | None:
    """`g` against `base` on one metric; None when either has no numbers for it."""
    meta = merged.metrics[metric]
    hib = bool(meta.get("higher_is_better", True))
    level = meta.get("level", "clip")
    if rows is None:
        rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    bb, bb_base = (rows.get((g, metric)) or {}).get("backbone"), (rows.get((base, metric)) or {}).get("backbone")
    if bb and bb_base and bb != bb_base:
        # numbers from different backbones are different quantities: never compare them
        return Difference(g, base, metric, level, hib, 0, num(rows[(g, metric)]["value"]),
                          num(rows[(base, metric)]["value"]), math.nan, math.nan, math.nan, None,
                          PAIRED_TEST if level != "set" else SET_TEST, None,
                          f"not comparable: backbone {bb} vs {bb_base}")
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
        return Difference(g, base, metric, "clip", hib, 0, math.nan, math.nan, math.nan, math.nan,
                          math.nan, None, PAIRED_TEST, None, "no clips in common (different prompts or seeds)")
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
    """Per metric with two or more generators: the best point value (by the metric's direction),
    significant only when its difference to every other generator is (paired test or set CIs)."""
    rows = {(r["generator"], r["metric"]): r for r in merged.summary.to_dict("records")}
    out = {}
    for m, meta in merged.metrics.items():
        hib = bool(meta.get("higher_is_better", True))
        vals = [(num((rows.get((g, m)) or {}).get("value")), g) for g in merged.generators]
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


def near_zero(d: Difference) -> bool:
    """True when the baseline is too close to 0 for a relative difference to mean anything:
    exactly 0, or nearer to 0 than the difference's own uncertainty (half its CI's width)."""
    b = d.baseline_value
    if not math.isfinite(b) or b == 0:
        return True
    half = abs(d.ci_high - d.ci_low) / 2 if math.isfinite(d.ci_low) and math.isfinite(d.ci_high) else 0.0
    return abs(b) <= half or abs(b) < 1e-12 * max(1.0, abs(d.value) if math.isfinite(d.value) else 1.0)


def relative_text(d: Difference) -> str:
    """The relative difference for tables, or why it is not shown."""
    if not math.isfinite(d.diff):
        return "—"
    if near_zero(d):
        return "n/a (baseline ≈ 0)"
    return f"{d.rel_diff:+.1%}"


def discriminating_prompts(merged: Merged, k: int = 4) -> list[str]:
    """The k prompts whose per-generator means differ most, summed over per-clip metrics with
    each metric's differences scaled by its spread over all clips (so units do not matter)."""
    from vdeval.report.tables import clip_scores

    long = clip_scores(merged)
    if long.empty or len(merged.generators) < 1:
        return []
    score: dict[str, float] = {}
    for m, sub in long.groupby("metric", sort=False):
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
    finite value there. Returns (mean, low, high, count) arrays, or None without 2 curves."""
    rows = [np.array([num(v) for v in c], np.float64) for c in curves if c]
    if len(rows) < 2:
        return None
    T = max(len(r) for r in rows)
    X = np.full((len(rows), T), np.nan)
    for i, r in enumerate(rows):
        X[i, : len(r)] = r
    count = np.isfinite(X).sum(axis=0)
    keep = count >= 2
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


def curves_by_metric(merged: Merged) -> dict[str, dict[str, tuple]]:
    """{metric: {generator: curve_band(...)}} for metrics whose clips carry curves."""
    gathered: dict[str, dict[str, list]] = {}
    for c in merged.clips:
        if c.get("error"):
            continue
        for m, curve in (c.get("curves") or {}).items():
            if m in merged.metrics and isinstance(curve, list) and curve:
                gathered.setdefault(m, {}).setdefault(c["generator"], []).append(curve)
    out = {}
    for m in merged.metrics:
        per_g = {}
        for g in merged.generators:
            band = curve_band(gathered.get(m, {}).get(g, []))
            if band is not None:
                per_g[g] = band
        if per_g:
            out[m] = per_g
    return out


def headline(diffs: list[Difference]) -> list[tuple[str, dict[str, list[str]]]]:
    """Per generator: metrics grouped by verdict, for a one-line answer to "is it better?"."""
    out: dict[str, dict[str, list[str]]] = {}
    for d in diffs:
        out.setdefault(d.generator, {"better": [], "worse": [], "n.s.": [], "—": []})[d.verdict].append(d.metric)
    return list(out.items())
