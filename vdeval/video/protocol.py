"""Which frames, at which size: the input a backbone (or an ingestion option) asks a clip for.

An `InputSpec` is applied at decode time, so a clip is never held at source size longer than one
frame: the decoder keeps only the selected frames and resizes each as it comes out. The same spec
applied to an in-memory video gives the same frames (indices) and the same size.

Frame selection, in this order:
  1. fps: keep every round(source_fps / fps)-th frame (at least every frame), VBench's rule;
  2. stride: keep every stride-th of those;
  3. frames + window: keep `frames` consecutive ones from the first, the centre, or a random
     start drawn from `seed` (StyleGAN-V takes a random window of each real video); a clip with
     fewer frames keeps all it has.
Size: `short_side` resizes so the smaller side equals it (up or down, aspect kept);
`max_short_side` only ever shrinks, to that smaller side. Widths and heights are rounded to
whole pixels (at least 1). Resizing is by area averaging when shrinking and bilinear when growing.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

Window = Literal["first", "centre", "random"]


@dataclass(frozen=True)
class InputSpec:
    short_side: int | None = None
    max_short_side: int | None = None
    frames: int | None = None
    window: Window = "first"
    stride: int = 1
    fps: float | None = None
    seed: int = 0

    def __post_init__(self):
        for name in ("short_side", "max_short_side", "frames"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"InputSpec.{name} must be at least 1, got {v}")
        if self.stride < 1:
            raise ValueError(f"InputSpec.stride must be at least 1, got {self.stride}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"InputSpec.fps must be positive, got {self.fps}")
        if self.window not in ("first", "centre", "random"):
            raise ValueError(f"InputSpec.window must be first, centre or random, got {self.window!r}")

    def key(self) -> str:
        """A stable hash of the spec: part of the cache key of anything decoded with it."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def describe(self) -> str:
        parts = []
        if self.short_side:
            parts.append(f"short side {self.short_side}")
        if self.max_short_side:
            parts.append(f"short side at most {self.max_short_side}")
        if self.fps:
            parts.append(f"sampled to ~{self.fps:g} fps")
        if self.stride > 1:
            parts.append(f"every {self.stride}th frame")
        if self.frames:
            parts.append(f"{self.frames} frames ({self.window} window)")
        return ", ".join(parts) or "as stored"


FULL = InputSpec()


def fps_interval(source_fps: float, target_fps: float | None) -> int:
    """VBench: keep every round(fps / 8)-th frame, at least every frame."""
    if not target_fps:
        return 1
    return max(1, int(round(source_fps / target_fps)))


def select_indices(spec: InputSpec, n_frames: int, fps: float) -> tuple[np.ndarray, float]:
    """(indices into the n_frames source frames, fps of the selected frames)."""
    step = fps_interval(fps, spec.fps) * spec.stride
    idx = np.arange(0, n_frames, step)
    if spec.frames is not None and len(idx) > spec.frames:
        spare = len(idx) - spec.frames
        if spec.window == "first":
            start = 0
        elif spec.window == "centre":
            start = spare // 2
        else:
            start = int(np.random.default_rng(spec.seed).integers(0, spare + 1))
        idx = idx[start:start + spec.frames]
    return idx, fps / step


def output_size(spec: InputSpec, height: int, width: int) -> tuple[int, int]:
    """(height, width) after the spec's resize."""
    short = min(height, width)
    target = spec.short_side
    if target is None and spec.max_short_side is not None and short > spec.max_short_side:
        target = spec.max_short_side
    if target is None or target == short:
        return height, width
    scale = target / short
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def is_identity(spec: InputSpec, n_frames: int, fps: float, height: int, width: int) -> bool:
    idx, _ = select_indices(spec, n_frames, fps)
    return len(idx) == n_frames and output_size(spec, height, width) == (height, width)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3) to (T, height, width, 3): area averaging when shrinking, bilinear otherwise."""
    import cv2

    t, h, w = frames.shape[:3]
    if (h, w) == (height, width):
        return frames
    interp = cv2.INTER_AREA if height <= h and width <= w else cv2.INTER_LINEAR
    out = np.empty((t, height, width, 3), np.uint8)
    for i in range(t):
        out[i] = cv2.resize(frames[i], (width, height), interpolation=interp)
    return out
