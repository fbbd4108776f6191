"""Aesthetic quality: VBench's aesthetic_quality, the LAION aesthetic predictor on each frame.

Failure mode: low aesthetic quality (composition, colour, appeal of the frames as pictures), which
no temporal metric sees.
Definition (vbench/aesthetic_quality.py): per frame the LAION aesthetic score s_t (1-10 scale) of the
L2-normalised CLIP ViT-L/14 image embedding (backbone `laion_aesthetic`, see
vdeval/backbones/aesthetic.py); value = mean over frames of s_t / 10, higher is better; curve = s_t / 10.
A generator's summary is the mean of its clips, as VBench's average over videos.
Compared with: VBench's number for the same frames (same transform, same CLIP, same head; VBench
runs the OpenAI CLIP in float16 on CUDA, vdeval in float32).

Offline tier (the default, so a suite runs without weights): backbone `colorfulness`, s_t = (Hasler
and Suesstrunk's colourfulness + RMS luma contrast) / 10 of frame t (vdeval/backbones/colorfulness.py),
same formula value = mean s_t / 10; extras `colourfulness` and `contrast` (means over frames, 0-255
units). It sees washed-out, greyed, low-contrast frames only, nothing of composition or content, and
its numbers are not LAION's: results name the backbone beside every number. Audit: the world
corruption `color_wash` (colours and contrast fading to grey), caught at AUROC 0.97 at severity 0.5
with `colorfulness`; the LAION tier is not audited here (no weights offline).
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams


class AestheticQuality(Metric[NoParams]):
    name = "aesthetic_quality"
    version = "1"
    higher_is_better = True
    level = "clip"
    default_backbone = "colorfulness"
    allowed_backbones = ("colorfulness", "laion_aesthetic")
    failure_mode = "low aesthetic quality (washed-out, low-contrast frames for the colorfulness tier)"
    audit_corruption = "color_wash"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        s = np.asarray(clip.get("frame_score", self.backbone)["value"], np.float64).reshape(-1) / 10.0
        if not s.size or not np.isfinite(s).all():
            return ClipScore(float("nan"), [float(x) for x in s], note="no finite aesthetic score")
        f = clip.get("frame_score", self.backbone)
        extras: dict[str, float] = {k: float(np.mean(f[k])) for k in ("colourfulness", "contrast") if k in f}
        return ClipScore(float(s.mean()), [float(x) for x in s], extras)
