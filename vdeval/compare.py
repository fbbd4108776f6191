"""The statistics of differences between two generators' results, shared by `vdeval report`
(comparison tables, best marks) and `vdeval check` (not_significantly_worse rules).

Per-clip metrics: clips are paired by (prompt, seed) (by clip_id when prompt+seed is not
unique); the difference is other - baseline per pair; its 95% interval is a percentile
bootstrap of the mean (vdeval.stats.bootstrap_mean_ci, fixed seed) and the test is the
Wilcoxon signed-rank test (two-sided, scipy.stats.wilcoxon), which does not assume normal
differences. A difference is "significant" when p < alpha (ALPHA by default).

Set-level metrics (FVD, KVD) have one value per generator and no pairs: the difference of the
point values gets an interval of ± the two bootstrap intervals' half-widths added in quadrature
(independent estimates; half-widths because a bootstrap interval of a biased distance sits
above its point value); it is significant when that interval excludes 0. Without both
intervals significance is unknown (None), never assumed.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vdeval.rules import ALPHA  # one significance level for rules and reports
from vdeval.stats import BOOTSTRAP_SEED, bootstrap_mean_ci

PAIRED_TEST = "Wilcoxon signed-rank"
SET_TEST = "bootstrap CIs (set-level)"


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
        return "worse" if is_worse(self.diff, self.higher_is_better) else "better"

    @property
    def rel_diff(self) -> float:
        b = self.baseline_value
        return self.diff / abs(b) if math.isfinite(b) and b != 0 else math.nan


def is_worse(diff: float, higher_is_better: bool) -> bool:
    """Whether other - baseline = diff is a change for the worse, by the metric's direction."""
    return diff < 0 if higher_is_better else diff > 0


def unjudged(generator: str, baseline: str, metric: str, level: str, higher_is_better: bool, note: str,
             value: float = math.nan, baseline_value: float = math.nan) -> Difference:
    """A difference that cannot be judged (no pairs, different backbones): significance None."""
    return Difference(generator, baseline, metric, level, higher_is_better, 0, value, baseline_value, math.nan,
                      math.nan, math.nan, None, SET_TEST if level == "set" else PAIRED_TEST, None, note)


def clip_values(clips: Iterable, generator: str, metric: str) -> list[tuple[tuple, str, float]]:
    """((prompt, seed), clip_id, value) for each clip record of `generator` that scored `metric`."""
    out = []
    for c in clips:
        if c.generator != generator or c.error:
            continue
        v = num(c.scores.get(metric))
        if math.isfinite(v):
            out.append(((c.prompt, str(c.seed)), c.clip_id, v))
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
    from scipy import stats as sps

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


def set_difference(row, base_row, *, generator: str, baseline: str, metric: str,
                   higher_is_better: bool) -> Difference:
    """Two set-level estimates, each with value, ci_low, ci_high and n (a results SummaryRow, or a
    report table row read through `_get`)."""
    v, b = num(_get(row, "value")), num(_get(base_row, "value"))
    diff = v - b
    lo_v, hi_v = num(_get(row, "ci_low")), num(_get(row, "ci_high"))
    lo_b, hi_b = num(_get(base_row, "ci_low")), num(_get(base_row, "ci_high"))
    if all(math.isfinite(x) for x in (v, b, lo_v, hi_v, lo_b, hi_b)):
        # half-widths, not distances to the point value: a bootstrap interval of a biased distance
        # (FVD) sits above its point value, but its width is still the spread
        half = math.hypot(abs(hi_v - lo_v) / 2, abs(hi_b - lo_b) / 2)
        lo, hi = diff - half, diff + half
        sig, note = bool(lo > 0 or hi < 0), ""
    else:
        lo = hi = math.nan
        sig, note = None, "no confidence interval in the results"
    n = count(_get(row, "n"))  # clips the set value rests on
    return Difference(generator, baseline, metric, "set", higher_is_better, n, v, b, diff, lo, hi,
                      None, SET_TEST, sig, note)


def _get(row, key: str):
    return row.get(key) if isinstance(row, dict) else getattr(row, key, None)
