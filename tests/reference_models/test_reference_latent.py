"""Reference models v2: space-time attention with 3-D rotary positions, per-frame caption FiLM, and the
latent model (frame-wise VAE + a denoiser in its latent space): shapes, the rotary offset property,
checkpoint round trips, sampling, and VAE training that resumes exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vdeval.errors import CheckpointError
from reference_models import train as train_mod
from reference_models import train_vae
from reference_models.checkpoint import load_checkpoint, save_checkpoint
from reference_models.network import NetConfig, VideoDenoiser, _rotate, rope_3d
from reference_models.sampling import SamplerSettings, VideoSampler
from reference_models.tokenizer import CaptionTokenizer
from reference_models.vae import FrameVAE, VAEConfig

WORLD = {"height": 16, "width": 16, "frames": 4, "min_objects": 1, "max_objects": 1, "backgrounds": ["plain"]}
CAPTION = "a small red circle moving left slowly on a plain background"
TINY_VAE = {"channels": [8, 16], "latent_channels": 4}


def test_rotary_scores_depend_only_on_the_offset_between_tokens():
    d = 24
    cos, sin = rope_3d(4, 6, 6, d, "cpu")
    q, k = torch.randn(d), torch.randn(d)
    qr = _rotate(q.expand(1, 1, 144, d), cos, sin)[0, 0]
    kr = _rotate(k.expand(1, 1, 144, d), cos, sin)[0, 0]
    idx = lambda t, y, x: (t * 6 + y) * 6 + x  # noqa: E731
    same_offset = [qr[idx(3, 4, 2)] @ kr[idx(1, 2, 1)], qr[idx(2, 3, 5)] @ kr[idx(0, 1, 4)]]
    assert float(same_offset[0]) == pytest.approx(float(same_offset[1]), abs=1e-5)
    other_offset = qr[idx(3, 4, 2)] @ kr[idx(1, 2, 2)]
    assert abs(float(other_offset) - float(same_offset[0])) > 1e-3


def _v2_net(**kw) -> NetConfig:
    return NetConfig(vocab_size=CaptionTokenizer().vocab_size, channels=(16, 32), text_dim=32,
                     space_time=True, frame_film=True, **kw)


def test_space_time_model_reaches_other_pixels_of_other_frames_in_one_layer():
    torch.manual_seed(0)
    net = VideoDenoiser(_v2_net()).eval()
    x = torch.randn(1, 4, 3, 16, 16, requires_grad=True)
    out = net(x, torch.tensor([500]), CaptionTokenizer()([CAPTION]))
    assert out.shape == (1, 4, 3, 16, 16)
    out[0, 3, :, 0, 0].sum().backward()  # frame 3, top-left corner ...
    assert x.grad[0, 0, :, 15, 15].abs().sum() > 0  # ... depends on frame 0's bottom-right corner


def test_old_configs_load_as_v1_networks():
    cfg = NetConfig.from_dict({"channels": [16, 32], "temporal": True})
    assert (cfg.space_time, cfg.frame_film, cfg.patch) == (False, False, 2)
    assert not hasattr(VideoDenoiser(cfg), "st")


def test_vae_shapes_and_scaled_clip_round_trip():
    vae = FrameVAE(VAEConfig.from_dict({**TINY_VAE, "scale": 2.0})).eval()
    clip = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    z = vae.clip_to_latents(clip)
    assert z.shape == (2, 4, 4, 4, 4)
    mean, _ = vae.encode(clip[0])
    assert torch.allclose(z[0], mean * 2.0)
    assert vae.latents_to_clip(z).shape == clip.shape
    with pytest.raises(CheckpointError):
        VAEConfig.from_dict({"bogus": 1})


@pytest.fixture(scope="module")
def latent_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    vae = FrameVAE(VAEConfig.from_dict(TINY_VAE))
    net = VideoDenoiser(_v2_net(in_channels=4, patch=1))
    d = tmp_path_factory.mktemp("latent") / "tiny"
    save_checkpoint(d, net.state_dict(), {
        "name": "tiny-latent", "architecture": net.cfg.to_dict(), "latent": {"vae": vae.cfg.to_dict()},
        "diffusion": dict(train_mod.DEFAULTS["diffusion"]), "world": WORLD,
        "training": {"step": 0, "seed": 0}}, vae.state_dict())
    return d


def test_latent_checkpoint_samples_frames_and_keeps_the_given_image(latent_ckpt):
    lm = load_checkpoint(latent_ckpt)
    assert lm.vae is not None
    s = VideoSampler(lm, SamplerSettings("dpm", 3, 2.0))
    clips = s.text_to_video([CAPTION, CAPTION], [0, 1])
    assert clips.shape == (2, 4, 16, 16, 3) and clips.dtype == np.uint8
    alone = s.text_to_video([CAPTION], [1])
    assert np.array_equal(alone[0], clips[1])  # batch invariance holds through the VAE too
    image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    i2v = s.image_to_video([CAPTION], [image], [0])
    assert np.array_equal(i2v[0, 0], image)


def test_latent_checkpoint_without_its_vae_is_a_clear_error(latent_ckpt, tmp_path):
    import shutil

    d = tmp_path / "broken"
    shutil.copytree(latent_ckpt, d)
    (d / "vae.safetensors").unlink()
    with pytest.raises(CheckpointError, match="vae.safetensors"):
        load_checkpoint(d)


def _vae_settings(steps):
    return {**train_vae.SETTINGS, "steps": steps, "clips_per_batch": 1, "save_every": 2, "log_every": 100,
            "world": WORLD, "vae": TINY_VAE, "heldout": {"count": 4, "seed": 1}}


def test_vae_training_resumes_exactly_and_writes_its_figures(tmp_path):
    straight = train_vae.train(tmp_path / "a", _vae_settings(4))
    train_vae.train(tmp_path / "b", _vae_settings(4), max_seconds=0.0)  # stops before any step
    train_vae.train(tmp_path / "b", _vae_settings(4), stop_at=2)
    resumed = train_vae.train(tmp_path / "b", _vae_settings(4))
    for (k, v), (_, w) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(v, w), k
    vae, meta = train_vae.load_vae(tmp_path / "a" / "final")
    assert meta["figures"]["scale"] > 0 and meta["figures"]["heldout_mae_grey_levels"] >= 0
    assert vae.cfg.scale == pytest.approx(meta["figures"]["scale"])


def test_latent_denoiser_trains_on_vae_latents(tmp_path):
    train_vae.train(tmp_path / "vae", _vae_settings(2))
    cfg = train_mod.load_config_dict({
        "world": WORLD, "batch_size": 2, "save_every": 2, "log_every": 100, "heldout": {"count": 4, "seed": 1},
        "latent": {"vae": str(tmp_path / "vae" / "final")},
        "models": [{"name": "latent", "net": {"channels": [16, 32], "text_dim": 32, "space_time": True}, "steps": 2}]})
    train_mod.train(cfg, tmp_path / "run")
    lm = load_checkpoint(tmp_path / "run" / "latent" / "step_000002")
    assert lm.vae is not None and lm.model.cfg.in_channels == 4 and lm.model.cfg.patch == 1
    assert json.loads((tmp_path / "run" / "latent" / "step_000002" / "config.json").read_text())["latent"]["vae"]
    assert VideoSampler(lm, SamplerSettings("ddim", 2, 1.0)).text_to_video([CAPTION], [0]).shape == (1, 4, 16, 16, 3)


def test_autoencode_task_is_the_world_clip_through_the_vae_frame_by_frame(latent_ckpt, tmp_path):
    from vdeval.generators.base import ClipRequest, GeneratorSetupError
    from vdeval.generators.reference import ReferenceConfig, ReferenceGenerator
    from vdeval.world import WorldSpec, sample_clip
    from reference_models.data import to_tensor, to_uint8

    gen = ReferenceGenerator(ReferenceConfig(name="vae", kind="reference", checkpoint=str(latent_ckpt), task="autoencode"))
    gen.prepare()
    spec = WorldSpec.from_dict(WORLD)
    truth = sample_clip(7, spec)
    out = list(gen.generate([ClipRequest("c0", truth.caption, 0, meta={"world_seed": 7})]))
    assert out[0].error is None
    vae = load_checkpoint(latent_ckpt).vae
    with torch.no_grad():
        one_by_one = [to_uint8(vae.latents_to_clip(vae.clip_to_latents(to_tensor(f[None, None])))[0, 0])
                      for f in truth.video.frames]
    # each frame decoded on its own (batched kernels may round a value to the next grey level)
    assert np.abs(out[0].video.frames.astype(int) - np.stack(one_by_one)).max() <= 1
    assert not np.array_equal(out[0].video.frames, truth.video.frames)  # an untrained VAE changes it

    import shutil

    pixel = tmp_path / "pixel"
    shutil.copytree(latent_ckpt, pixel)
    (pixel / "vae.safetensors").unlink()
    with pytest.raises(GeneratorSetupError, match="needs a latent checkpoint"):
        ReferenceGenerator(ReferenceConfig(name="v", kind="reference", checkpoint=str(pixel), task="autoencode")).prepare()


def test_ship_copies_the_vae_and_records_the_stage_name(latent_ckpt, tmp_path):
    from reference_models.ship import ship

    dst = ship(latent_ckpt, "latent", shipped_dir=tmp_path)
    assert (dst / "vae.safetensors").is_file() and (dst / "model.safetensors").is_file()
    assert json.loads((dst / "config.json").read_text())["stage"] == "latent"
