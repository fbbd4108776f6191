"""Imaging quality: is each frame clean (no noise, blur, blocking), whatever it shows?

Failure mode: low imaging quality (noise, blur, compression artefacts, over-exposure).
Tiers; the backbone label in results says which produced a number, and they never compare:
  backbone "niqe_world" (default; weightless, offline): NIQE with a pristine model fitted on clean
    world clips (the world-domain tier), or "niqe": NIQE with the published natural-image pristine
    model, the weightless tier for real footage (see vdeval/backbones/niqe.py).
    value = the clip's NIQE, all 96 px patches of all frames pooled into one Gaussian; curve = per-frame NIQE where a frame has 2 or more patches. LOWER is better.
    No peer computes NIQE over a clip; per frame it equals scikit-video's `niqe` (parity test).
Not here yet: VBench's own tier, MUSIQ (pyiqa's musiq_spaq checkpoint; VBench's value is the mean
over frames of the MUSIQ score / 100, higher is better). pyiqa, the only PyPI package with MUSIQ's
architecture, imports every one of its models on import and requires transformers>=5, bitsandbytes,
datasets and more; a faithful re-implementation that loads its checkpoint is future work (it would
be a backbone providing frame_score, higher is better, so the orientation would become per tier).
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric


class ImagingQuality(Metric):
    name = "imaging_quality"
    version = "1"
    higher_is_better = False
    level = "clip"
    default_backbone = "niqe_world"
    natural_backbone = "niqe"  # the published pristine model, for footage that is not the world's
    allowed_backbones = ("niqe_world", "niqe")
    failure_mode = "low imaging quality (noise, blur, compression)"
    audit_corruption = "noise"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        f = clip.get("frame_score", self.backbone)
        per_frame = np.asarray(f["value"], np.float64).reshape(-1)
        curve = [float(x) for x in per_frame]
        value = float(np.asarray(f["clip"]).reshape(-1)[0])
        note = None if np.isfinite(value) else "fewer than 2 NIQE patches in the clip"
        return ClipScore(value, curve, {"frames_scored": float(np.isfinite(per_frame).sum())}, note)
