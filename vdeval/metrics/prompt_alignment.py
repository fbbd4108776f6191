"""Prompt alignment: does the clip show what its prompt says, and keep showing it?

Failure modes: weak prompt alignment (ClipScoreMetric, VideoTextAlignment) and prompt drift (PromptDrift).
ClipScoreMetric (`clip_score`): per frame, cos(frame embedding, text embedding); value = mean over frames of the raw
  cosine in [-1, 1] (higher is better); extras["clipscore"] = torchmetrics' CLIPScore as its code
  computes it with the frames as its samples: max(mean over frames of 100 * cos, 0), the clamp
  applied once to the mean (torchmetrics' compute), not to each frame (version 2; version 1 clamped
  each frame, which differs whenever some frame's cosine is negative). Backbone "embedded" (default; the world-trained shared
  text/frame space) or "clip" (open_clip, paper-comparable scale).
VideoTextAlignment: cos(video embedding, text embedding) from the embedded video encoder, which
  sees motion, so "moving left" vs "moving right" can count; raw cosine, higher is better. ("clip"
  is accepted; its video embedding is the mean frame embedding and sees no motion.)
PromptDrift: the per-frame cosines c_t as above; value = the fitted drop over the clip,
  -slope * (T - 1) with slope the least-squares slope of c_t against t (cosine units; lower is
  better; negative when alignment improves). extras: half_drop (mean of the first half minus mean of
  the second half), slope. A clip that starts on-prompt and wanders off scores high.
An empty (or whitespace) prompt has nothing to align with: NaN with a note.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams
from vdeval.metrics.identity_drift import cosine_to, slope

EMPTY_NOTE = "empty prompt: nothing to align with"


def frame_text_cosines(frame_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
    """(T,) cosine of each frame embedding to the text embedding."""
    return cosine_to(frame_emb, np.asarray(text_emb).reshape(-1))


def clipscore_x100(cos: np.ndarray) -> float:
    """torchmetrics' CLIPScore over the frames as samples: max(mean(100 cos), 0) (the clamp of the mean)."""
    return max(float(np.mean(100.0 * np.asarray(cos, np.float64))), 0.0)


def drift(cos: np.ndarray) -> tuple[float, float, float]:
    """(fitted drop over the clip, first-half minus second-half mean, slope) of per-frame cosines."""
    c = np.asarray(cos, np.float64)
    s = slope(c)
    h = c.size // 2
    half = float(c[:h].mean() - c[c.size - h:].mean()) if h else float("nan")
    return -s * (c.size - 1), half, s


def _empty(clip: ClipFeatures) -> bool:
    return not (clip.prompt or "").strip()


class ClipScoreMetric(Metric[NoParams]):
    """The `clip_score` metric (vdeval.metrics.base.ClipScore is the per-clip result every metric returns)."""

    name = "clip_score"
    version = "2"
    higher_is_better = True
    level = "clip"
    default_backbone = "embedded"
    natural_backbone = "clip"
    allowed_backbones = ("embedded", "clip")
    failure_mode = "weak prompt alignment"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone), FeatureRequest("text_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        if _empty(clip):
            return ClipScore(float("nan"), note=EMPTY_NOTE)
        cos = frame_text_cosines(clip.value("frame_embedding", self.backbone), clip.value("text_embedding", self.backbone))
        return ClipScore(float(cos.mean()), [float(c) for c in cos], {"clipscore": clipscore_x100(cos)})


class VideoTextAlignment(Metric[NoParams]):
    name = "video_text_alignment"
    version = "1"
    higher_is_better = True
    level = "clip"
    default_backbone = "embedded"
    allowed_backbones = ("embedded", "clip")  # clip's video embedding is its mean frame embedding: no motion
    failure_mode = "weak prompt alignment (including motion words)"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("video_embedding", self.backbone), FeatureRequest("text_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        if _empty(clip):
            return ClipScore(float("nan"), note=EMPTY_NOTE)
        v = clip.value("video_embedding", self.backbone)
        t = clip.value("text_embedding", self.backbone)
        return ClipScore(float(cosine_to(np.asarray(v)[None], np.asarray(t).reshape(-1))[0]))


class PromptDrift(Metric[NoParams]):
    name = "prompt_drift"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "embedded"
    natural_backbone = "clip"
    allowed_backbones = ("embedded", "clip")
    failure_mode = "prompt drift"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone), FeatureRequest("text_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        if _empty(clip):
            return ClipScore(float("nan"), note=EMPTY_NOTE)
        cos = frame_text_cosines(clip.value("frame_embedding", self.backbone), clip.value("text_embedding", self.backbone))
        drop, half, s = drift(cos)
        return ClipScore(drop, [float(c) for c in cos], {"half_drop": half, "slope": s})
