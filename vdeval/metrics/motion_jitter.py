"""Motion jitter: camera shake, measured as the frame-to-frame change of the global motion.

Failure mode: camera shake (noisy motion patterns: the whole view jumps from frame to frame).
Definition: per frame pair t, the global motion g_t is the per-component median of the forward
flow over the frame (robust to moving objects, which cover a minority of pixels). Per clip:
value = mean over t of |g_{t+1} - g_t| (Euclidean), in pixels at a 256 px short side (flow is
scaled by 256 / min(H, W), as VBench scales dynamic degree), lower is better; curve = those
changes. A steady camera, still or panning at constant speed, scores 0; random whole-frame
shifts of amplitude a score about a. Clips with fewer than 3 frames have no second difference:
NaN with a note. Flow from "dis" (default) or "raft".
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest, input_fps, widen_half
from vdeval.metrics.base import ClipScore, Metric, NoParams


def global_motion(flow: np.ndarray) -> np.ndarray:
    """(T-1, 2) per-pair median flow (dx, dy) of forward flow (T-1, H, W, 2); NaN vectors ignored."""
    n = flow.shape[0]
    if n == 0 or flow[0].size == 0:
        return np.zeros((n, 2))
    # a pair at a time: a long clip's flow (float16 from DIS) is never copied whole to float64
    return np.stack([np.nanmedian(np.asarray(widen_half(flow[t]), np.float64).reshape(-1, 2), axis=0) for t in range(n)])


def jitter_curve(flow: np.ndarray) -> np.ndarray:
    """(T-2,) |g_{t+1} - g_t| in pixels of the clip."""
    g = global_motion(flow)
    return np.linalg.norm(np.diff(g, axis=0), axis=1) if len(g) >= 2 else np.zeros((0,))


class MotionJitter(Metric[NoParams]):
    name = "motion_jitter"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 3
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "camera shake"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("flow", self.backbone, directions=("forward",))]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        arrays = clip.get("flow", self.backbone)
        flow = arrays["forward"]
        scale = 256.0 / min(flow.shape[1], flow.shape[2])
        curve = jitter_curve(flow) * scale
        value = float(np.nanmean(curve)) if np.isfinite(curve).any() else float("nan")
        return ClipScore(value, curve=curve.tolist(), extras=input_fps(arrays))  # per pair at this frame rate
