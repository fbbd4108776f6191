"""aesthetic_quality: the LAION head in its released formats (linear and MLP state dicts, loaded with
weights_only) through the weights manager, on a small stand-in CLIP with ViT-L/14's 768-d embedding,
against VBench's aesthetic_quality computation written out here."""
import json

import numpy as np
import pytest
import torch

from vdeval.backbones import weights
from vdeval.errors import WeightsError
from vdeval.features import ClipFeatures, ClipInput
from vdeval.metrics.aesthetic_quality import AestheticQuality
from vdeval.video import Video


@pytest.fixture
def tiny_clip(tmp_path, monkeypatch):
    """A 1-layer open_clip model with a 768-d embedding (ViT-L/14's width), saved as a state dict."""
    import open_clip

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    cfg = {"embed_dim": 768, "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "head_width": 64, "patch_size": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    (tmp_path / "TinyAesthetic.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "TinyAesthetic.json")
    torch.manual_seed(0)
    model = open_clip.create_model("TinyAesthetic", pretrained=None)
    ckpt = tmp_path / "tiny_clip.pt"
    torch.save(model.state_dict(), ckpt)
    return model.eval(), ckpt


def _vbench_aesthetic(clip_model, head, frames):
    """VBench's laion_aesthetic for one video: clip_transform(224), encode_image, normalise, head, / 10, mean."""
    import torch.nn.functional as F
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

    transform = Compose([Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False), CenterCrop(224),
                         Lambda(lambda x: x.float().div(255.0)),
                         Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    images = torch.Tensor(frames).permute(0, 3, 1, 2)  # load_video: torch.Tensor(buffer), float32 T x C x H x W
    with torch.no_grad():
        feats = F.normalize(clip_model.encode_image(transform(images)).to(torch.float32), dim=-1, p=2)
        scores = head(feats).squeeze(dim=-1)
    return float(torch.mean(scores / 10, dim=0))


@pytest.mark.parametrize("fmt", ["linear", "mlp"])
def test_aesthetic_quality_matches_vbench(tiny_clip, tmp_path, fmt):
    from vdeval.backbones.aesthetic import AestheticBackbone

    model, ckpt = tiny_clip
    torch.manual_seed(1)
    if fmt == "linear":  # VBench: m = nn.Linear(768, 1); m.load_state_dict(torch.load(path))
        head = torch.nn.Linear(768, 1)
    else:  # the improved predictor's MLP, whose state dict keys are layers.N.*
        head = torch.nn.Module()
        head.layers = torch.nn.Sequential(torch.nn.Linear(768, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128),
                                          torch.nn.Dropout(0.2), torch.nn.Linear(128, 64), torch.nn.Dropout(0.1),
                                          torch.nn.Linear(64, 16), torch.nn.Linear(16, 1))
        head.forward = head.layers.forward
    f = tmp_path / "head.pth"
    torch.save(head.state_dict(), f)
    weights.install(f"laion-aesthetic-{fmt}", f, custom=True)
    b = AestheticBackbone(model="TinyAesthetic", pretrained=str(ckpt), head=f"laion-aesthetic-{fmt}")
    assert b.label() == f"laion_aesthetic@{fmt}/TinyAesthetic/tiny_clip.pt"
    assert set(b.weights_sha256()) == {"tiny_clip.pt", weights.ENTRIES[f"laion-aesthetic-{fmt}"].filename}
    rng = np.random.default_rng(0)
    video = Video(rng.integers(0, 256, (3, 180, 240, 3), dtype=np.uint8))
    scores = b.compute("frame_score", [ClipInput(video)])[0]["value"]
    assert scores.shape == (3,)
    cf = ClipFeatures("c", video)
    cf.features[("frame_score", "laion_aesthetic")] = {"value": scores}
    got = AestheticQuality(backbone="laion_aesthetic").score_clip(cf)
    assert got.value == pytest.approx(_vbench_aesthetic(model, head.eval(), video.frames), abs=1e-5)
    assert got.curve == pytest.approx(list(scores / 10))


def test_bad_heads_and_missing_weights(tiny_clip, tmp_path):
    from vdeval.backbones.aesthetic import AestheticBackbone

    _, ckpt = tiny_clip
    with pytest.raises(WeightsError, match="vdeval weights install laion-aesthetic-linear"):
        AestheticBackbone(model="TinyAesthetic", pretrained=str(ckpt))
    f = tmp_path / "narrow.pth"
    torch.save(torch.nn.Linear(512, 1).state_dict(), f)
    weights.install("laion-aesthetic-linear", f, custom=True)
    with pytest.raises(WeightsError, match="takes 512-d embeddings"):
        AestheticBackbone(model="TinyAesthetic", pretrained=str(ckpt))
    torch.save({"w": torch.zeros(3)}, f)
    weights.install("laion-aesthetic-linear", f, custom=True)
    with pytest.raises(WeightsError, match="not a released aesthetic head"):
        AestheticBackbone(model="TinyAesthetic", pretrained=str(ckpt))
    with pytest.raises(WeightsError, match="clip-vit-l-14-openai"):
        AestheticBackbone()  # the default CLIP ViT-L/14 weights are not installed


def test_colorfulness_tier_known_answers():
    from vdeval.backbones.colorfulness import ColorfulnessBackbone, colourfulness, rms_contrast

    grey = np.full((2, 8, 8, 3), 128, np.uint8)
    assert np.all(colourfulness(grey) == 0) and np.all(rms_contrast(grey) == 0)
    # half pure red, half black: rg = 255 or 0, yb = 127.5 or 0 (population std and mean of two equal halves)
    f = np.zeros((1, 4, 4, 3), np.uint8)
    f[:, :2, :, 0] = 255
    rg_sd, yb_sd, rg_mu, yb_mu = 127.5, 63.75, 127.5, 63.75
    m = np.hypot(rg_sd, yb_sd) + 0.3 * np.hypot(rg_mu, yb_mu)
    assert colourfulness(f)[0] == pytest.approx(m, rel=1e-12)
    assert rms_contrast(f)[0] == pytest.approx(0.299 * 127.5, rel=1e-12)
    out = ColorfulnessBackbone().compute("frame_score", [ClipInput(Video(np.concatenate([f, f])))])[0]
    assert out["value"] == pytest.approx([(m + 0.299 * 127.5) / 10] * 2)
    cf = ClipFeatures("c", Video(np.concatenate([f, f])))
    cf.features[("frame_score", "colorfulness")] = out
    s = AestheticQuality().score_clip(cf)
    assert AestheticQuality().backbone == "colorfulness"
    assert s.value == pytest.approx((m + 0.299 * 127.5) / 100) and s.extras["colourfulness"] == pytest.approx(m)


def test_colorfulness_scales_exactly_under_a_colour_wash():
    from vdeval.backbones.colorfulness import colourfulness, rms_contrast
    from vdeval.world import WorldSpec, sample_clip

    f = sample_clip(3, WorldSpec()).video.frames.astype(np.float64)
    grey = (f @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2))[:, None, None, None]
    washed = 0.7 * f + 0.3 * grey  # unrounded, so the scaling is exact
    for fn in (colourfulness, rms_contrast):
        np.testing.assert_allclose(fn(washed), 0.7 * fn(f), rtol=1e-9)


def test_color_wash_audit_with_the_offline_tier():
    from vdeval.audit import run_audit

    r = run_audit(n=8, severities=(0.5, 1.0), metrics=["aesthetic_quality"], corruptions=["color_wash"])
    own = r.own_failure(1.0)
    assert list(own["backbone"]) == ["colorfulness"] and own["auroc"].iloc[0] == 1.0


def test_vbench_input_full_size_float32_streamed(tiny_clip, tmp_path):
    """A 600 x 840 file (short side over the 448 px cap used before): CLIP gets VBench's load_video +
    clip_transform(224) of the full-size frames, two at a time."""
    from torchvision.transforms import CenterCrop, InterpolationMode, Normalize, Resize

    from helpers import featurize_recording, large_clip_file, vbench_load_video
    from vdeval.backbones.aesthetic import AestheticBackbone

    model, ckpt = tiny_clip
    f = tmp_path / "head.pth"
    torch.save(torch.nn.Linear(768, 1).state_dict(), f)
    weights.install("laion-aesthetic-linear", f, custom=True)
    b = AestheticBackbone(model="TinyAesthetic", pretrained=str(ckpt))
    assert b.input_spec("frame_score").max_short_side is None and b.streams_input
    path = large_clip_file(tmp_path / "big.mp4", frames=3)
    seen = featurize_recording(path, b, "frame_score", b.model, "encode_image", lambda x: torch.ones(len(x), 768))
    assert [len(x) for x in seen] == [2, 1]
    x = CenterCrop(224)(Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False)(vbench_load_video(path)))
    want = Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))(x.float().div(255.0))
    torch.testing.assert_close(torch.cat(seen), want, atol=0, rtol=0)
