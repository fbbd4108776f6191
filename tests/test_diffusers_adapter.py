"""DiffusersGenerator against a tiny, randomly initialised TextToVideoSD pipeline built here (no downloads)."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from vdeval.errors import VdevalError, WeightsError  # noqa: E402
from vdeval.generators.base import ClipRequest  # noqa: E402
from vdeval.generators.diffusers_adapter import DiffusersConfig, DiffusersGenerator  # noqa: E402


def _tiny_tokenizer(tmp_path):
    """A CLIP BPE tokenizer over single characters: enough to turn any prompt into ids offline."""
    from transformers import CLIPTokenizer

    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in chars:
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"), model_max_length=16), len(vocab)


@pytest.fixture(scope="module")
def tiny_pipeline_dir(tmp_path_factory):
    from diffusers import AutoencoderKL, DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    d = tmp_path_factory.mktemp("tiny_t2v")
    tok, vocab_size = _tiny_tokenizer(d)
    torch.manual_seed(0)
    unet = UNet3DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"), up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=8,
    )
    vae = AutoencoderKL(block_out_channels=(16,), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",), up_block_types=("UpDecoderBlock2D",),
                        norm_num_groups=8, sample_size=16)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32,
                                        num_attention_heads=2, num_hidden_layers=1, max_position_embeddings=16,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    sched = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    pipe = TextToVideoSDPipeline(vae=vae, text_encoder=text, tokenizer=tok, unet=unet, scheduler=sched)
    out = d / "pipe"
    pipe.save_pretrained(str(out))
    return out


def _gen(path, **kw):
    cfg = DiffusersConfig(name="tiny", kind="diffusers", model=str(path), pipeline="TextToVideoSDPipeline",
                          call_args={"num_inference_steps": 2, "num_frames": 3, "height": 16, "width": 16,
                                     "guidance_scale": 2.0}, fps=6.0, **kw)
    return DiffusersGenerator(cfg)


def test_tiny_pipeline_yields_canonical_clips_and_is_seeded(tiny_pipeline_dir):
    gen = _gen(tiny_pipeline_dir)
    reqs = [ClipRequest("a", "a red circle", 1), ClipRequest("b", "a blue square", 2), ClipRequest("c", "a red circle", 1)]
    clips = list(gen.generate(reqs, "cpu"))
    assert [c.request.clip_id for c in clips] == ["a", "b", "c"]
    for c in clips:
        assert c.error is None
        assert c.video.frames.dtype == np.uint8 and c.video.frames.shape == (3, 16, 16, 3)
        assert c.video.fps == 6.0
    # same prompt and seed: the same clip, whatever came between; another seed: another clip
    assert np.array_equal(clips[0].video.frames, clips[2].video.frames)
    assert not np.array_equal(clips[0].video.frames, clips[1].video.frames)
    alone = next(gen.generate([ClipRequest("x", "a blue square", 2)], "cpu"))
    assert np.array_equal(alone.video.frames, clips[1].video.frames)
    assert gen.info()["kind"] == "diffusers"


def test_unknown_pipeline_class_suggests_a_name():
    with pytest.raises(VdevalError, match="TextToVideoSDPipeline"):
        DiffusersGenerator(DiffusersConfig(name="x", kind="diffusers", model="m", pipeline="TextToVideoSDPipelin"))


def test_missing_model_is_a_weights_error_without_download(tmp_path):
    gen = DiffusersGenerator(DiffusersConfig(name="x", kind="diffusers", model=str(tmp_path / "nope"),
                                             pipeline="TextToVideoSDPipeline"))
    with pytest.raises(WeightsError, match="cannot load TextToVideoSDPipeline"):
        list(gen.generate([ClipRequest("a", "p", 0)], "cpu"))


def test_bad_call_argument_fails_that_clip_only(tiny_pipeline_dir):
    gen = _gen(tiny_pipeline_dir)
    gen.config.call_args["no_such_argument"] = 1
    clips = list(gen.generate([ClipRequest("a", "a red circle", 1)], "cpu"))
    assert clips[0].video is None and "no_such_argument" in clips[0].error
