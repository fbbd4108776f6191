"""Aesthetic quality: VBench's aesthetic_quality, the LAION aesthetic predictor on each frame.

Failure mode: low aesthetic quality (composition, colour, appeal of the frames as pictures), which
no temporal metric sees.
Definition (vbench/aesthetic_quality.py): per frame the LAION aesthetic score s_t (1-10 scale) of the
L2-normalised CLIP ViT-L/14 image embedding (backbone `laion_aesthetic`, see
vdeval/backbones/aesthetic.py); value = mean over frames of s_t / 10, higher is better; curve = s_t / 10.
A generator's summary is the mean of its clips, as VBench's average over videos.
Compared with: VBench's number for the same frames (same transform, same CLIP, same head; VBench
runs the OpenAI CLIP in float16 on CUDA, vdeval in float32). Published weights only: no world
corruption imitates "less beautiful", so it has no audit entry.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric


class AestheticQuality(Metric):
    name = "aesthetic_quality"
    version = "1"
    higher_is_better = True
    level = "clip"
    default_backbone = "laion_aesthetic"
    allowed_backbones = ("laion_aesthetic",)
    failure_mode = "low aesthetic quality"
    audit_exempt = "no world corruption lowers aesthetic quality, and its backbone has published weights only"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        s = np.asarray(clip.get("frame_score", self.backbone)["value"], np.float64).reshape(-1) / 10.0
        if not s.size or not np.isfinite(s).all():
            return ClipScore(float("nan"), [float(x) for x in s], note="no finite aesthetic score")
        return ClipScore(float(s.mean()), [float(x) for x in s])
