"""Imaging quality: is each frame clean (no noise, blur, blocking), whatever it shows?

Failure mode: low imaging quality (noise, blur, compression artefacts, over-exposure).
Two tiers; the backbone label in results says which produced a number, and they never compare:
  backbone "niqe_world" (default; weightless, offline): NIQE with a pristine model fitted on clean
    world clips (the world-domain tier), or "niqe": NIQE with the published natural-image pristine
    model, the weightless tier for real footage (see vdeval/backbones/niqe.py). value = the clip's NIQE, all 96 px patches of all frames pooled into
    one Gaussian; curve = per-frame NIQE where a frame has 2 or more patches. LOWER is better.
    No peer computes NIQE over a clip; per frame it equals scikit-video's `niqe` (parity test).
  backbone "musiq" (published): VBench's imaging_quality, the MUSIQ-SPAQ score of each frame;
    value = mean over frames of score / 100 (VBench divides its average by 100), in [0, 1];
    HIGHER is better. (Registered only when its loader is present; see README.)
Orientation follows the tier: the metric instance carries higher_is_better for its backbone.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric

HIGHER_IS_BETTER = {"niqe": False, "niqe_world": False, "musiq": True}


class ImagingQuality(Metric):
    name = "imaging_quality"
    version = "1"
    higher_is_better = False  # the default tier's (NIQE); set per backbone in __init__
    level = "clip"
    default_backbone = "niqe_world"
    allowed_backbones = ("niqe_world", "niqe", "musiq")
    failure_mode = "low imaging quality (noise, blur, compression)"
    audit_corruption = "noise"

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        self.higher_is_better = HIGHER_IS_BETTER.get(self.backbone, False)

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        f = clip.get("frame_score", self.backbone)
        per_frame = np.asarray(f["value"], np.float64).reshape(-1)
        curve = [float(x) for x in per_frame]
        if self.backbone == "musiq":
            finite = per_frame[np.isfinite(per_frame)]
            if not finite.size:
                return ClipScore(float("nan"), curve, note="no frame could be scored")
            return ClipScore(float(finite.mean() / 100.0), curve)
        value = float(np.asarray(f["clip"]).reshape(-1)[0])
        note = None if np.isfinite(value) else "fewer than 2 NIQE patches in the clip"
        return ClipScore(value, curve, {"frames_scored": float(np.isfinite(per_frame).sum())}, note)
