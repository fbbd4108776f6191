"""Imaging quality: is each frame clean (no noise, blur, blocking), whatever it shows?

Failure mode: low imaging quality (noise, blur, compression artefacts, over-exposure).
Tiers; the backbone label in results says which produced a number, and they never compare:
  backbone "niqe_world" (default; weightless, offline): NIQE with a pristine model fitted on clean
    world clips (the world-domain tier), or "niqe": NIQE with the published natural-image pristine
    model, the weightless tier for real footage (see vdeval/backbones/niqe.py).
    value = the clip's NIQE, all 96 px patches of all frames pooled into one Gaussian; curve = per-frame NIQE where a frame has 2 or more patches. LOWER is better.
    No peer computes NIQE over a clip; per frame it equals scikit-video's `niqe` (parity test).
  backbone "musiq" (published; VBench's): MUSIQ (vdeval/backbones/musiq.py, pyiqa's architecture
    re-implemented, its released checkpoints through the weights manager: "spaq", VBench's, by default,
    or "koniq"; the label says which, e.g. musiq@spaq). value = mean over frames of the MUSIQ score
    / 100, VBench's imaging_quality; curve = per-frame score / 100. HIGHER is better on this tier.
    Parity: tests/backbones/test_musiq.py runs pyiqa's own MUSIQ module under VBench's preprocessing.
  Compression tiers (vdeval/backbones/blockiness.py; not defaults: the README gives the grid figures):
  backbone "blockiness": Wang, Sheikh & Bovik's 2002 no-reference JPEG quality S per frame and of the
    clip's mean features, HIGHER is better; for natural footage (it reads ringing on the flat world as
    detail). Backbone "niqe_world_zc": niqe_world + a weight x Wang et al.'s zero-crossing rate, for
    world clips; LOWER is better.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams

UNDEFINED = {"musiq": "no frames",
             "blockiness": "blockiness undefined: frames under 16 px, or no step across any 8x8 block boundary (flat)"}


class ImagingQuality(Metric[NoParams]):
    name = "imaging_quality"
    version = "1"
    higher_is_better = False
    level = "clip"
    default_backbone = "niqe_world"
    natural_backbone = "niqe"  # the published pristine model, for footage that is not the world's
    allowed_backbones = ("niqe_world", "niqe", "musiq", "blockiness", "niqe_world_zc")
    failure_mode = "low imaging quality (noise, blur, compression)"
    audit_corruption = "noise"

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        # musiq and blockiness give quality scores; NIQE is a distance
        self.higher_is_better = self.backbone in ("musiq", "blockiness")

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_score", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        f = clip.get("frame_score", self.backbone)
        per_frame = np.asarray(f["value"], np.float64).reshape(-1)
        value = float(np.asarray(f["clip"]).reshape(-1)[0])
        if self.backbone == "musiq":  # VBench's scale: the 0-100 score / 100
            per_frame, value = per_frame / 100.0, value / 100.0
        note = None if np.isfinite(value) else UNDEFINED.get(self.backbone, "fewer than 2 NIQE patches in the clip")
        return ClipScore(value, [float(x) for x in per_frame], {"frames_scored": float(np.isfinite(per_frame).sum())}, note)
