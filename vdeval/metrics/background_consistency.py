"""Background consistency: does the scene behind the subject stay the same scene?

Failure modes: the background changing or swimming (scene cuts, texture swimming, flicker).

BackgroundConsistency is VBench's background_consistency: per-frame image embeddings e_t (VBench
uses OpenAI's CLIP ViT-B/32 with its clip_transform; any frame-embedding backbone here: `embedded`
by default for offline runs, `clip_vbench` for VBench's protocol and numbers (OpenAI weights,
VBench's transform; suites/vbench.yaml runs it), `clip` (LAION-2B weights, open_clip's transform:
not VBench's numbers), `dino`), and
    value = mean over t >= 1 of (max(0, cos(e_t, e_{t-1})) + max(0, cos(e_t, e_0))) / 2,
in [0, 1], higher is better (the same formula as VBench's subject consistency, which differs only
by its backbone); curve = cos(e_t, e_0). Parity with VBench's loop: tests/metrics/test_background_consistency.py.

WorldBackgroundConsistency is the world-grounded version: the same formula with the embedding
similarity replaced by a pixel one on the background alone. Objects are masked out with the
world's object masks read from the pixels (`world_objects`, equal to the renderer's masks on clean
clips; here every palette-coloured pixel, fragments included), and the camera pan that the caption states is undone (frame t is compared at an offset of
pan x t pixels, the world's camera moving `unit` px per frame), so a clean clip scores exactly 1
whether or not its camera pans. For frames s, t:
    sim(s, t) = 1 - mean |f_s(x) - f_t(x - p (t - s))| / 255 over channels and the pixels x that
                are background in both frames and inside both after the offset;
    value = mean over t >= 1 of (sim(t-1, t) + sim(0, t)) / 2, higher is better.
A pair with no shared background pixel is left out. It needs a world caption (it reads the pan
from it); any other prompt gives NaN with a note. No peer: VBench has only the embedding form.
"""
from __future__ import annotations

import numpy as np

from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams
from vdeval.metrics.identity_drift import cosine_to, subject_consistency
from vdeval.metrics.world_objects import palette_labels
from vdeval.world.scene import DIRECTIONS, SPEEDS, parse_caption


class BackgroundConsistency(Metric[NoParams]):
    name = "background_consistency"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 2
    default_backbone = "embedded"
    allowed_backbones = ("embedded", "clip", "clip_vbench", "dino", "pixels")
    natural_backbone = "clip"  # VBench's; the embedded default is for shapes-world suites
    failure_mode = "background changes over time"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frame_embedding", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        e = clip.value("frame_embedding", self.backbone)
        value = subject_consistency(e)
        note = None if np.isfinite(value) else "frame embeddings contain NaN or zero vectors"
        return ClipScore(value, [float(c) for c in cosine_to(e, e[0])], note=note)


def background_similarity(a: np.ndarray, b: np.ndarray, bg_a: np.ndarray, bg_b: np.ndarray,
                          offset: tuple[int, int]) -> float:
    """1 - mean |a(x) - b(x + offset)| / 255 over x background in both and inside both; NaN if none."""
    H, W = bg_a.shape
    dx, dy = offset
    ys, xs = np.mgrid[0:H, 0:W]
    tx, ty = xs + dx, ys + dy
    inside = (tx >= 0) & (tx < W) & (ty >= 0) & (ty < H)
    tx, ty = np.clip(tx, 0, W - 1), np.clip(ty, 0, H - 1)
    both = inside & bg_a & bg_b[ty, tx]
    if not both.any():
        return float("nan")
    diff = np.abs(a.astype(np.float64)[both] - b.astype(np.float64)[ty[both], tx[both]])
    return float(1.0 - diff.mean() / 255.0)


def world_background_consistency(frames: np.ndarray, pan: str | None) -> tuple[float, list[float]]:
    """(value, curve of sim(0, t)) for uint8 frames (T, H, W, 3) and the caption's pan direction."""
    T, H, W = frames.shape[:3]
    unit = max(1, round(min(H, W) / 32))
    p = np.asarray(DIRECTIONS[pan], np.int64) * SPEEDS["slowly"] * unit if pan else np.zeros(2, np.int64)
    bg = palette_labels(frames) < 0  # every object-coloured pixel, fragments included

    def sim(s, t):
        return background_similarity(frames[s], frames[t], bg[s], bg[t], tuple(int(v) for v in -p * (t - s)))

    curve = [1.0] + [sim(0, t) for t in range(1, T)]
    pairs = [np.nanmean([sim(t - 1, t), curve[t]]) if np.isfinite([sim(t - 1, t), curve[t]]).any() else np.nan
             for t in range(1, T)]
    per_t = np.asarray(pairs, np.float64)
    value = float(per_t[np.isfinite(per_t)].mean()) if np.isfinite(per_t).any() else float("nan")
    return value, curve


class WorldBackgroundConsistency(Metric[NoParams]):
    name = "world_background_consistency"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 2
    default_backbone = "pixels"
    allowed_backbones = ("pixels",)
    failure_mode = "background changes or swims over time (world clips)"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frames", self.backbone)]  # the pixels as decoded, nothing learned

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        try:
            pan = parse_caption(clip.prompt)["pan"]
        except VdevalError as e:
            return ClipScore(float("nan"), note=f"needs a world caption for the camera pan: {e.message}")
        value, curve = world_background_consistency(frames, pan)
        note = None if np.isfinite(value) else "no background pixel is shared by any two frames"
        return ClipScore(value, [float(c) for c in curve], note=note)
