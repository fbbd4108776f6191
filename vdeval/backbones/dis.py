"""DIS optical flow (Kroeger et al., ECCV 2016) from OpenCV: the weight-free, offline flow backbone.

Protocol (version 2): each frame goes RGB -> grayscale uint8 (cv2.COLOR_RGB2GRAY, BT.601 weights);
when the smaller side is under `min_side` (default 128) both frames of a pair are upscaled by the
integer factor s = ceil(min_side / min(H, W)) with bicubic interpolation, DIS runs with the
MEDIUM preset, and the flow is brought back to the clip's size by s x s block averaging
(cv2.INTER_AREA) and divided by s, so it is in pixels of the clip. Forward flow of pair t is
DIS(frame t, frame t+1); backward flow is DIS(frame t+1, frame t), both computed independently,
and stored as float16 (version 1 stored float32; see FLOW_DTYPE).
Feature kind flow_even is the same computation on frames 0, 2, 4, ... (for frame interpolation).

Why the upscale: DIS's MEDIUM preset uses 12 px patches over a coarse-to-fine pyramid; on 32 px
world clips that leaves a pyramid of one or two levels and patches a third of the frame wide.
Measured on 20 world clips (8 frames, pan_probability 0.3, 140 pairs per resolution), mean
end-point error against the world's exact flow (all pixels / pixels that move):

    32 px, MEDIUM, no upscale   0.372 / 0.803 px       zero-flow guess 0.428 / 1.704 px
    32 px, MEDIUM, x4 (default) 0.381 / 0.603 px
    64 px, MEDIUM, no upscale   0.773 / 1.475 px       zero-flow guess 0.855 / 3.409 px
    64 px, MEDIUM, x2 (default) 0.854 / 1.222 px

(`python benchmarks/calibrate_dis_threshold.py --epe-only` re-measures these.) The all-pixel error is dominated by
plain, textureless backgrounds under a camera pan, where no flow method can see the motion; on
moving surfaces the upscale cuts the error by a quarter at 32 px. DIS is deterministic and sees one
clip at a time, so it is batch-invariant.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError
from vdeval.features import ClipInput, to_float16
from vdeval.video.protocol import InputSpec

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


# Flow is held (and cached) as IEEE float16: half the memory of float32, so a long clip's forward
# and backward flow at 256 px take 0.3 MB per pair instead of 0.6. Rounding moves a vector by at
# most 2^-11 of its length (1/64 px at 32 px of motion), far below DIS's own error (0.4-1.2 px
# end-point error above); metrics compute in float32 / float64 from it. Measured against float32
# flow (tests/backbones/test_flow_precision.py): warping error within 1e-3 relative on natural clips (or
# 1e-8 absolute on world clips whose error is ~0), frozen-motion scores within 1e-3 relative and the
# same frozen / dynamic calls, motion jitter within 1e-3 px, motion blur within 1e-4 (on 0-1).
FLOW_DTYPE = np.float16


def upscale_factor(height: int, width: int, min_side: int) -> int:
    return max(1, math.ceil(min_side / max(1, min(height, width))))


def to_gray(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)


def _prepare(gray: np.ndarray, s: int) -> np.ndarray:
    h, w = gray.shape
    return cv2.resize(gray, (w * s, h * s), interpolation=cv2.INTER_CUBIC) if s > 1 else gray


def _calc(dis, a: np.ndarray, b: np.ndarray, s: int, size: tuple[int, int]) -> np.ndarray:
    flow = dis.calc(a, b, None)
    if s > 1:
        flow = cv2.resize(flow, size, interpolation=cv2.INTER_AREA) / s
    return flow.astype(np.float32, copy=False)


def dis_flow_pair(gray_a: np.ndarray, gray_b: np.ndarray, preset: str = "medium", min_side: int = 128) -> np.ndarray:
    """Flow (H, W, 2) float32 in pixels mapping grayscale uint8 frame a onto frame b."""
    h, w = gray_a.shape
    s = upscale_factor(h, w, min_side)
    dis = cv2.DISOpticalFlow.create(PRESETS[preset])
    return _calc(dis, _prepare(gray_a, s), _prepare(gray_b, s), s, (w, h))


def dis_flow_video(frames: np.ndarray, preset: str = "medium", min_side: int = 128,
                   dtype=np.float32, directions: tuple[str, ...] = ("forward", "backward")) -> dict[str, np.ndarray]:
    """{"forward", "backward"} (those in `directions`): (T-1, H, W, 2) `dtype` (float32 unless asked)
    for uint8 frames (T, H, W, 3).

    Each frame is converted and upscaled once, as its pair comes up, and one DIS instance serves
    the clip (it keeps no flow between calls without an initial flow): the same numbers as
    dis_flow_pair per pair, rounded to `dtype` as each pair is stored."""
    t, h, w = frames.shape[:3]
    s = upscale_factor(h, w, min_side)
    dis = cv2.DISOpticalFlow.create(PRESETS[preset])
    out: dict[str, np.ndarray] = {d: np.zeros((max(t - 1, 0), h, w, 2), dtype) for d in ("forward", "backward") if d in directions}
    store = to_float16 if np.dtype(dtype) == np.float16 else (lambda f: f)  # numpy's own float16 cast is slow
    prev = _prepare(to_gray(frames[0]), s) if t > 1 else None
    for i in range(t - 1):
        assert prev is not None  # set above when the clip has a pair
        nxt = _prepare(to_gray(frames[i + 1]), s)
        if "forward" in out:
            out["forward"][i] = store(_calc(dis, prev, nxt, s, (w, h)))
        if "backward" in out:
            out["backward"][i] = store(_calc(dis, nxt, prev, s, (w, h)))
        prev = nxt
    return out


def _workers() -> int:
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class DISFlow(Backbone):
    name = "dis"
    version = "2"  # 2: flow held as float16 (half the memory; see FLOW_DTYPE)
    flow_itemsize = np.dtype(FLOW_DTYPE).itemsize
    provides = ("flow", "flow_even")
    tier = "embedded"
    protocol = ("RGB uint8 -> grayscale (BT.601); pairs upscaled bicubic by ceil(min_side/min(H,W)) when the "
                "short side < min_side (default 128); OpenCV DIS preset MEDIUM; flow block-averaged back to "
                "clip size and divided by the factor; forward = DIS(t, t+1), backward = DIS(t+1, t); "
                "flow stored as float16")

    input_options = ("fps",)
    # real footage is flowed at a short side of at most 256 px (flow thresholds are per 256 px anyway)
    def input_spec(self, kind: str) -> InputSpec:
        # option fps: frames sampled to about that rate first (VBench's dynamic degree samples to 8)
        fps = self.options.get("fps")
        return InputSpec(max_short_side=int(self.options.get("max_short_side", 256)), fps=float(fps) if fps else None)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # the float16 forward and backward flow it returns, and per pair two upscaled grey frames,
        # DIS's own pyramids and two float32 flows at the upscaled size (one clip, one thread)
        pairs = max(frames - 1, 0) if kind == "flow" else max((frames + 1) // 2 - 1, 0)
        s = upscale_factor(height, width, int(self.options.get("min_side", 128)))
        return pairs * height * width * 4 * self.flow_itemsize + 48 * height * width * s * s

    def __init__(self, device: str = "cpu", **options):
        preset = options.get("preset", "medium")
        if preset not in PRESETS:
            raise FeatureError(f"unknown DIS preset {preset!r}", f"one of {', '.join(PRESETS)}")
        min_side = int(options.get("min_side", 128))
        if min_side < 1:
            raise FeatureError(f"DIS min_side must be positive, got {min_side}")
        super().__init__(device, **options)
        self.preset, self.min_side = preset, min_side

    flow_directions = True

    def compute(self, kind: str, clips: list[ClipInput],
                directions: tuple[str, ...] = ("forward", "backward")) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        step = 2 if kind == "flow_even" else 1

        def one(c):  # only the directions asked: forward-only flow is half the DIS calls
            return dis_flow_video(c.frames[::step], self.preset, self.min_side, FLOW_DTYPE, directions)

        if len(clips) < 2:
            return [one(c) for c in clips]
        # clips on worker threads: OpenCV releases the GIL in DIS, and each clip is independent
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(clips), _workers())) as pool:
            return list(pool.map(one, clips))
