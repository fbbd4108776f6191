"""Motion blur: are moving things smeared along their motion?

Failure mode: motion blur (moving content loses its edges along the direction it moves; fast motion
by itself is not a failure, and isotropic softness is imaging quality, not motion blur).
Definition, per frame pair t (frame t and the forward flow F_t of a flow backbone):
  moving pixels: |F_t(x)| >= min_speed (pixels per frame at clip size); d(x) = F_t(x) / |F_t(x)|;
  on the grey frame g = mean of RGB / 255, sample the profile p_k = g(x + k u), k = -r..r (bilinear,
  r = radius, default 2) along u = d (along the motion) and u = d rotated 90 degrees (across it);
  a profile counts when its range max p - min p exceeds min_contrast; its sharpness is
  max_k |p_{k+1} - p_k| / range: 1 for a hard edge, about 1 / w for an edge spread over w pixels,
  whatever the edge's contrast.
  S_along, S_across = mean sharpness of the counting along- and across-motion profiles, pooled over
  the clip's pairs; value = 1 - S_along / S_across (lower is better).
A sharp clip scores 0 however fast it moves (tests: a hard-edged square at 1 to 6 px/frame scores
exactly 0); isotropic blur softens both directions alike and scores about 0; a smear along the motion
scores up to 1 (it grows with the smear length). NaN with a note when nothing moves or nothing moving
has contrast (a still clip has no motion to blur). curve: the per-pair value; extras: along, across
(the two sharpness means) and moving_fraction (share of pixels over min_speed).
No peer computes this: VBench has no motion-blur dimension and EvalCrafter none either; it is checked
against the world's `motion_blur` corruption (the audit) and known answers (tests/metrics/test_motion_blur.py).
"""
from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval.features import ClipFeatures, FeatureRequest, widen_half
from vdeval.metrics.base import ClipScore, Metric


def profile_sharpness(gray: np.ndarray, ys: np.ndarray, xs: np.ndarray, direction: np.ndarray, radius: int,
                      min_contrast: float) -> np.ndarray:
    """Sharpness (max adjacent step / range) of the profiles through (ys, xs) along `direction` (N, 2)
    as (dx, dy) unit vectors; only profiles whose range exceeds min_contrast are returned."""
    from scipy.ndimage import map_coordinates

    k = np.arange(-radius, radius + 1, dtype=np.float64)
    py = ys[:, None] + k[None] * direction[:, 1:2]
    px = xs[:, None] + k[None] * direction[:, 0:1]
    prof = map_coordinates(gray, [py.ravel(), px.ravel()], order=1, mode="nearest").reshape(py.shape)
    rng = prof.max(1) - prof.min(1)
    ok = rng > min_contrast
    return np.abs(np.diff(prof[ok], axis=1)).max(1) / rng[ok]


def pair_sharpness(gray: np.ndarray, flow: np.ndarray, min_speed: float, radius: int, min_contrast: float):
    """(along, across, number of moving pixels) for one frame (H, W) and its forward flow (H, W, 2)."""
    mag = np.hypot(flow[..., 0], flow[..., 1])
    ys, xs = np.nonzero(np.isfinite(mag) & (mag >= min_speed))
    if ys.size == 0:
        return np.zeros(0), np.zeros(0), 0
    d = flow[ys, xs].astype(np.float64) / mag[ys, xs, None]
    across = np.stack([-d[:, 1], d[:, 0]], axis=1)
    ysf, xsf = ys.astype(np.float64), xs.astype(np.float64)
    return (profile_sharpness(gray, ysf, xsf, d, radius, min_contrast),
            profile_sharpness(gray, ysf, xsf, across, radius, min_contrast), int(ys.size))


def motion_blur_score(frames: np.ndarray, flow: np.ndarray, min_speed: float = 0.5, radius: int = 2,
                      min_contrast: float = 0.1) -> tuple[float, list[float], dict, str | None]:
    """(value, per-pair curve, extras, note) for uint8 frames (T, H, W, 3) and forward flow (T-1, H, W, 2)."""
    # sums and counts, not every profile's sharpness: a long clip's moving pixels would be
    # hundreds of MB of float64
    sums = np.zeros(2)
    counts = np.zeros(2, np.int64)
    curve, moving = [], 0
    pairs = min(len(flow), len(frames) - 1)
    for t in range(pairs):  # a frame at a time: a clip-sized float64 copy is 8x the frames
        gray = np.asarray(frames[t], np.float64).mean(-1) / 255.0
        a, c, n = pair_sharpness(gray, widen_half(flow[t]), min_speed, radius, min_contrast)
        sums += (a.sum(), c.sum())
        counts += (a.size, c.size)
        moving += n
        curve.append(1.0 - a.mean() / c.mean() if a.size and c.size and c.mean() > 0 else float("nan"))
    frac = moving / max(1, pairs * frames.shape[1] * frames.shape[2])
    if moving == 0:
        return float("nan"), curve, {"moving_fraction": 0.0}, "nothing moves: no motion to blur"
    if counts.min() == 0 or sums[1] == 0:
        return float("nan"), curve, {"moving_fraction": frac}, "moving pixels have no contrast in one direction"
    along, across = sums / counts
    extras = {"along": float(along), "across": float(across), "moving_fraction": frac}
    return float(1.0 - along / across), curve, extras, None


class MotionBlurParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_speed: float = Field(0.5, gt=0)  # pixels per frame at clip size
    radius: int = Field(2, ge=1)
    min_contrast: float = Field(0.1, gt=0, lt=1)


class MotionBlur(Metric[MotionBlurParams]):
    name = "motion_blur"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "motion blur"
    audit_corruption = "motion_blur"

    Params = MotionBlurParams

    def requests(self) -> list[FeatureRequest]:
        # the frames as the flow backbone saw them: on real footage both are at its working size
        return [FeatureRequest("flow", self.backbone, directions=("forward",)), FeatureRequest("frames", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        flow = clip.get("flow", self.backbone)["forward"]
        p = self.params
        value, curve, extras, note = motion_blur_score(frames, flow, p.min_speed, p.radius, p.min_contrast)
        return ClipScore(value, [float(x) for x in curve], extras, note)
