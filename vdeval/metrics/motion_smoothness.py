"""Motion smoothness (VBench's motion_smoothness): can the odd frames be rebuilt from the even ones?

Failure mode: jerky motion (stutter: dropped, held or doubled frames, uneven speed).
VBench's definition, kept exactly: from frames f_0..f_{T-1} keep the even ones, interpolate the
midpoint of each consecutive even pair (f_2i, f_2i+2), round it to uint8, and compare it with the
real odd frame f_2i+1: d_i = mean |f_2i+1 - interp_i| over pixels and channels on 0-255, for
i < ceil(T / 2) - 1 (an even-length clip's last odd frame has no right neighbour, as in
VBench); value = (255 - mean_i d_i) / 255 in [0, 1], higher is better; curve = d_i.

Interpolators (param `interpolator`, set by the backbone, recorded in results):
  `amt-s` with backbone `amt`: VBench's interpolator, AMT-S with its released weights and VBench's
    protocol (vdeval/backbones/amt.py); the midpoints come as the `midframes_even` feature, so
    d_i is VBench's number for these frames. Frames must be over 112 px per side (AMT's limit).
  `world-midpoint-net` with `world_interpolator_32` (the default on world clips) or `world_interpolator`: a small learned
    interpolator trained on clean world clips (vdeval/backbones/world_interpolator.py), the part
    AMT-S plays for natural video; also through `midframes_even`. It catches stutter in the audit
    at AUROC 0.93 (DIS below: 0.78). A shapes-world backbone: on any other footage the metric's
    default is `dis` (natural_backbone).
    `world_interpolator_32` (the default since issue 23) runs the same network on frames shrunk
    to its training size (short side at most 32): on world clips over 32 px it keeps their motion
    within the network's +-4 px reach (grid stutter worst cell 0.92 vs 0.58 at full size, README);
    on clips of 32 px and under it equals `world_interpolator`.
  `flow-splat-midpoint` with `dis` (the default on other footage, offline) or `raft`: no new
weights; it reads the `flow_even` feature (flow between consecutive even frames, from DIS or
RAFT: the odd frames are never seen). Each pixel y of f_2i is splatted to round(y + F(y) / 2)
and each pixel z of f_2i+2 to round(z + B(z) / 2) (F, B the forward and backward even flows).
Per target pixel: if any candidate is trusted (its flow lands on a colour within 24 of its own on
every channel), only trusted ones compete; among them the nearer layer wins (a candidate's layer
score is |its flow - the median flow of its frame|: moving objects over the background), and the
candidates within 0.5 px of the highest score are averaged; a pixel nothing lands on takes
(f_2i + f_2i+2) / 2. With the world's exact flow this rebuilds every odd frame exactly wherever
its content is seen in an even neighbour (objects inside the frame and apart, no diagonal pan:
tests/metrics/test_motion_smoothness.py), so the value is 1. The audit's limit is the flow: DIS misses
the 4-6 px moves of small fast objects between even frames of 32 px clips (end-point error
about 5.7 px on them), so with DIS stutter is caught at AUROC 0.74, against 0.96 with exact flow
(README). Why DIS loses it: between even frames of 32 px clips small fast objects move 4-6 px,
and DIS returns near-zero flow on them over textured backgrounds (its coarse-to-fine pyramid loses
a 7 px object), so the interpolated object lands at both neighbours' places on clean clips too.
No DIS setting tried reached 0.8 (presets, min_side 32-256, finest scale 0, patch 8-16, stride 2-4,
with or without variational refinement: AUROC 0.60-0.79), nor did re-matching the pixels whose flow
lands on another colour (block search within 6 px: 0.75-0.77, and it broke exactness under exact
flow), adaptive-support matching (0.65), or re-matching pixels whose same-colour 5x5 support does
not land on its colour, kept only where both directions agree (0.77; it finds the true vector for
most pixels of a missed object, not all, and stays exact on 24 of 25 test clips). Numbers from this interpolator are not VBench's
numbers (AMT-S differs); the params record `interpolator` and results the flow backbone.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric


def _splat(frame: np.ndarray, other: np.ndarray, flow: np.ndarray):
    """Targets (flat indices), layer scores, match flags and colours of every pixel of `frame` moved by
    flow / 2; off-frame targets dropped. A pixel matches when its colour and that of `other` at
    round(y + flow) differ by at most MATCH on every channel (brightness constancy)."""
    H, W = frame.shape[:2]
    ys, xs = np.mgrid[0:H, 0:W]
    f = np.nan_to_num(np.asarray(flow, np.float64))
    tx = np.round(xs + f[..., 0] / 2).astype(np.int64)
    ty = np.round(ys + f[..., 1] / 2).astype(np.int64)
    ex = np.clip(np.round(xs + f[..., 0]).astype(np.int64), 0, W - 1)
    ey = np.clip(np.round(ys + f[..., 1]).astype(np.int64), 0, H - 1)
    match = (np.abs(frame.astype(np.int64) - other[ey, ex].astype(np.int64)) <= MATCH).all(-1)
    med = np.median(f.reshape(-1, 2), axis=0)
    layer = np.hypot(*(f - med).transpose(2, 0, 1))
    ok = (tx >= 0) & (tx < W) & (ty >= 0) & (ty < H)
    return (ty * W + tx)[ok], layer[ok], match[ok], frame.reshape(H, W, -1)[ok].astype(np.float64)


MATCH = 24  # 0-255: a splatted pixel is trusted when its flow lands on the same colour


def midpoint(a: np.ndarray, b: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """The frame halfway between frames a and b (H, W, 3), by flow splatting (see module docstring); float."""
    H, W, C = a.shape
    tgt, layer, match, col = (np.concatenate(x) for x in zip(_splat(a, b, forward), _splat(b, a, backward)))
    # per target: trusted (matching) candidates when there are any, then the nearest layer among them
    has_match = np.zeros(H * W, bool)
    has_match[tgt[match]] = True
    usable = match | ~has_match[tgt]
    tgt, layer, col = tgt[usable], layer[usable], col[usable]
    top = np.full(H * W, -np.inf)
    np.maximum.at(top, tgt, layer)
    keep = layer >= top[tgt] - 0.5
    sums = np.zeros((H * W, C))
    counts = np.zeros(H * W)
    np.add.at(sums, tgt[keep], col[keep])
    np.add.at(counts, tgt[keep], 1.0)
    blend = (a.astype(np.float64) + b.astype(np.float64)).reshape(H * W, C) / 2
    out = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], blend)
    return out.reshape(H, W, C)


def reconstruction_errors(frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """d_i = mean |f_2i+1 - uint8(midpoint(f_2i, f_2i+2))| on 0-255 for every odd frame with two even neighbours."""
    even = frames[::2]
    n = len(even) - 1
    if forward.shape[0] != n or backward.shape[0] != n:
        raise ValueError(f"flow_even has {forward.shape[0]}/{backward.shape[0]} pairs for {len(even)} even frames")
    out = np.empty(max(n, 0))
    for i in range(n):
        mid = np.clip(np.round(midpoint(even[i], even[i + 1], forward[i], backward[i])), 0, 255)
        out[i] = np.abs(frames[2 * i + 1].astype(np.float64) - mid).mean()
    return out


def errors_from_midframes(frames: np.ndarray, mids: np.ndarray) -> np.ndarray:
    """d_i = mean |f_2i+1 - mids_i| on 0-255, for interpolated uint8 midpoints of even pairs (amt)."""
    n = len(frames[::2]) - 1
    if mids.shape[0] != n or mids.shape[1:] != frames.shape[1:]:
        raise ValueError(f"midframes_even has shape {mids.shape} for {len(frames)} frames of {frames.shape[1:]}")
    return np.array([np.abs(frames[2 * i + 1].astype(np.float64) - mids[i]).mean() for i in range(n)])


def vbench_score(errors: np.ndarray) -> float:
    """VBench's (255 - mean d) / 255."""
    return float((255.0 - np.mean(errors)) / 255.0)


FLOW_SPLAT = "flow-splat-midpoint"
INTERPOLATORS = {"dis": FLOW_SPLAT, "raft": FLOW_SPLAT, "amt": "amt-s", "world_interpolator": "world-midpoint-net",
                 "world_interpolator_32": "world-midpoint-net"}
LEARNED = tuple(b for b, i in INTERPOLATORS.items() if i != FLOW_SPLAT)  # backbones that give the midpoints themselves


class MotionSmoothnessParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # None: the backbone's (amt -> amt-s, world_interpolator -> world-midpoint-net, a flow backbone -> flow-splat-midpoint)
    interpolator: Literal["flow-splat-midpoint", "amt-s", "world-midpoint-net"] | None = None


class MotionSmoothness(Metric[MotionSmoothnessParams]):
    name = "motion_smoothness"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 3
    # on world clips only (other footage gets natural_backbone); the network at its training size:
    # the full-size `world_interpolator` misses held frames on 128 px world clips (grid AUROC 0.58)
    default_backbone = "world_interpolator_32"
    natural_backbone = "dis"
    allowed_backbones = ("world_interpolator", "world_interpolator_32", "dis", "raft", "amt")
    failure_mode = "jerky motion (stutter, dropped or held frames)"
    Params = MotionSmoothnessParams

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        own = INTERPOLATORS.get(self.backbone)
        if self.params.interpolator not in (None, own):
            raise VdevalError(f"motion_smoothness: interpolator {self.params.interpolator!r} does not run on backbone "
                              f"{self.backbone!r}", "leave `interpolator` out: backbone amt gives amt-s, world_interpolator world-midpoint-net, "
                              "dis or raft flow-splat-midpoint")
        self.params = self.Params(interpolator=own)

    def requests(self) -> list[FeatureRequest]:
        # the frames as the backbone decoded them, so they line up with its flow or midpoints
        kind = "midframes_even" if self.backbone in LEARNED else "flow_even"
        return [FeatureRequest(kind, self.backbone), FeatureRequest("frames", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        if self.backbone in LEARNED:
            d = errors_from_midframes(frames, clip.value("midframes_even", self.backbone))
        else:
            flow = clip.get("flow_even", self.backbone)
            d = reconstruction_errors(frames, flow["forward"], flow["backward"])
        return ClipScore(vbench_score(d), [float(x) for x in d], {"mean_abs_error": float(d.mean())})
