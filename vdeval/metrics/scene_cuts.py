"""Scene cuts: abrupt, unintended transitions inside a clip.

Failure mode: scene cuts (the clip jumps to another scene mid-way).
Definition: d_t = 1 - cos(e_t, e_{t+1}) between consecutive frame embeddings (curve). Pair t is a
cut when d_t > k * b_t + eps, with b_t the median of the other distances within `window` pairs on
either side (0 when there are none): a jump must stand out against the clip's own frame-to-frame
change, so steady fast motion or flicker is not a run of cuts, and exceed an absolute floor eps so
a still clip's tiny changes are not either. value = number of cuts (lower is better);
extras["max_excess"] = max_t (d_t - k * b_t), a continuous version (> eps means a cut).
Backbones: "pixels" (default; sqrt colour histograms, cosine = Bhattacharyya coefficient) or
"embedded". eps per backbone, measured on world clips (32 px, 8 frames, 40 clips, pan 0.3):
  pixels (16 bins): clean consecutive distances max 0.0083; world scene_cut (a blend with another
  clip from mid-clip) gives a cut-pair distance of min 0.176 at severity 0.5, min 0.064 at 0.25;
  with eps = 0.1 and k = 3 no clean clip has a cut and 40/40 (0.5), 38/40 (0.25 and 1.0) cut clips
  have one (at 1.0 two replacement clips share the original's colours). An identity swap
  (object recoloured mid-clip) is sometimes counted: to colour statistics it is a small cut.
  embedded: clean distances median 0.029, 95th pct 0.087, max 0.38 (an object leaving the frame);
  the scene_cut pair at severity 0.5 has median 0.46, min 0.077. eps = 0.1 (k = 3): 1/40 clean
  clips with a cut, 37/40 cut at severity 0.5, 13/40 at 0.25, 40/40 at 1.0; eps 0.2 would give 0/40
  clean but 31/40 at 0.5. Its frame embeddings are built to encode identity, so an identity swap
  reads as a cut (22/40 at severity 0.5): prefer "pixels" for cuts, "embedded" for identity.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict

from vdeval.errors import SuiteError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric
from vdeval.metrics.identity_drift import normalize

# the measured floor per backbone (above); other backbones' distances have other scales, so they
# need `eps` given (clip, dino: no weights here to measure them on)
EPS = {"pixels": 0.1, "embedded": 0.1}


def consecutive_distances(e: np.ndarray) -> np.ndarray:
    """(T-1,) cosine distances between consecutive rows of e (T, D); NaN where a row is NaN/zero."""
    u = normalize(e)
    return 1.0 - (u[1:] * u[:-1]).sum(-1)


def local_baseline(d: np.ndarray, window: int = 3) -> np.ndarray:
    """Median of the other finite distances within `window` positions; 0 where there are none."""
    out = np.zeros_like(d, dtype=np.float64)
    for t in range(d.size):
        lo, hi = max(0, t - window), min(d.size, t + window + 1)
        nb = np.concatenate([d[lo:t], d[t + 1:hi]])
        nb = nb[np.isfinite(nb)]
        out[t] = float(np.median(nb)) if nb.size else 0.0
    return out


def detect_cuts(d: np.ndarray, k: float = 3.0, eps: float = 0.1, window: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(cut flags (T-1,) bool, excess d_t - k * b_t). NaN distances are never cuts."""
    d = np.asarray(d, np.float64)
    excess = d - k * local_baseline(d, window)
    return np.nan_to_num(excess, nan=-np.inf) > eps, excess


class SceneCutsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    k: float = 3.0
    eps: float | None = None  # None: the measured floor of the backbone
    window: int = 3


class SceneCuts(Metric[SceneCutsParams]):
    name = "scene_cuts"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "pixels"
    allowed_backbones = ("pixels", "embedded", "dino", "dino_vbench", "clip")
    failure_mode = "scene cuts"
    audit_extras = {"max_excess": False}

    Params = SceneCutsParams

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        if self.params.eps is None and self.backbone not in EPS:
            raise SuiteError(f"scene_cuts has no measured eps for backbone {self.backbone!r} (measured: {', '.join(EPS)})",
                             "give the floor a cut's distance must exceed, e.g. params: {eps: 0.1}, or use backbone pixels")

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        e = clip.value("frame_embedding", self.backbone)
        d = consecutive_distances(e)
        eps = self.params.eps if self.params.eps is not None else EPS[self.backbone]
        cuts, excess = detect_cuts(d, self.params.k, eps, self.params.window)
        fin = excess[np.isfinite(excess)]
        extras = {"max_excess": float(fin.max()) if fin.size else float("nan"),
                  "cut_pairs": float(np.flatnonzero(cuts)[0]) if cuts.any() else -1.0}
        note = None if np.isfinite(d).all() else "some frame embeddings are NaN or zero; those pairs are not counted"
        return ClipScore(float(cuts.sum()), [float(x) for x in d], extras, note)
