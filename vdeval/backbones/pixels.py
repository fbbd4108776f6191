"""Pixel statistics as frame embeddings: the cheapest, weight-free baseline.

Protocol (version 1): each RGB uint8 frame is binned into a joint colour histogram with `bins`
(default 16) equal-width bins per channel (bins**3 dimensions), normalised to sum 1, and the
embedding is its element-wise square root. Embeddings then have unit L2 norm and the cosine of two
embeddings is the Bhattacharyya coefficient of the two colour distributions (1 = same colours).
16 bins (4096 dimensions) rather than 8: world backgrounds are two grey levels in 25-160, and
8 bins often put two different clips' greys in the same bin (scene cuts went unseen).
Histograms ignore where colours are, so they change little under motion and a lot at a scene cut.
"""
from __future__ import annotations

import numpy as np

from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec


def colour_histogram_embedding(frames: np.ndarray, bins: int = 16) -> np.ndarray:
    """(T, bins**3) float32 sqrt-normalised joint RGB histograms of uint8 frames (T, H, W, 3).

    A frame at a time, through per-channel tables of (value * bins) // 256 already scaled to its
    place in the joint index, so no clip-sized integer copy is ever made."""
    q = (np.arange(256, dtype=np.intp) * bins) // 256  # bin index per channel value, 0..bins-1
    luts = (q * bins * bins, q * bins, q)
    t = frames.shape[0]
    hist = np.zeros((t, bins ** 3), np.float64)
    for i in range(t):
        f = frames[i]
        idx = luts[0][f[..., 0]]
        idx += luts[1][f[..., 1]]
        idx += luts[2][f[..., 2]]
        hist[i] = np.bincount(idx.ravel(), minlength=bins ** 3)
    hist /= hist.sum(axis=1, keepdims=True)
    return np.sqrt(hist).astype(np.float32)


class PixelBackbone(Backbone):
    name = "pixels"
    version = "1"
    provides = ("frame_embedding",)
    tier = "embedded"
    protocol = "RGB uint8 joint histogram, `bins` (default 16) equal bins per channel, sum-normalised, square root"

    # colour histograms barely depend on size: frames decoded at a short side of at most 256
    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=256)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a frame at a time: one intp index plane (8 bytes a pixel) and the float64 histograms
        return 8 * height * width + frames * self.bins ** 3 * 12

    def __init__(self, device: str = "cpu", **options):
        bins = int(options.get("bins", 16))
        if not 2 <= bins <= 32:
            raise FeatureError(f"pixels backbone: bins must be in [2, 32], got {bins}")
        super().__init__(device, **options)
        self.bins = bins

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        return [{"value": colour_histogram_embedding(c.frames, self.bins)} for c in clips]
