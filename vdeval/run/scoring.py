"""Stage 3: per-clip scores. Metrics read features only; a metric that raises on one clip gives
that clip NaN and the error as its note, and every other clip and metric goes on."""
from __future__ import annotations

import math

from vdeval.features import ClipFeatures
from vdeval.metrics.base import Metric
from vdeval.run.progress import one_line


def empty_scores() -> dict:
    """A clip's score fields (as vdeval.results.ClipRecord names them), none filled yet."""
    return {"scores": {}, "extras": {}, "curves": {}, "notes": {}}


def score_clip(metric: Metric, clip: ClipFeatures, label: str, rec: dict) -> None:
    """Score one clip with one metric into `rec` (see empty_scores); never raises."""
    try:
        s = metric.score_clip(clip)
        rec["scores"][label] = float(s.value)
        if s.extras:
            rec["extras"][label] = {k: float(v) for k, v in s.extras.items()}
        if s.curve is not None:
            rec["curves"][label] = [float(v) for v in s.curve]
        if s.note:
            rec["notes"][label] = s.note
    except Exception as e:
        rec["scores"][label] = math.nan
        rec["notes"][label] = one_line(e)


def score_clips(metrics: dict[str, Metric], clips: list[ClipFeatures]) -> dict[str, dict]:
    """{clip_id: scores, extras, curves and notes of every per-clip metric (by label)}."""
    out = {c.clip_id: empty_scores() for c in clips}
    for label, metric in metrics.items():
        if metric.level != "clip":
            continue
        for c in clips:
            score_clip(metric, c, label, out[c.clip_id])
    return out
