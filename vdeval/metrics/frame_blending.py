"""Frame blending (ghosting): is each frame mixed with its neighbours?

Failure mode: frame blending, a frame that is a mix of its neighbours (f_t' = (1 - a) f_t +
a (f_{t-1} + f_{t+1}) / 2, the cheap way to change a frame rate, or a model that averages
frames): moving things leave faint copies of themselves where they were and where they will be.
At large motion this is ghosting, not blur, and an edge-sharpness measure (motion_blur) does not
see it: each faint copy has a sharp edge of its own (README, generalization audit).

Definition (a frame-similarity statistic, no weights, no flow): g_t is frame t in grey (BT.601,
0-255), m the per-pixel median of g over the clip (what does not move), r_t = g_t - m; for each
frame with two neighbours,
  nu_t = <r_t, (r_{t-1} + r_{t+1}) / 2> / (|r_t| |(r_{t-1} + r_{t+1}) / 2|)   (over pixels)
value = median_t nu_t in [-1, 1], lower is better; curve = nu_t (NaN where a norm is zero).
How much of what moves in frame t sits where its neighbours' moving content is: a blend puts a
copy of each neighbour into the frame, so nu rises. Known answers (tests/metrics/test_frame_blending.py):
a square that moves further than its size each frame, on a plain background, has nu = 0 clean
(its places in neighbouring frames are disjoint), and blended with any weight a in (0, 1)
  nu = a (1 - a) / sqrt(((1 - a)^2 + a^2 / 2) (3 a^2 / 8 + (1 - a)^2 / 2)) > 0
(0.87 at a = 0.5, 0.25 at a = 0.9), exactly on the frames before uint8 rounding.
Why not the correlation of consecutive frame differences, the obvious temporal-derivative
statistic: the blend is the temporal filter [a/2, 1 - a, a/2], whose differences' lag-1
correlation on that square is (1 - 3a/2)(5a/2 - 1) / (a^2 / 2 + 2 (1 - 3a/2)^2): above the clean
-1/2 for a < 0.8, below it at a = 0.9 (-0.67), so it would read heavy blending as cleaner than
clean. Between median and mean centring the calibration split of `vdeval audit --grid` chose the
median (worst calibration cell of the motion-blur family 0.73 vs 0.50).
Slow motion over smooth content has nu near 1 in clean footage too (consecutive frames alike), and
so do fades: the value compares clips of like content and motion (a model against its
reference, a checkpoint against the last); it is no absolute grade. The idea, blended or
interpolated frames exposed by how much of their neighbours they contain, is that of the
frame-interpolation forensics literature (e.g. Bestagini et al., "Detection of temporal
interpolation in video sequences", ICASSP 2013); the statistic here is this project's own.
Memory: the clip's grey frames in float32 and their median (about 12 bytes a pixel of the clip).
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures
from vdeval.metrics.base import ClipScore
from vdeval.metrics.frame_cadence import DecodedFramesMetric, grey


def neighbour_correlations(frames: np.ndarray) -> np.ndarray:
    """nu_t for t = 1 .. T-2 (see the module docstring); NaN where a norm is zero."""
    t_all = len(frames)
    out = np.full(max(t_all - 2, 0), np.nan)
    if t_all < 3:
        return out
    g = np.stack([grey(f) for f in frames])  # (T, H, W) float32
    g -= np.median(g, axis=0)
    for t in range(1, t_all - 1):
        a = g[t].ravel().astype(np.float64)
        b = ((g[t - 1] + g[t + 1]) / 2).ravel().astype(np.float64)
        den = np.sqrt((a @ a) * (b @ b))
        if den > 0:
            out[t - 1] = float(a @ b / den)
    return out


class FrameBlending(DecodedFramesMetric):
    name = "frame_blending"
    failure_mode = "frame blending (ghosting: frames mixed with their neighbours)"
    audit_corruption = "motion_blur"

    def working_set(self, frames: int, height: int, width: int) -> int:
        # the grey clip (float32) and np.median's working copy, plus a pair of float64 planes
        return 12 * frames * height * width + 64 * height * width

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        nu = neighbour_correlations(clip.frames_for(self.backbone))
        if not np.isfinite(nu).any():
            return ClipScore(float("nan"), curve=[float(x) for x in nu],
                             note="nothing moves: every frame equals the clip's median")
        return ClipScore(float(np.nanmedian(nu)), curve=[float(x) for x in nu])
