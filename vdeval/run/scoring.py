"""Stage 3: per-clip scores. Metrics read features only; a metric that raises on one clip gives
that clip NaN and the error as its note, and every other clip and metric goes on."""
from __future__ import annotations

import math

from vdeval.features import ClipFeatures
from vdeval.metrics.base import Metric
from vdeval.run.progress import one_line


def empty_scores() -> dict:
    """A clip's score fields (as vdeval.results.ClipRecord names them), none filled yet."""
    return {"scores": {}, "extras": {}, "curves": {}, "curve_fps": {}, "notes": {}}


def curve_rate(metric: Metric, clip: ClipFeatures) -> float | None:
    """Points per second of `metric`'s curve on `clip`: the frame rate of the frames its first
    pixel feature was computed on (a point per frame or per pair of them); None where unknown."""
    for req in metric.requests():
        arrays = clip.features.get(req.key)
        if arrays is not None and "input_fps" in arrays:
            return float(arrays["input_fps"][0])
    return None


def score_clip(metric: Metric, clip: ClipFeatures, label: str, rec: dict) -> None:
    """Score one clip with one metric into `rec` (see empty_scores); never raises."""
    try:
        s = metric.score_clip(clip)
        rec["scores"][label] = float(s.value)
        if s.extras:
            rec["extras"][label] = {k: float(v) for k, v in s.extras.items()}
        if s.curve is not None:
            rec["curves"][label] = [float(v) for v in s.curve]
            rate = curve_rate(metric, clip)
            if rate:
                rec["curve_fps"][label] = rate
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
