"""Stage 4: summaries. Per generator and metric, one results SummaryRow: a per-clip metric's mean
over the clips it scored (or its declared weighted mean) with a 95% bootstrap interval; a
set-level metric's score_set against the real set, or the error that left it empty. Also the
labels reports show for each metric's backbones, and the run's provenance."""
from __future__ import annotations

import platform
import sys

import numpy as np

from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures
from vdeval.metrics.base import Metric
from vdeval.results import ClipRecord, SummaryRow
from vdeval.run.featurize import BackbonePool
from vdeval.stats import bootstrap_mean_ci, weighted_mean_ci


def metric_backbone_label(metric: Metric, pool: BackbonePool, domain: str) -> str:
    """The labels of the backbones a metric reads, marked where a shapes-world backbone scores
    other footage."""
    labels = []
    for r in metric.requests():
        bb = pool.card(r.backbone, r.options)  # label and domain: no network rebuilt
        world_only = bb.domain == "world" and domain != "world"
        labels.append(bb.label() + (" (shapes-world backbone)" if world_only else ""))
    return ", ".join(dict.fromkeys(labels)) or "none"


def clip_summary(label: str, metric: Metric, clips: list[ClipRecord], base: dict) -> SummaryRow:
    """Mean and bootstrap CI of the clips' finite scores (failed clips left out)."""
    ok = [c for c in clips if not c.error]
    vals = np.array([np.nan if c.scores.get(label) is None else c.scores[label] for c in ok], np.float64)
    finite = vals[np.isfinite(vals)]
    ci = bootstrap_mean_ci(finite)
    mean = float(finite.mean()) if finite.size else None
    aggregate = None
    if (wkey := metric.summary_weight()) is not None:  # e.g. VBench's pooling of frame pairs across clips
        w = [c.extras.get(label, {}).get(wkey, np.nan) for c in ok]
        w = [np.nan if x is None else x for x in w]
        mean, ci = weighted_mean_ci(vals, w)
        mean = mean if np.isfinite(mean) else None
        aggregate = f"weighted by {wkey}"
    return SummaryRow(**base, value=mean, ci_low=ci[0] if ci else None, ci_high=ci[1] if ci else None,
                      n=int(finite.size), aggregate=aggregate)


def set_summary(metric: Metric, feats: list[ClipFeatures], real_feats: list[ClipFeatures], base: dict) -> SummaryRow:
    """score_set of the generated set against the real set; a VdevalError leaves the value null."""
    try:
        s = metric.score_set(feats, real_feats)
    except VdevalError as e:
        return SummaryRow(**base, n=len(feats), n_real=len(real_feats), error=str(e))
    return SummaryRow(**base, value=float(s.value), ci_low=s.ci[0] if s.ci else None,
                      ci_high=s.ci[1] if s.ci else None, n=s.n, n_real=s.n_real, extras=s.extras)


def summarise(metrics: dict[str, Metric], backbones: dict[str, str], gen_name: str, clips: list[ClipRecord],
              feats: list[ClipFeatures], real_feats: list[ClipFeatures]) -> list[SummaryRow]:
    """One row per metric for one generator; `backbones` gives each metric's backbone label."""
    n_failed = sum(1 for c in clips if c.error)
    rows = []
    for label, m in metrics.items():
        base = {"generator": gen_name, "metric": label, "backbone": backbones[label],
                "higher_is_better": m.higher_is_better, "level": m.level, "n_failed": n_failed}
        rows.append(clip_summary(label, m, clips, base) if m.level == "clip" else set_summary(m, feats, real_feats, base))
    return rows


def provenance(device: str) -> dict:
    """Versions, platform, device and command of this process."""
    import torch

    from vdeval import __version__

    return {
        "vdeval": __version__, "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "device": device,
        "command": " ".join(["vdeval"] + sys.argv[1:]),
    }
