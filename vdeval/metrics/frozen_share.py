"""Partial freezes: how much of a clip is frozen, and for how long at a stretch.

Failure mode: a clip that stops moving part of the way (its last two thirds held, a still start
before the motion, a stall in the middle). VBench's dynamic-degree rule (metric `frozen_motion`,
kept as that named protocol) judges the clip as a whole and calls it dynamic as soon as a quarter
of its pairs move, so a clip frozen for its last two thirds scores 0 there.

Definition, on the same flow and per-pair motion scores as `frozen_motion` (its features are
shared: frames sampled to ~8 fps, the mean of the top 5% flow magnitudes per pair, the same
resolution- and frame-rate-scaled threshold per backbone): a pair is frozen when its score is at or
under the threshold.
  frozen_share    value: the fraction of the clip's sampled pairs that are frozen (0 to 1); extra
                  longest_frozen_s;
  frozen_seconds  value: the longest run of consecutive frozen pairs, in seconds of the clip (the
                  run's pairs times the time between sampled frames, from the clip's own frame
                  rate); extra frozen_share.
Both are lower-is-better. Curve: per-pair motion scores. Known answers
(tests/test_frozen_share.py): a world clip held for its last k of T frames has share k/(T-1) of its
pairs frozen and a stretch of k / fps seconds.
"""
from __future__ import annotations

from vdeval.features import ClipFeatures, input_fps
from vdeval.metrics.base import ClipScore
from vdeval.metrics.frozen_motion import THRESHOLD_SCALE, FrozenMotion, dynamic_rule, frozen_runs, motion_scores


def partial_freeze(clip: ClipFeatures, metric: FrozenMotion) -> dict | None:
    """{share, longest_s, scores, threshold, fps} of a clip under `metric`'s flow and threshold;
    None when the clip has no pair."""
    flow = clip.get("flow", metric.backbone, metric._options())
    forward = flow["forward"]
    if forward.shape[0] < 1:
        return None
    scores = motion_scores(forward, metric.params.top_fraction)
    scale = metric.params.threshold_scale or THRESHOLD_SCALE[metric.backbone]
    source_fps = float(flow["source_fps"][0]) if "source_fps" in flow else 8.0
    thr, _ = dynamic_rule(forward.shape[1], forward.shape[2], forward.shape[0] + 1, scale, source_fps)
    fps = input_fps(flow).get("fps", source_fps)  # rate of the frames the flow saw (sampled)
    share, longest = frozen_runs(scores, thr)
    return {"share": share, "longest_s": longest / fps, "scores": scores, "threshold": thr, "fps": fps}


def freeze_score(clip: ClipFeatures, metric: FrozenMotion, value: str, other_name: str, other: str) -> ClipScore:
    """One of partial_freeze's two numbers as the score, the other as an extra (frozen_share and
    frozen_seconds read the same pass)."""
    r = partial_freeze(clip, metric)
    if r is None:
        return ClipScore(float("nan"), note="fewer than 2 frames (after sampling to ~8 fps): no motion to measure")
    extras = {other_name: r[other], "threshold": r["threshold"], "fps": r["fps"]}
    return ClipScore(r[value], curve=[float(s) for s in r["scores"]], extras=extras)


class FrozenShare(FrozenMotion):
    name = "frozen_share"
    version = "1"
    failure_mode = "partly frozen motion (a share of the clip stands still)"
    audit_corruption = "freeze"
    audit_extras = {}

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        return freeze_score(clip, self, "share", "longest_frozen_s", "longest_s")


class FrozenSeconds(FrozenMotion):
    name = "frozen_seconds"
    version = "1"
    failure_mode = "a long frozen stretch (seconds without motion)"
    audit_corruption = "freeze"
    audit_extras = {}

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        return freeze_score(clip, self, "longest_s", "frozen_share", "share")
