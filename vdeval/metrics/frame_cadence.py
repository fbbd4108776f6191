"""Frame cadence: held (repeated) frames and skipped frames, from frame differences alone.

Two weightless detectors of irregular frame cadence, each its own metric (no learned backbone, no
optical flow; the frames as the `pixels` backbone decodes them, short side at most 256 px). Both
read one number per consecutive frame pair and ask whether one pair breaks from its neighbours:
the relative test of inter-frame measures used to expose frame duplication and deletion in video
forensics (Wu, Jiang, Sun & Wang, "Exposing video inter-frame forgery based on velocity field
consistency", ICASSP 2014: a pair's measure divided by its neighbours'; there on optical-flow
sums, here on frame differences, which measured better on the calibration split, below). The
per-pair measures are the two classical frame comparisons of shot detection (Zhang, Kankanhalli &
Smoliar, "Automatic partitioning of full-motion video", Multimedia Systems 1993): the share of
pixels that change by more than a threshold, and the mean absolute difference.

g_t is frame t in grey (BT.601 weights, 0-255), pairs t = 0 .. T-2.

frame_repeats (failure: stutter, a frame held or repeated with noise between moving frames)
  c_t = share of pixels with |g_{t+1} - g_t| > CHANGE (8 grey levels: above sensor / encoder
  noise of a re-shown frame, below any visible move); for each pair the reference is
  ref_t = min(max c over the WINDOW pairs before, max c over the WINDOW pairs after) (the first
  pair: the pairs after; the last: the pairs before), and dip_t = 1 - c_t / ref_t where ref_t > 0
  (0 where nothing changes around it). value = max_t dip_t in [0, 1], lower is better: 0 for a
  steady clip, 1 for an exact repeat between changing frames; curve = dip_t. A clip whose motion
  ends (objects leave, the camera stops) is not a dip: the pairs after it do not change either.

frame_skips (failure: skip-ahead, frames dropped so that the motion jumps)
  d_t = mean |g_{t+1} - g_t|; r_t = d_t / median(d over the WINDOW pairs either side of t, t
  excluded) where that median is over 0; value = max_t r_t, lower is better: 1 for a steady clip,
  about k + 1 where k frames were dropped from slow, steady motion (the difference of a moving
  edge grows with its displacement); curve = r_t. A scene cut also reads as a jump.

Settings (CHANGE, WINDOW and which per-pair measure each metric uses) were chosen on the
calibration split of `vdeval audit --grid` (seeds 10000+, even natural windows, severities 0.35 /
0.7) among CHANGE 4 / 8 / 16 / 32, WINDOW 1 / 2 / 3 and the measures (mean DIS flow magnitude,
flow magnitude on changed pixels, changed share, mean absolute difference), by the worst
calibration cell, then the mean; the README reports the evaluation split. Both are NaN with a
note on a clip in which nothing changes (a still clip has no cadence).
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams

CHANGE = 8.0  # grey levels (0-255): a pixel "changes" between two frames by more than this
WINDOW = 2  # pairs on each side a pair is compared with
GREY = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601


def grey(frame: np.ndarray) -> np.ndarray:
    """(H, W) float32 BT.601 grey (0-255) of an RGB frame (frame_blending reads frames the same way)."""
    return np.asarray(frame, np.float32) @ GREY


def pair_measures(frames: np.ndarray, change: float = CHANGE) -> tuple[np.ndarray, np.ndarray]:
    """(changed share c_t, mean absolute grey difference d_t) of each consecutive pair, a pair at a
    time (a long clip is never held in float32 whole)."""
    n = max(0, len(frames) - 1)
    c, d = np.zeros(n), np.zeros(n)
    prev = grey(frames[0]) if n else None
    for t in range(n):
        cur = grey(frames[t + 1])
        diff = np.abs(cur - prev)
        c[t], d[t] = float((diff > change).mean()), float(diff.mean(dtype=np.float64))
        prev = cur
    return c, d


def repeat_dips(c: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """dip_t = 1 - c_t / min(max of the `window` pairs before, max of those after) (ends: one side)."""
    n = len(c)
    out = np.zeros(n)
    for t in range(n):
        before = c[max(0, t - window):t].max() if t > 0 else None
        after = c[t + 1:t + 1 + window].max() if t + 1 < n else None
        sides = [s for s in (before, after) if s is not None]
        ref = min(sides) if sides else 0.0
        out[t] = 1.0 - c[t] / ref if ref > 0 else 0.0
    return np.clip(out, 0.0, 1.0)


def skip_ratios(d: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """r_t = d_t / median of d over the `window` pairs either side (t excluded); NaN where that median is 0."""
    n = len(d)
    out = np.full(n, np.nan)
    for t in range(n):
        around = np.r_[d[max(0, t - window):t], d[t + 1:t + 1 + window]]
        med = float(np.median(around)) if around.size else 0.0
        if med > 0:
            out[t] = d[t] / med
    return out


STILL = "nothing changes: a still clip has no cadence to break"


class DecodedFramesMetric(Metric[NoParams]):
    """What frame_repeats, frame_skips and frame_blending share: weightless statistics of the decoded
    frames ("pixels"), at least three of them, lower is better."""
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 3
    default_backbone = "pixels"
    allowed_backbones = ("pixels",)

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frames", self.backbone)]


class FrameRepeats(DecodedFramesMetric):
    name = "frame_repeats"
    failure_mode = "stutter (held or repeated frames between moving frames)"
    audit_corruption = "stutter"

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        c, _ = pair_measures(clip.frames_for(self.backbone))
        if not (c > 0).any():
            return ClipScore(float("nan"), note=STILL)
        dips = repeat_dips(c)
        return ClipScore(float(dips.max()), curve=[float(x) for x in dips],
                         extras={"changed_fraction": float(c.mean())})


class FrameSkips(DecodedFramesMetric):
    name = "frame_skips"
    failure_mode = "skip-ahead (dropped frames: the motion jumps)"
    audit_corruption = "teleport"

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        _, d = pair_measures(clip.frames_for(self.backbone))
        r = skip_ratios(d)
        if not np.isfinite(r).any():
            return ClipScore(float("nan"), note=STILL)
        return ClipScore(float(np.nanmax(r)), curve=[float(x) for x in r],
                         extras={"mean_difference": float(d.mean())})
