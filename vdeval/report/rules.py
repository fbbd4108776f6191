"""How the report reads results: the rules every view (HTML, Markdown, terminal) follows, stated
once here and tested on the smoke run (tests/report/test_report_rules.py).

1. Roles. World clips without a corruption are the *reference* (clean world: what good looks
   like); world clips with a corruption are a *control* (a known failure the metrics should
   catch). Every other generator is a *candidate*. References and controls are named as such
   beside their name and never take a best mark.
2. Frozen. A generator whose frozen_motion value (its fraction of frozen clips) is at least
   FROZEN_AT is flagged frozen. A still clip wins the metrics in STILL_WINS (no change between
   frames is perfect temporal consistency to them), so the flag stands beside those scores, and a
   frozen generator takes no best mark on them.
3. Best. Per metric, among the candidates that may take it (rules 1 and 2) with a finite value,
   two or more and not all alike: the best value in the metric's direction, unless another shares
   it. ★ when it is significantly better than each of the others (per-clip metrics: paired test on
   clips matched by prompt and seed; set-level: the intervals); ☆ when it has the best value but is
   not significantly better than all of them.
4. Relative differences. (value - baseline) / |baseline|, unless the baseline value itself is
   ~0: exactly 0, or at most ZERO (1e-4) times the metric's largest |value| in the report (a
   relative difference of a million percent and more says nothing). Then "n/a (baseline ≈ 0)".
   The rule looks at the baseline's value and the metric only, never at a row's interval, so
   rows against the same baseline never disagree.
"""
from __future__ import annotations

import math

from vdeval.compare import num
from vdeval.report.tables import Merged

FROZEN_AT = 0.5
ZERO = 1e-4
# registered metric names a still clip scores best on (a frozen clip has no flicker, no warping
# error, no drift, perfect interpolation, no jitter)
STILL_WINS = frozenset({"warping_error", "frame_difference", "identity_drift", "background_consistency",
                        "motion_smoothness", "motion_jitter"})

STAR = "★"
HOLLOW = "☆"
FROZEN = "frozen"
LEGEND_BEST = (f"{STAR} best of the compared generators and significantly better than each of the others; "
               f"{HOLLOW} best value, but not significantly better than all of them.")
LEGEND_ROLES = ("reference (clean world clips) and control (world clips with a known corruption) columns are "
                "yardsticks: they never take a best mark.")
LEGEND_FROZEN = (f"{FROZEN}: the generator's clips are mostly frozen (frozen_motion ≥ {FROZEN_AT:g}); its "
                 "flicker and stability scores are good because nothing moves, and it takes no best mark on them.")


def role(merged: Merged, g: str) -> str:
    """"reference", "control" or "candidate" (rule 1)."""
    info = merged.generators[g].info
    if info.kind != "world":
        return "candidate"
    extra = info.model_extra or {}
    return "control" if extra.get("corruption") else "reference"


def role_label(merged: Merged, g: str) -> str:
    """"" for a candidate; "reference" or "control: <corruption>" otherwise."""
    r = role(merged, g)
    if r == "control":
        c = (merged.generators[g].info.model_extra or {}).get("corruption") or {}
        name = c.get("name") if isinstance(c, dict) else None
        return f"control: {name}" if name else "control"
    return "" if r == "candidate" else r


def frozen_fractions(merged: Merged) -> dict[str, float]:
    """Generators flagged frozen (rule 2) -> their frozen_motion value."""
    labels = [m for m, meta in merged.metrics.items() if (meta.name or m) == "frozen_motion"]
    out: dict[str, float] = {}
    for r in merged.summary.to_dict("records"):
        v = num(r["value"])
        if r["metric"] in labels and math.isfinite(v) and v >= FROZEN_AT:
            out[r["generator"]] = max(v, out.get(r["generator"], v))
    return out


def still_wins(merged: Merged, metric: str) -> bool:
    meta = merged.metrics.get(metric)
    return (meta.name if meta is not None and meta.name else metric) in STILL_WINS


def frozen_flag(merged: Merged, g: str, metric: str, frozen: dict[str, float] | None = None) -> str:
    """"frozen" beside a frozen generator's score on a metric a still clip wins, else ""."""
    frozen = frozen_fractions(merged) if frozen is None else frozen
    return FROZEN if g in frozen and still_wins(merged, metric) else ""


def may_be_best(merged: Merged, metric: str, frozen: dict[str, float] | None = None) -> list[str]:
    """Generators that may take the best mark on `metric` (rules 1 and 2), in suite order."""
    frozen = frozen_fractions(merged) if frozen is None else frozen
    return [g for g in merged.generators if role(merged, g) == "candidate" and not frozen_flag(merged, g, metric, frozen)]


def metric_scale(merged: Merged, metric: str) -> float:
    """The largest |value| of `metric` over the report's generators (rule 4's yardstick)."""
    vals = [abs(num(v)) for v in merged.summary.loc[merged.summary["metric"] == metric, "value"]]
    return max([v for v in vals if math.isfinite(v)], default=0.0)


def baseline_near_zero(baseline_value: float, scale: float) -> bool:
    """Rule 4: a relative difference means nothing against this baseline."""
    b = num(baseline_value)
    return not math.isfinite(b) or b == 0 or abs(b) <= ZERO * scale


def relative_text(diff: float, rel_diff: float, baseline_value: float, scale: float) -> str:
    if not math.isfinite(num(diff)):
        return "—"
    if baseline_near_zero(baseline_value, scale):
        return "n/a (baseline ≈ 0)"
    return f"{rel_diff:+.1%}"


def legend(merged: Merged, with_frozen: bool | None = None) -> list[str]:
    """The legend sentences a summary needs: best marks, roles when present, frozen when flagged."""
    out = [LEGEND_BEST]
    if any(role(merged, g) != "candidate" for g in merged.generators):
        out.append(LEGEND_ROLES[0].upper() + LEGEND_ROLES[1:])
    if frozen_fractions(merged) if with_frozen is None else with_frozen:
        out.append(LEGEND_FROZEN[0].upper() + LEGEND_FROZEN[1:])
    return out
