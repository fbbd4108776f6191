"""Motion-aligned reference models: temporal layers that work along the caption's velocity.

Known answers: the translation moves content by exactly the asked offset; a motion-aligned layer sees
an object moving at v as standing still (and a per-pixel layer does not); the training stream's
velocities are the world's; the velocity head is trained and used by the sampler for both halves
of classifier-free guidance; a tiny model trains and samples batch-invariantly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vdeval.world import WorldSpec
from vdeval.world.scene import ObjectSpec, Scene
from reference_models import train as train_mod
from reference_models.checkpoint import load_checkpoint
from reference_models.data import WorldStream, screen_velocity
from reference_models.network import MotionAlignment, NetConfig, VideoDenoiser, translate
from reference_models.sampling import SamplerSettings, VideoSampler
from reference_models.tokenizer import CaptionTokenizer

WORLD = {"height": 16, "width": 16, "frames": 4, "min_objects": 1, "max_objects": 1, "backgrounds": ["plain"]}
CAPTION = "a small red circle moving left slowly on a plain background"


def test_translate_moves_content_by_the_offset_in_frame_units():
    img = torch.zeros(1, 1, 8, 8)
    img[0, 0, 3, 3] = 1
    out = translate(img, torch.tensor([[2 * 2 / 8, -2 * 1 / 8]]))  # out(p) = in(p + (2, -1) px)
    assert out[0, 0].nonzero().tolist() == [[4, 1]]
    assert float(out.sum()) == pytest.approx(1.0)


class _Spread(torch.nn.Module):
    """A temporal layer whose update at a pixel is the pixel's variance over frames: zero exactly
    when every frame shows the same value there."""

    def forward(self, x, frames):
        v = x.view(-1, frames, *x.shape[1:])
        return x + v.var(1, keepdim=True).expand_as(v).reshape(x.shape)


def test_an_object_moving_at_the_aligned_velocity_stands_still_for_the_temporal_layer():
    frames, size = 4, 16
    clip = torch.zeros(frames, 1, size, size)
    for t in range(frames):  # a 2x2 square moving 2 px right and 1 px down per frame
        clip[t, 0, 4 + t:6 + t, 2 + 2 * t:4 + 2 * t] = 1
    aligned = MotionAlignment(torch.tensor([[2 / size, 1 / size]]), frames)
    assert torch.allclose(aligned(_Spread(), clip, frames), clip, atol=1e-6)  # no spread along the motion
    still = MotionAlignment(torch.zeros(1, 2), frames)
    assert (still(_Spread(), clip, frames) - clip).abs().max() > 0.1  # a per-pixel layer sees it change


def test_screen_velocity_is_the_objects_minus_the_cameras_in_frame_fractions():
    spec = WorldSpec(height=32, width=32)
    obj = ObjectSpec("circle", "red", "small", "right", "quickly")
    assert screen_velocity(Scene((obj,), "plain"), spec) == (2 / 32, 0.0)
    panned = Scene((obj,), "plain", pan="down", pan_speed="slowly")
    assert screen_velocity(panned, spec) == (2 / 32, -1 / 32)
    big = WorldSpec(height=64, width=64)  # speeds scale with the frame: the fraction stays
    assert screen_velocity(Scene((obj,), "plain"), big) == (2 / 32, 0.0)


def test_training_stream_returns_each_clips_velocity():
    spec = WorldSpec.from_dict(WORLD)
    stream = WorldStream(spec, 0, set(), {"t2v": 1.0}, 0.0)
    frames, captions, _, velocity = stream.batch(3, 4)
    assert velocity.shape == (4, 2)
    unit = 1 / 16 * spec.unit_speed
    for cap, v in zip(captions, velocity.tolist()):
        speed = 2 if "quickly" in cap else 1
        if "still" in cap:
            assert v == [0.0, 0.0]
        else:
            assert max(abs(v[0]), abs(v[1])) == pytest.approx(speed * unit)
            assert (v[0] < 0) == ("left" in cap) and (v[1] < 0) == (" up" in cap)


def test_motion_aligned_needs_temporal_layers_and_old_configs_stay_unaligned():
    with pytest.raises(ValueError, match="temporal"):
        VideoDenoiser(NetConfig(channels=(16, 32), text_dim=32, temporal=False, motion_aligned=True))
    assert NetConfig.from_dict({"channels": [16, 32]}).motion_aligned is False


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("motion")
    cfg = train_mod.load_config_dict({
        "world": WORLD, "batch_size": 2, "save_every": 2, "log_every": 100, "heldout": {"count": 4, "seed": 1},
        "models": [{"name": "m", "net": {"channels": [16, 32], "text_dim": 32, "motion_aligned": True}, "steps": 2}]})
    trainee = train_mod.train(cfg, out)[0]
    return out / "m" / "step_000002", trainee


def test_training_updates_the_velocity_head(tiny_run):
    _, trainee = tiny_run
    torch.manual_seed(0)  # the trainee's own initialisation (seed 0)
    fresh = VideoDenoiser(trainee.net_cfg)
    assert not torch.equal(trainee.model.velocity_head[2].weight, fresh.velocity_head[2].weight)


def test_sampler_uses_the_captions_velocity_for_both_guidance_halves(tiny_run, monkeypatch):
    ckpt, _ = tiny_run
    lm = load_checkpoint(ckpt)
    assert lm.model.cfg.motion_aligned
    s = VideoSampler(lm, SamplerSettings("dpm", 2, 3.0))
    seen = []
    real = lm.model.forward

    def spy(*a, velocity=None, **k):
        seen.append(velocity.clone())
        return real(*a, velocity=velocity, **k)

    monkeypatch.setattr(lm.model, "forward", spy)
    clips = s.text_to_video([CAPTION, None], [0, 1])
    want = torch.cat([lm.model.velocity_of(CaptionTokenizer()([CAPTION])), lm.model.velocity_of(CaptionTokenizer()([None]))])
    for v in seen:  # rows (sample, its unconditional twin): the caption's velocity twice
        assert v.shape == (2, 2)
        assert torch.allclose(v[0], v[1]) and any(torch.allclose(v[0], w) for w in want)
    monkeypatch.undo()
    alone = VideoSampler(lm, SamplerSettings("dpm", 2, 3.0)).text_to_video([None], [1])
    assert np.array_equal(alone[0], clips[1])  # batch invariant
