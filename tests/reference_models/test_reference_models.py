"""Reference video diffusion models: network, tokenizer, samplers, training resume, checkpoint errors, generator."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from vdeval.errors import CheckpointError, VdevalError
from vdeval.generators.base import ClipRequest
from vdeval.generators.reference import ReferenceConfig, ReferenceGenerator
from vdeval.world import WorldSpec, sample_clip
from reference_models import train as train_mod
from reference_models.checkpoint import SHIPPED_DIR, load_checkpoint, save_checkpoint, shipped_names
from reference_models.network import NetConfig, VideoDenoiser
from reference_models.sampling import SamplerSettings, VideoSampler, make_scheduler
from reference_models.tokenizer import CaptionTokenizer

WORLD = {"height": 16, "width": 16, "frames": 4, "min_objects": 1, "max_objects": 1, "backgrounds": ["plain"]}
CAPTIONS = ["a small red circle moving left slowly on a plain background",
            "a large blue square staying still on a plain background",
            "a small white triangle moving up quickly on a plain background"]


def tiny_net(temporal=True) -> NetConfig:
    return NetConfig(vocab_size=CaptionTokenizer().vocab_size, channels=(16, 32), text_dim=32, temporal=temporal)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """A randomly initialised checkpoint on a 16x16, 4-frame world: real weights, real format."""
    torch.manual_seed(0)
    model = VideoDenoiser(tiny_net())
    d = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(d, model.state_dict(), {
        "name": "tiny", "architecture": model.cfg.to_dict(),
        "diffusion": dict(train_mod.DEFAULTS["diffusion"]),
        "world": WorldSpec.from_dict(WORLD).to_dict(),
        "training": {"step": 7, "seed": 0, "heldout": {"count": 8, "seed": 1}},
    })
    return d


# ---- network -------------------------------------------------------------------------

@pytest.mark.parametrize("temporal", [True, False])
def test_network_shapes_for_all_three_tasks(temporal):
    torch.manual_seed(0)
    m = VideoDenoiser(tiny_net(temporal)).eval()
    tok = CaptionTokenizer()
    x = torch.randn(2, 4, 3, 16, 16)
    known = torch.randn_like(x)
    t = torch.tensor([10, 900])
    for k in (0, 1, 3):  # t2v, i2v, continuation
        mask = torch.zeros(2, 4)
        mask[:, :k] = 1
        out = m(x, t, tok(CAPTIONS[:2]), known, mask)
        assert out.shape == x.shape and torch.isfinite(out).all()


def test_ablation_has_no_temporal_mixing_and_full_model_does():
    torch.manual_seed(0)
    tok = CaptionTokenizer()
    x = torch.randn(1, 4, 3, 16, 16)
    t = torch.tensor([500])
    for temporal in (False, True):
        m = VideoDenoiser(tiny_net(temporal)).eval()
        with torch.no_grad():
            a = m(x, t, tok(CAPTIONS[:1]))
            y = x.clone()
            y[:, 3] = torch.randn(3, 16, 16)  # change only the last frame
            b = m(y, t, tok(CAPTIONS[:1]))
        unchanged = torch.equal(a[:, :3], b[:, :3])
        assert unchanged == (not temporal)
    names = [n for n, _ in VideoDenoiser(tiny_net(False)).named_parameters()]
    assert not any(n.startswith("t_") for n in names)


# ---- tokenizer -----------------------------------------------------------------------

def test_tokenizer_round_trip_and_unknown_word():
    tok = CaptionTokenizer()
    ids = tok(CAPTIONS)
    assert ids.shape == (3, tok.max_length) and ids.dtype == torch.long
    assert tok.encode(None)[0] == 1 and set(tok.encode(None)[1:]) == {0}
    with pytest.raises(VdevalError, match="'unicorn'"):
        tok.encode("a small red unicorn moving left slowly on a plain background")


# ---- sampling --------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", ["ddim", "ddpm", "euler", "dpm"])
def test_clip_is_identical_alone_or_in_a_batch(tiny_ckpt, sampler):
    s = VideoSampler(load_checkpoint(tiny_ckpt), SamplerSettings(sampler, steps=3, guidance_scale=2.0))
    batch = s.denoise(CAPTIONS, s._generators([11, 22, 33]), 4)
    alone = s.denoise(CAPTIONS[1:2], s._generators([22]), 4)
    assert torch.equal(batch[1], alone[0])
    again = s.denoise(CAPTIONS[::-1], s._generators([33, 22, 11]), 4)
    assert torch.equal(again[1], alone[0])
    assert not torch.equal(batch[0], batch[2])


def test_image_to_video_keeps_frame_zero_and_long_video_length(tiny_ckpt):
    s = VideoSampler(load_checkpoint(tiny_ckpt), SamplerSettings("ddim", steps=2))
    spec = WorldSpec.from_dict(WORLD)
    imgs = [sample_clip(i, spec).reference_image for i in range(2)]
    v = s.image_to_video(CAPTIONS[:2], imgs, [1, 2])
    assert v.shape == (2, 4, 16, 16, 3)
    assert np.array_equal(v[:, 0], np.stack(imgs))
    long = s.long_video(CAPTIONS[:1], [5], num_frames=9, overlap=2)
    assert long.shape == (1, 9, 16, 16, 3)
    with pytest.raises(VdevalError, match="uint8 \\(16, 16, 3\\)"):
        s.image_to_video(CAPTIONS[:1], [np.zeros((32, 32, 3), np.uint8)], [0])


def test_unknown_sampler_and_dtype_are_clear_errors(tiny_ckpt):
    with pytest.raises(VdevalError, match="unknown sampler 'heun'.*ddim"):
        make_scheduler("heun", train_mod.DEFAULTS["diffusion"])
    with pytest.raises(VdevalError, match="float16 needs a CUDA"):
        VideoSampler(load_checkpoint(tiny_ckpt), SamplerSettings(dtype="float16"))


# ---- training ---------------------------------------------------------------------------

def _tiny_train_cfg(steps):
    cfg = json.loads(json.dumps(train_mod.DEFAULTS))
    cfg.update({"world": WORLD, "batch_size": 2, "warmup": 2, "save_every": 2, "log_every": 100,
                "heldout": {"count": 8, "seed": 1},
                "models": [{"name": "full", "net": {"channels": [16, 32], "text_dim": 32}, "steps": steps},
                           {"name": "abl", "net": {"channels": [16, 32], "text_dim": 32, "temporal": False},
                            "steps": 2, "every": 2}]})
    return cfg


def test_training_resumes_exactly(tmp_path, capsys):
    train_mod.train(_tiny_train_cfg(4), tmp_path / "straight")
    train_mod.train(_tiny_train_cfg(2), tmp_path / "resumed")  # stop half-way ...
    train_mod.train(_tiny_train_cfg(4), tmp_path / "resumed")  # ... and resume from last/
    assert "resumed at step 2" in capsys.readouterr().out
    for sub in ("full/step_000004", "abl/step_000002"):
        a = load_file(str(tmp_path / "straight" / sub / "model.safetensors"))
        b = load_file(str(tmp_path / "resumed" / sub / "model.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    lm = load_checkpoint(tmp_path / "straight" / "full" / "step_000004")
    assert lm.step == 4 and lm.config["training"]["seed"] == 0 and lm.world.frames == 4
    assert load_checkpoint(tmp_path / "straight" / "abl" / "step_000002").model.cfg.temporal is False


# ---- checkpoint errors --------------------------------------------------------------------

def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no shipped reference checkpoint named 'nope'"):
        load_checkpoint("shipped:nope")


def test_corrupt_weights_and_config(tiny_ckpt, tmp_path):
    d = tmp_path / "c"
    shutil.copytree(tiny_ckpt, d)
    (d / "model.safetensors").write_bytes(b"\x00garbage" * 20)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(d)
    shutil.copy(tiny_ckpt / "model.safetensors", d / "model.safetensors")
    (d / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(d)


def test_wrong_architecture(tiny_ckpt, tmp_path):
    d = tmp_path / "w"
    shutil.copytree(tiny_ckpt, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["architecture"]["channels"] = [24, 48]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not fit the architecture.*another shape"):
        load_checkpoint(d)
    cfg["architecture"]["channels"] = [16, 32]
    cfg["architecture"]["temporal"] = False  # weights have temporal layers the config lacks
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_checkpoint(d)


def test_pickle_checkpoint_is_rejected(tiny_ckpt, tmp_path):
    d = tmp_path / "p"
    shutil.copytree(tiny_ckpt, d)
    state = {k: v.clone() for k, v in load_file(str(d / "model.safetensors")).items()}  # off the mmap
    torch.save(state, d / "model.safetensors")  # a torch pickle in disguise
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_checkpoint(d)


# ---- generator ------------------------------------------------------------------------------

def _gen(ckpt, tmp_path=None, **kw):
    cfg = ReferenceConfig(name="ref", kind="reference", checkpoint=str(ckpt), steps=2, **kw)
    return ReferenceGenerator(cfg, suite_dir=str(tmp_path) if tmp_path else None)


def test_generator_tasks_errors_and_info(tiny_ckpt, tmp_path):
    spec = WorldSpec.from_dict(WORLD)
    img = sample_clip(3, spec).reference_image
    reqs = [ClipRequest("a", CAPTIONS[0], 1, img), ClipRequest("b", "a small red unicorn", 2, img),
            ClipRequest("c", CAPTIONS[1], 3, np.zeros((8, 8, 3), np.uint8)), ClipRequest("d", CAPTIONS[2], 4, img)]
    clips = list(_gen(tiny_ckpt, task="i2v", batch_size=2).generate(reqs))
    assert [c.request.clip_id for c in clips] == ["a", "b", "c", "d"]
    assert clips[0].video.frames.shape == (4, 16, 16, 3) and np.array_equal(clips[0].video.frames[0], img)
    assert "'unicorn'" in clips[1].error and clips[1].video is None
    assert "(16, 16, 3)" in clips[2].error and clips[2].video is None
    assert clips[3].video is not None
    # the same request alone gives the same clip
    alone = next(_gen(tiny_ckpt, task="i2v").generate([reqs[3]]))
    assert np.array_equal(alone.video.frames, clips[3].video.frames)
    # relative checkpoint paths resolve against the suite directory
    shutil.copytree(tiny_ckpt, tmp_path / "ck")
    g = _gen("ck", tmp_path, task="long", num_frames=7)
    assert next(g.generate([ClipRequest("l", CAPTIONS[0], 0)])).video.frames.shape == (7, 16, 16, 3)
    info = g.info()
    assert info["training_step"] == 7 and len(info["checkpoint_sha256"]) == 64


def test_generator_config_rejects_unknown_sampler():
    with pytest.raises(ValueError, match="unknown sampler 'plms'"):
        ReferenceConfig(name="r", kind="reference", sampler="plms")


def test_shipped_checkpoints_load():
    names = shipped_names()
    assert set(names) >= {"early", "middle", "final", "ablation", "latent"}  # the ones the shipped suites name
    for n in names:
        lm = load_checkpoint(f"shipped:{n}")
        assert (SHIPPED_DIR / n / "model.safetensors").stat().st_size < 8 * 2**20
        assert lm.step > 0 and lm.config["stage"] == n
        assert (lm.vae is not None) == (n == "latent")  # only the latent model decodes through a VAE


def test_bfloat16_path_runs_on_cpu(tiny_ckpt):
    s32 = VideoSampler(load_checkpoint(tiny_ckpt), SamplerSettings("ddim", steps=2))
    s16 = VideoSampler(load_checkpoint(tiny_ckpt), SamplerSettings("ddim", steps=2, dtype="bfloat16"))
    a = s32.denoise(CAPTIONS[:1], s32._generators([3]), 4)
    b = s16.denoise(CAPTIONS[:1], s16._generators([3]), 4)
    assert b.dtype == torch.float32 and torch.isfinite(b).all()
    assert (a - b).abs().mean() < 0.1  # same clip up to bfloat16 rounding
