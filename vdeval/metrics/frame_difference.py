"""Temporal flicker as raw frame difference (VBench's temporal_flickering), needing no learned backbone.

Failure mode: flicker (frame-to-frame appearance changes with nothing moving).
Definition: for each consecutive pair, the mean absolute difference of all pixels and channels on
0-255 values; per clip the mean over pairs. The value is that mean difference, on 0-255 (lower is
better); extras["vbench"] is VBench's reported form (255 - mean) / 255 in [0, 1] (higher is better).
It cannot tell motion from flicker, so it is meaningful on still scenes and as a cheap baseline.
Input: the frames as the `pixels` backbone decodes them, at a short side of at most 256 px
(area-averaged). VBench differences frames at their own size; on footage larger than 256 px the
area averaging removes pixel noise, so the value is lower than VBench's there (identical on clips
of 256 px and under).
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams


def pair_differences(frames: np.ndarray) -> np.ndarray:
    """(T-1,) mean |frame[t+1] - frame[t]| over pixels and channels, in the frames' own units.

    Float frames may hold NaN (e.g. decoded from a broken source); a pair touching NaN gives NaN."""
    f = np.asarray(frames)
    if f.ndim != 4 or f.shape[0] < 2:
        return np.zeros((0,), np.float64)
    # pair by pair: a long clip is never held again in float64 (uint8 differences are exact in int16)
    wide = np.int16 if f.dtype == np.uint8 else np.float64
    return np.array([np.abs(f[t + 1].astype(wide) - f[t].astype(wide)).mean(dtype=np.float64)
                     for t in range(f.shape[0] - 1)])


class FrameDifference(Metric[NoParams]):
    name = "frame_difference"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "pixels"
    allowed_backbones = ("pixels",)
    failure_mode = "flicker"

    def requests(self) -> list[FeatureRequest]:
        # frames as the pixels backbone decodes them (short side at most 256): real footage is
        # never held at source size; VBench differences at full size, see the module docstring
        return [FeatureRequest("frames", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        d = pair_differences(clip.frames_for(self.backbone))
        if d.size == 0:
            return ClipScore(float("nan"), note="one-frame clip: no consecutive frames to compare")
        mean = float(d.mean())
        return ClipScore(mean, curve=[float(x) for x in d], extras={"vbench": (255.0 - mean) / 255.0})
