"""Identity drift: does the subject stay itself over the clip (and, for image-to-video, stay the
reference image's subject)?

Failure mode: identity drift (the subject's colour, shape or kind changes over time).
IdentityDrift, per clip from per-frame embeddings e_0..e_{T-1}:
  value  = VBench subject consistency: mean over t >= 1 of (max(0, cos(e_t, e_0)) + max(0, cos(e_t, e_{t-1}))) / 2,
           in [0, 1], higher is better;
  curve  = cos(e_t, e_0) for every frame (1.0 at t = 0);
  extras = last_to_first (cos of last frame to first) and drift_slope (least-squares slope of the
           curve against frame index, per frame; negative = drifting away).
Aggregation (param `aggregate`): "clips" (default) summarises a generator by the mean of its clips;
"pairs" by the mean over all frame pairs of all clips, i.e. clips weighted by their T - 1 pairs
(extras n_pairs), which is how VBench's subject_consistency pools (sum of every pair's similarity
over the count of pairs). The two agree when every clip has the same length.
ReferenceFidelity (image-to-video): value = mean over frames of cos(e_t, reference embedding),
curve = the per-frame cosines; higher is better.
Backbones: "embedded" (default), "dino", "clip"; IdentityDrift also accepts "pixels" (colour
histograms: a cheap baseline that sees colour changes but not shape changes).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams


def normalize(e: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; a zero or non-finite row becomes NaN (its cosines are undefined)."""
    e = np.asarray(e, np.float64)
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = e / n
    out[~np.isfinite(n[..., 0]) | (n[..., 0] == 0)] = np.nan
    return out


def cosine_to(e: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """(T,) cosine of each row of e (T, D) to anchor (D,)."""
    return normalize(e) @ normalize(anchor[None])[0]


def subject_consistency(e: np.ndarray) -> float:
    """VBench's subject consistency of frame embeddings (T, D); NaN for fewer than 2 frames."""
    u = normalize(e)
    if u.shape[0] < 2:
        return float("nan")
    to_first = np.maximum(u[1:] @ u[0], 0.0)
    to_prev = np.maximum((u[1:] * u[:-1]).sum(-1), 0.0)
    return float(np.mean((to_first + to_prev) / 2))  # NaN embeddings propagate (np.maximum keeps NaN)


def slope(y: np.ndarray) -> float:
    """Least-squares slope of y against its index; NaN with fewer than 2 points or any NaN."""
    y = np.asarray(y, np.float64)
    if y.size < 2:
        return float("nan")
    x = np.arange(y.size, dtype=np.float64)
    x -= x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


class IdentityDriftParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    aggregate: Literal["clips", "pairs"] = "clips"


class IdentityDrift(Metric[IdentityDriftParams]):
    name = "identity_drift"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 2
    default_backbone = "embedded"
    natural_backbone = "dino"
    allowed_backbones = ("embedded", "dino", "dino_vbench", "clip", "pixels")
    failure_mode = "identity drift"

    Params = IdentityDriftParams

    def summary_weight(self) -> str | None:
        return "n_pairs" if self.params.aggregate == "pairs" else None

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        e = clip.value("frame_embedding", self.backbone)
        curve = cosine_to(e, e[0])
        value = subject_consistency(e)
        extras = {"last_to_first": float(curve[-1]), "drift_slope": slope(curve), "n_pairs": float(e.shape[0] - 1)}
        note = None if np.isfinite(value) else "frame embeddings contain NaN or zero vectors"
        return ClipScore(value, [float(c) for c in curve], extras, note)


class ReferenceFidelity(Metric[NoParams]):
    name = "reference_fidelity"
    version = "1"
    higher_is_better = True
    level = "clip"
    default_backbone = "embedded"
    natural_backbone = "dino"
    allowed_backbones = ("embedded", "dino", "dino_vbench", "clip")
    failure_mode = "identity drift from the reference image (image-to-video)"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone), FeatureRequest("reference_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        e = clip.value("frame_embedding", self.backbone)
        ref = clip.value("reference_embedding", self.backbone)
        curve = cosine_to(e, ref)
        value = float(curve.mean())
        note = None if np.isfinite(value) else "frame or reference embeddings contain NaN or zero vectors"
        return ClipScore(value, [float(c) for c in curve], {"last_to_reference": float(curve[-1])}, note)
