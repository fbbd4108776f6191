import numpy as np
import pytest

from vdeval.audit import swap_caption
from vdeval.backbones.embedded import WEIGHTS_DIR, WEIGHTS_FILE
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.base import ClipScore
from vdeval.metrics.prompt_alignment import ClipScoreMetric, PromptDrift, VideoTextAlignment, clipscore_x100, drift
from vdeval.video import Video
from vdeval.world import WorldSpec, parse_caption, sample_clip

has_embedded = pytest.mark.skipif(not (WEIGHTS_DIR / WEIGHTS_FILE).is_file(),
                                  reason=f"embedded weights not found at {WEIGHTS_DIR / WEIGHTS_FILE}")


def _clip(frames_emb, text_emb, prompt="a small red circle staying still on a plain background", video_emb=None):
    cf = ClipFeatures("c", Video(np.zeros((len(frames_emb), 4, 4, 3), np.uint8)), prompt)
    cf.features[("frame_embedding", "embedded")] = {"value": np.asarray(frames_emb, np.float32)}
    cf.features[("text_embedding", "embedded")] = {"value": np.asarray(text_emb, np.float32)}
    if video_emb is not None:
        cf.features[("video_embedding", "embedded")] = {"value": np.asarray(video_emb, np.float32)}
    return cf


def test_clip_score_scale_conventions():
    t = np.array([1.0, 0.0])
    f = np.array([[1, 0], [0, 1], [-1, 0]], np.float64)  # cos 1, 0, -1
    s = ClipScoreMetric().score_clip(_clip(f, t))
    assert isinstance(s, ClipScore)
    assert s.value == pytest.approx(0.0) and s.curve == pytest.approx([1, 0, -1])
    assert s.extras["clipscore"] == pytest.approx(0.0)  # max(mean(100 cos), 0) = max(0, 0)
    assert clipscore_x100([0.3]) == pytest.approx(30.0)


def test_clipscore_matches_torchmetrics_compute():
    """torchmetrics' CLIPScore sums 100 * cos over samples in update and returns
    max(sum / n, 0) in compute: the clamp applies to the mean, not to each sample."""
    import torch

    cos = np.array([0.5, -0.2, 0.1, -0.05])
    score_sum, n = torch.tensor(0.0, dtype=torch.float64), 0
    for c in cos:  # update(): score += 100 * cos, n_samples += 1
        score_sum += 100 * torch.tensor(c, dtype=torch.float64)
        n += 1
    expected = float(torch.max(score_sum / n, torch.zeros_like(score_sum)))  # compute()
    assert clipscore_x100(cos) == pytest.approx(expected) == pytest.approx(8.75)
    assert clipscore_x100(cos) != pytest.approx(np.mean(np.maximum(100 * cos, 0)))  # the old per-frame clamp: 15.0
    assert clipscore_x100([-0.3, -0.1]) == 0.0


def test_video_text_alignment():
    s = VideoTextAlignment().score_clip(_clip(np.ones((2, 2)), [0.0, 2.0], video_emb=[1.0, 1.0]))
    assert s.value == pytest.approx(np.sqrt(0.5))


def test_prompt_drift_catches_wandering_off():
    t = np.array([1.0, 0.0])
    angles = np.linspace(0, np.pi / 2, 6)  # alignment falls from 1 to 0
    f = np.stack([np.cos(angles), np.sin(angles)], 1)
    s = PromptDrift().score_clip(_clip(f, t))
    assert s.value == pytest.approx(-(s.extras["slope"]) * 5) and s.value > 0.8
    assert s.extras["half_drop"] > 0.5
    steady = PromptDrift().score_clip(_clip(np.tile([[1.0, 0.2]], (6, 1)), t))
    assert steady.value == pytest.approx(0.0, abs=1e-9)
    drop, half, sl = drift(np.array([1.0, 0.0]))
    assert drop == pytest.approx(1.0) and half == pytest.approx(1.0) and sl == pytest.approx(-1.0)


def test_empty_prompt_and_one_frame():
    for m in (ClipScoreMetric(), PromptDrift()):
        s = m.score_clip(_clip(np.ones((3, 2)), [1.0, 0.0], prompt="   "))
        assert np.isnan(s.value) and "empty prompt" in s.note
    s = VideoTextAlignment().score_clip(_clip(np.ones((3, 2)), [1.0, 0.0], prompt="", video_emb=[1.0, 0.0]))
    assert np.isnan(s.value) and s.note
    one = PromptDrift().score_clip(_clip(np.ones((1, 2)), [1.0, 0.0]))
    assert np.isnan(one.value) and one.note
    assert np.isfinite(ClipScoreMetric().score_clip(_clip(np.ones((1, 2)), [1.0, 0.0])).value)


def test_nan_embeddings_give_nan_not_crash():
    f = np.ones((3, 2))
    f[0] = np.nan
    s = ClipScoreMetric().score_clip(_clip(f, [1.0, 0.0]))
    assert np.isnan(s.value)


def test_swap_caption_changes_attributes_in_order():
    cap = "a small red circle moving left slowly on a striped background"
    assert swap_caption(cap, 0.0, 1) == cap
    p0 = parse_caption(cap)
    for sev, n in ((0.2, 1), (0.5, 2), (1.0, 5)):
        p = parse_caption(swap_caption(cap, sev, 1))
        o, o0 = p["objects"][0], p0["objects"][0]
        changed = [o["color"] != o0["color"], o["shape"] != o0["shape"], p["background"] != p0["background"],
                   o["motion"] != o0["motion"], o["size"] != o0["size"]]
        assert changed == [True] * n + [False] * (5 - n)
    assert swap_caption(cap, 0.5, 1) == swap_caption(cap, 0.5, 1)


@has_embedded
def test_embedded_prompt_alignment_separates_swapped_captions():
    clips = []
    for s in range(8):
        c = sample_clip(s, WorldSpec())
        clips += [ClipFeatures(f"{s}", c.video, c.caption), ClipFeatures(f"{s}x", c.video, swap_caption(c.caption, 0.5, s))]
    for m in (ClipScoreMetric(), VideoTextAlignment()):
        featurize(clips, m.requests(), BackbonePool())
        v = np.array([m.score_clip(c).value for c in clips])
        assert np.mean(v[0::2] > v[1::2]) >= 7 / 8


@has_embedded
def test_embedded_scores_batch_invariant():
    vids = [sample_clip(s, WorldSpec()) for s in range(5)]
    batch = [ClipFeatures(str(i), c.video, c.caption) for i, c in enumerate(vids)]
    metrics = (ClipScoreMetric(), VideoTextAlignment(), PromptDrift())
    reqs = [r for m in metrics for r in m.requests()]
    featurize(batch, reqs, BackbonePool())
    alone = ClipFeatures("x", vids[3].video, vids[3].caption)
    featurize([alone], reqs, BackbonePool())
    for m in metrics:
        assert m.score_clip(alone).value == pytest.approx(m.score_clip(batch[3]).value, abs=1e-5)
