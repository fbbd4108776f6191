"""Colourfulness and contrast per frame: the weight-free tier of aesthetic_quality (backbone `colorfulness`).

Protocol (version 2), per RGB uint8 frame on 0-255, as float64, frames decoded at a short side of
at most 512 (area; version 1 read them at source size, an 11 GiB float64 copy of a 240-frame
1080p clip; clips of up to 512 px score as before, larger ones within about 1% of it):
  M = Hasler & Suesstrunk's colourfulness ("Measuring colourfulness in natural images", SPIE 2003):
      rg = R - G, yb = (R + G) / 2 - B, M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)
      (population std and mean over the frame's pixels);
  C = RMS contrast (Peli, 1990): the population std of the BT.601 luma 0.299 R + 0.587 G + 0.114 B;
  frame score = (M + C) / 10.
Both terms are image statistics that aesthetic ratings are known to rise with (Datta et al., ECCV
2006, use colourfulness and contrast among their aesthetic features); their sum is vdeval's choice:
on the world audit each alone separates `color_wash` at severity 0.5 with AUROC 0.88 (M) / 0.90 (C),
the sum at 0.97 (white objects on grey have M = 0, so M alone is blind there). This is not the LAION
predictor and its numbers are not on LAION's 1-10 scale or comparable with VBench's: it measures
washed-out, greyed, low-contrast frames, nothing about composition or content. Exactly: a blend of
a frame with weight w into a flat grey multiplies both M and C by (1 - w).
"""
from __future__ import annotations

import numpy as np

from vdeval.backbones.base import Backbone
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec

LUMA = np.array([0.299, 0.587, 0.114])


def colourfulness(frames: np.ndarray) -> np.ndarray:
    """Hasler & Suesstrunk's M per frame of uint8 (T, H, W, 3), float64 (T,); a frame at a time."""
    out = np.empty(len(frames))
    for i, frame in enumerate(frames):
        f = frame.astype(np.float64)
        rg = f[..., 0] - f[..., 1]
        yb = 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
        out[i] = np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return out


def rms_contrast(frames: np.ndarray) -> np.ndarray:
    """Population std of BT.601 luma per frame of uint8 (T, H, W, 3), float64 (T,); a frame at a time."""
    return np.array([(frame.astype(np.float64) @ LUMA).std() for frame in frames])


class ColorfulnessBackbone(Backbone):
    name = "colorfulness"
    version = "2"
    provides = ("frame_score",)
    tier = "embedded"
    protocol = ("RGB uint8 frames at a short side of at most 512 (area); per frame (Hasler-Suesstrunk colourfulness M + RMS contrast of "
                "BT.601 luma) / 10, float64; weight-free")

    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=512)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a frame at a time: its float64 copy (24 bytes a pixel) and three float64 planes
        return 48 * height * width + frames * 24

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            f = c.frames
            m, con = colourfulness(f), rms_contrast(f)
            out.append({"value": (m + con) / 10.0, "colourfulness": m, "contrast": con})
        return out
