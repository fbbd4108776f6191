"""Frozen motion: VBench's dynamic degree on dense flow.

Failure mode: frozen motion (the image changes too little; a "video" that is a still).
Definition (VBench's dynamic degree, vbench/dynamic_degree.py): the clip's frames are first sampled
to about 8 fps, keeping every max(1, round(fps / 8))-th frame (`sample_fps`, None keeps every
frame). Per consecutive pair of the kept frames the motion score is the mean of the top 5%
forward-flow magnitudes (pixels). A clip is dynamic when at least `count` pairs score above
`threshold`, with threshold = scale * min(H, W) / 256 (H x W the frames the flow saw; VBench's
set_params, no frame-rate factor) and count = round(4 * T / 16) for T kept frames (VBench: scale 6.0 for RAFT on
frames at their own size; backbone `raft_vbench` runs RAFT as VBench does: raft-things weights,
20 iterations; VBench takes the top 5% over the flow of the padded frame, multiples of 8, we over
the frame's own pixels). Where we differ: VBench's count is 0 for T <= 2 kept frames, which calls
any such clip dynamic whatever it scores; we require at least one moving pair (count >= 1). A clip
with fewer than 2 frames after sampling scores NaN with a note (VBench: static). So a 24 fps clip is
judged on every third frame, and a clip moving 2.5 px per frame moves 7.5 px per judged pair.
Below 8 fps nothing is dropped, so a 4 fps clip's pairs are 1/4 s apart, not 1/8 s: VBench judges them
against the same threshold. Param `low_fps_scaling: true` (not VBench's; an older vdeval rule, version 2)
multiplies the threshold by max(1, 8 / fps) so a slow-rate clip's larger per-pair steps count as what
they would be at 8 fps; its numbers are not VBench's dynamic degree.
Value: 1.0 when frozen, 0.0 when dynamic (lower is better; a generator's mean is the fraction of
frozen clips). extras: motion_score (mean over pairs of the per-pair score, pixels), threshold,
count, frozen_fraction (the fraction of pairs at or under the threshold) and longest_frozen_s (the
longest run of such pairs, in seconds). curve: per-pair motion scores. The same two numbers are
first-class metrics of their own, `frozen_share` and `frozen_seconds` (metrics/frozen_share.py),
on the same features: this metric is VBench's clip-level dynamic-degree protocol, by name.

The VBench rule calls a clip dynamic when a quarter of its pairs move, so a clip that moves for
its first half and then stops is "dynamic" by design: the flag catches whole-clip freezes (world
`freeze` at severity 1) but not a frozen second half (severity 0.5). frozen_fraction catches those;
the audit scores it beside the flag (see `audit_extras`).

DIS threshold: scale 2.0, i.e. 0.25 px at 32 px and 0.5 px at 64 px. Calibrated with
benchmarks/calibrate_dis_threshold.py (30 clips per group; 32, 48, 64 px x 8 frames and 32 px x 16),
per-pair scores in pixels at 256 px:
  truly static clips (all objects still, no pan): every pair scores exactly 0 (identical frames);
  moving objects: 5th percentile 4.4-6.2; one small slow object: 5th percentile 2.4-4.4, min 0.5;
  camera pan only: 5th percentile 8.0.
At scale 2.0 every static clip is frozen and every moving clip dynamic in every group; scale 3.0
already calls 7% of one-small-slow-object clips frozen (64 px, and 32 px x 16 frames).
Known limit: a static scene with independent per-frame pixel noise is NOT reliably frozen under
DIS. On 32-64 px clips DIS hallucinates coherent flow of up to ~2 px in flat noisy regions (pair
scores: median 1.2-3.0, 90th percentile 10-16 for noise sigma 2-5 on 0-255), so at scale 2.0 only
37-60% (sigma 2) and 23-43% (sigma 5) of noisy static clips are called frozen; no threshold fixes
this without losing slow real motion (scale 10: 77-83% frozen, but 23-57% of slow clips too). Pre-blurring
and masking forward-backward-inconsistent flow were measured and did not help. Exact freezes
(repeated frames, the world's `freeze`) score 0 and are always caught.
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval.errors import SuiteError
from vdeval.features import ClipFeatures, FeatureRequest, input_fps, widen_half
from vdeval.metrics.base import ClipScore, Metric

# scale of the threshold (pixels at 256 px) per flow backbone: VBench's for RAFT, ours for DIS.
# A backbone without one needs `threshold_scale` given: another flow's magnitudes differ.
THRESHOLD_SCALE = {"raft": 6.0, "raft_vbench": 6.0, "dis": 2.0}
TOP_FRACTION = 0.05


def motion_scores(flow: np.ndarray, top_fraction: float = TOP_FRACTION) -> np.ndarray:
    """(T-1,) mean of the top `top_fraction` flow magnitudes per pair, for flow (T-1, H, W, 2).

    NaN flow vectors are ignored; a pair with no finite vector scores NaN. A pair at a time in
    float64, so a long clip's flow is never copied whole."""
    flow = np.asarray(flow)
    if flow.ndim != 4 or flow.shape[0] == 0:
        return np.zeros((0,), np.float64)
    out = np.full(flow.shape[0], np.nan)
    for i in range(flow.shape[0]):
        f = widen_half(flow[i]).astype(np.float64)  # exact from float16 or float32
        m = np.sqrt(f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]).ravel()
        m = m[np.isfinite(m)]
        if m.size:
            k = max(1, int(m.size * top_fraction))
            out[i] = np.partition(m, m.size - k)[m.size - k:].mean()
    return out


def dynamic_rule(height: int, width: int, frames: int, scale: float, fps: float = 8.0,
                 low_fps_scaling: bool = False) -> tuple[float, int]:
    """(threshold in pixels, number of pairs that must exceed it) for `frames` kept frames of
    height x width: VBench's resolution scaling (DynamicDegree.set_params), which has no frame-rate
    factor; `low_fps_scaling` (not VBench's) multiplies the threshold by max(1, 8 / fps)."""
    factor = max(1.0, 8.0 / fps) if low_fps_scaling else 1.0
    return factor * scale * min(height, width) / 256.0, max(1, round(4 * frames / 16))


def frozen_runs(scores: np.ndarray, threshold: float) -> tuple[float, int]:
    """(share of pairs at or under `threshold`, longest run of such consecutive pairs); NaN
    scores count as frozen (no finite motion)."""
    frozen = ~(np.nan_to_num(np.asarray(scores, np.float64), nan=0.0) > threshold)
    if frozen.size == 0:
        return float("nan"), 0
    longest = run = 0
    for f in frozen:
        run = run + 1 if f else 0
        longest = max(longest, run)
    return float(frozen.mean()), longest


def is_dynamic(scores: np.ndarray, threshold: float, count: int) -> bool:
    return int(np.sum(np.nan_to_num(scores, nan=0.0) > threshold)) >= count


class FrozenMotionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold_scale: float | None = None  # None: the calibrated scale of the backbone
    top_fraction: float = TOP_FRACTION
    sample_fps: float | None = Field(8.0, gt=0)  # VBench samples frames to ~8 fps; None: every frame
    low_fps_scaling: bool = False  # not VBench's: threshold x max(1, 8 / fps) below 8 fps


class FrozenMotion(Metric[FrozenMotionParams]):
    name = "frozen_motion"
    version = "3"  # 2: frame sampling to 8 fps; 3: VBench's threshold (frame-rate factor only on request)
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "frozen motion"
    audit_extras = {"frozen_fraction": False}  # extra -> higher_is_better, also scored by `vdeval audit`

    Params = FrozenMotionParams

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        if self.params.threshold_scale is None and self.backbone not in THRESHOLD_SCALE:
            raise SuiteError(f"frozen_motion has no calibrated threshold for backbone {self.backbone!r} "
                             f"(calibrated: {', '.join(THRESHOLD_SCALE)})",
                             "give one in pixels at 256 px, e.g. params: {threshold_scale: 2.0}")

    def _options(self) -> tuple:
        fps = self.params.sample_fps
        return (("fps", float(fps)),) if fps else ()

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("flow", self.backbone, self._options(), directions=("forward",))]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        flow = clip.get("flow", self.backbone, self._options())
        forward = flow["forward"]
        scores = motion_scores(forward, self.params.top_fraction)
        if not np.isfinite(scores).any():
            return ClipScore(float("nan"), curve=[float(x) for x in scores], note="flow is NaN for every pair")
        scale = self.params.threshold_scale
        if scale is None:
            scale = THRESHOLD_SCALE[self.backbone]
        fps = float(flow["source_fps"][0]) if "source_fps" in flow else 8.0
        thr, count = dynamic_rule(forward.shape[1], forward.shape[2], forward.shape[0] + 1, scale, fps,
                                  self.params.low_fps_scaling)
        frozen = not is_dynamic(scores, thr, count)
        extras = {"motion_score": float(np.nanmean(scores)), "threshold": thr, "count": float(count),
                  "frozen_fraction": float(np.mean(~(np.nan_to_num(scores, nan=0.0) > thr))),
                  "longest_frozen_s": frozen_runs(scores, thr)[1] / input_fps(flow).get("fps", fps),
                  "sampled_frames": float(forward.shape[0] + 1), **input_fps(flow)}
        return ClipScore(1.0 if frozen else 0.0, curve=[float(s) for s in scores], extras=extras)
