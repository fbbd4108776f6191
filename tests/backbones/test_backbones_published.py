"""Published backbones with stand-in weights in their published formats, installed through the
weights manager into a temporary weights directory: loading and preprocessing run end to end,
nothing is downloaded."""
import warnings

import numpy as np
import pytest
import torch

from vdeval.backbones import weights
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput
from vdeval.video import Video


@pytest.fixture
def wdir(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    return tmp_path


def _clip(t=3, h=32, w=32, seed=0):
    rng = np.random.default_rng(seed)
    return Video(rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8))


# ---- I3D ---------------------------------------------------------------------------------------

class FakeI3D(torch.nn.Module):
    """The I3D call signature; reports what it was given so the test can check the protocol:
    [min, max, C, T, H, W, rescale, resize, return_features, mean of channel 0] + zeros."""

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        b = x.shape[0]
        info = torch.tensor([float(x.shape[1]), float(x.shape[2]), float(x.shape[3]), float(x.shape[4]),
                             float(rescale), float(resize), float(return_features)])
        head = torch.stack([x.amin((1, 2, 3, 4)), x.amax((1, 2, 3, 4))], 1)
        rest = torch.cat([info.expand(b, 7), x[:, 0].mean((1, 2, 3)).unsqueeze(1), torch.zeros(b, 390)], 1)
        return torch.cat([head, rest], 1)


class NotI3D(torch.nn.Module):
    def forward(self, x: torch.Tensor):
        return x


class WrongWidth(torch.nn.Module):
    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False, return_features: bool = False):
        return torch.zeros(x.shape[0], 10)


def _install_script(module, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script deprecation notice
        scripted = torch.jit.script(module)
    f = tmp_path / "stand_in_i3d.pt"
    scripted.save(str(f))
    weights.install("i3d", f)


def test_i3d_protocol_end_to_end(wdir):
    from vdeval.backbones.i3d import I3DBackbone

    _install_script(FakeI3D(), wdir)
    b = I3DBackbone()
    clips = [ClipInput(_clip(20, 40, 48, seed=1)), ClipInput(_clip(16, 40, 48, seed=2))]
    out = b.compute("video_embedding", clips)
    v = out[0]["value"]
    assert v.shape == (400,) and v.dtype == np.float32
    lo, hi, c, t, h, w, rescale, resize, feats = v[:9]
    assert -1.0 <= lo < -0.9 and 0.9 < hi <= 1.0  # uint8 mapped to [-1, 1]
    assert (c, t, h, w) == (3, 16, 40, 48)  # B x C x T x H x W, first 16 frames
    assert (rescale, resize, feats) == (0, 1, 1)
    expect = (clips[0].video.frames[:16, ..., 0].astype(np.float64) / 127.5 - 1).mean()
    assert v[9] == pytest.approx(expect, abs=1e-5)
    assert b.tier == "published" and "16" in b.protocol and b.weights_sha256()["i3d_torchscript.pt"]
    with pytest.raises(FeatureError, match="has 8 frames"):
        b.compute("video_embedding", [ClipInput(_clip(8))])


def test_i3d_rejects_files_that_are_not_the_detector(wdir):
    from vdeval.backbones.i3d import I3DBackbone

    _install_script(NotI3D(), wdir)
    with pytest.raises(WeightsError, match="not the I3D detector"):
        I3DBackbone()
    _install_script(WrongWidth(), wdir)
    with pytest.raises(WeightsError, match="not the StyleGAN-V I3D"):
        I3DBackbone().compute("video_embedding", [ClipInput(_clip(16))])
    junk = wdir / "junk.pt"
    junk.write_bytes(b"\x00" * 100)
    weights.install("i3d", junk)
    with pytest.raises(WeightsError, match="not a TorchScript file"):
        I3DBackbone()


def test_i3d_missing_weights(wdir):
    from vdeval.backbones.i3d import I3DBackbone

    with pytest.raises(WeightsError, match="vdeval weights install i3d"):
        I3DBackbone()


# ---- CLIP --------------------------------------------------------------------------------------

def test_clip_loads_open_clip_state_dict_and_embeds(wdir):
    import open_clip

    from vdeval.backbones.clip import ClipBackbone

    torch.manual_seed(0)
    ref = open_clip.create_model("ViT-B-32", pretrained=None)
    f = wdir / "open_clip_pytorch_model.bin"
    torch.save({k: v.half() for k, v in ref.state_dict().items()}, f)  # half: a smaller file, same format
    weights.install("clip-vit-b-32-laion2b", f)
    b = ClipBackbone()
    w = ref.state_dict()["visual.conv1.weight"].half().float()
    assert torch.equal(b.model.state_dict()["visual.conv1.weight"], w)  # the file's weights, not a fresh init
    video = _clip(2, 36, 48)
    clip = ClipInput(video, prompt="a small red circle moving left", reference_image=video.frames[0])
    fe = b.compute("frame_embedding", [clip])[0]["value"]
    assert fe.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(fe, axis=1), 1, atol=1e-5)
    ve = b.compute("video_embedding", [clip])[0]["value"]
    m = fe.mean(0)
    np.testing.assert_allclose(ve, m / np.linalg.norm(m), atol=1e-5)
    re = b.compute("reference_embedding", [clip])[0]["value"]
    np.testing.assert_allclose(re, fe[0], atol=1e-4)
    te = b.compute("text_embedding", [clip, ClipInput(video, prompt="a blue square")])
    alone = b.compute("text_embedding", [clip])[0]["value"]
    np.testing.assert_allclose(te[0]["value"], alone, atol=1e-5)  # batch-invariant
    assert b.label() == "clip@ViT-B-32/laion2b_s34b_b79k"
    # a local checkpoint path, used as is and recorded by its hash
    local = ClipBackbone(pretrained=str(f))
    assert local.weights_sha256() == {f.name: b.weights_sha256()["ViT-B-32__laion2b_s34b_b79k.bin"]}
    np.testing.assert_allclose(local.compute("frame_embedding", [clip])[0]["value"], fe, atol=1e-5)
    with pytest.raises(WeightsError, match="no weights known"):
        ClipBackbone(pretrained="nonexistent_tag")
    with pytest.raises(WeightsError, match="not found"):
        ClipBackbone(pretrained=str(wdir / "missing.bin"))


def test_clip_preprocessing_protocol():
    from vdeval.backbones.clip import resize_center_crop

    img = np.zeros((1, 40, 80, 3), np.uint8)
    img[:, :, 40:] = 255  # right half white
    x = resize_center_crop(img, 224, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (1, 3, 224, 224)
    # shorter side 40 -> 224, width 448, centre crop keeps x in [112, 336): the edge in the middle
    assert float(x[0, 0, 100, 5]) == pytest.approx(-1.0, abs=1e-3) and float(x[0, 0, 100, 220]) == pytest.approx(1.0, abs=1e-3)
    assert float(x.min()) >= -1.0 - 1e-6 and float(x.max()) <= 1.0 + 1e-6  # clamped like PIL


# ---- RAFT --------------------------------------------------------------------------------------

def test_raft_small_loads_and_gives_forward_backward_flow(wdir):
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones import raft
    from vdeval.backbones.raft import RaftFlow

    torch.manual_seed(0)
    ref = raft_small(weights=None)
    f = wdir / "raft_small.pth"
    torch.save(ref.state_dict(), f)
    weights.install("raft-small-C_T_V2", f, custom=True)  # not the published file: custom
    b = RaftFlow(model="small", iters=2)
    assert torch.equal(b.model.state_dict()["feature_encoder.convnormrelu.0.weight"],
                       ref.state_dict()["feature_encoder.convnormrelu.0.weight"])
    seen = []
    net = b.model
    b.model = lambda a, c, num_flow_updates: seen.append((a, c, num_flow_updates)) or net(a, c, num_flow_updates=num_flow_updates)
    out = b.compute("flow", [ClipInput(_clip(3, 36, 44))])[0]  # not multiples of 8, small: padded and upscaled
    a, c, iters = seen[0]
    assert iters == 2 and a.shape == (4, 3, 144, 176)  # 2 forward + 2 backward pairs; 36x44 upscaled 4x, multiples of 8
    assert -1.0 <= float(a.min()) < -0.9 and 0.9 < float(a.max()) <= 1.0
    assert out["forward"].shape == (2, 36, 44, 2) and out["backward"].shape == (2, 36, 44, 2)
    assert np.isfinite(out["forward"]).all() and out["forward"].dtype == np.float32
    four = ClipInput(_clip(4, 32, 32, seed=3))
    chunked = RaftFlow(model="small", iters=2, batch_size=1).compute("flow", [four])[0]
    whole = RaftFlow(model="small", iters=2, batch_size=8).compute("flow", [four])[0]
    for k in ("forward", "backward"):  # pairs in chunks of one give the same flow as all at once
        np.testing.assert_allclose(chunked[k], whole[k], atol=1e-3)
    # no batch_size on a CPU: about CPU_FORWARD_PAIRS pairs per forward whatever the directions
    # asked, the same flow as all pairs at once; a GPU keeps GPU_BATCH pairs per direction
    seen.clear()
    six = ClipInput(_clip(6, 32, 32, seed=4))
    b.batch_size, b._cpu_default = 99, True  # the default's chunk does not read batch_size
    both = b.compute("flow", [six])[0]
    fwd = b.compute("flow", [six], directions=("forward",))[0]
    assert [len(a) for a, _, _ in seen] == [4, 4, 2, 4, 1]  # 5 pairs: 2+2, 2+2, 1+1; then 4, 1
    ref = RaftFlow(model="small", iters=2, batch_size=8).compute("flow", [six])[0]
    for k in ("forward", "backward"):
        np.testing.assert_allclose(both[k], ref[k], atol=1e-3)
    np.testing.assert_allclose(fwd["forward"], ref["forward"], atol=1e-3)
    assert RaftFlow.unbuilt(model="small").batch_size == raft.CPU_FORWARD_PAIRS
    # larger frames: fewer pairs per CPU forward (about CPU_FORWARD_PIXELS of frames), down to one
    # pair and one direction at a time from 512x320, the same flow arrays
    assert [raft.cpu_pairs_per_forward(h, w) for h, w in ((32, 32), (160, 256), (240, 384), (320, 512), (720, 1280))] == [4, 4, 1, 1, 1]
    sizes = []
    b.model = lambda a, c, num_flow_updates: sizes.append(len(a)) or [torch.zeros(len(a), 2, *a.shape[-2:])]
    for h, w, want in ((160, 256, [4, 2]), (320, 512, [1] * 6)):
        sizes.clear()
        got = b.compute("flow", [ClipInput(_clip(4, h, w))])[0]
        assert sizes == want and got["forward"].shape == got["backward"].shape == (3, h, w, 2)
    sizes.clear()
    b.compute("flow", [ClipInput(_clip(4, 320, 512))], directions=("forward",))
    assert sizes == [1, 1, 1]
    b.model = net
    assert RaftFlow.unbuilt(device="cuda", model="small").batch_size == raft.GPU_BATCH == 8
    assert not RaftFlow.unbuilt(model="small", batch_size=3)._cpu_default
    one = b.compute("flow", [ClipInput(_clip(1))])[0]
    assert one["forward"].shape == (0, 32, 32, 2)
    assert b.label() == "raft@small-C_T_V2"
    with pytest.raises(WeightsError, match="vdeval weights install raft-large-C_T_SKHT_V2"):
        RaftFlow()  # large default weights not installed


def test_raft_padding_round_trip():
    from vdeval.backbones.raft import pad_to_multiple, unpad

    x = torch.arange(2 * 3 * 13 * 21, dtype=torch.float32).view(2, 3, 13, 21)
    p, pads = pad_to_multiple(x)
    assert p.shape[-2:] == (16, 24) and pads == (1, 2, 1, 2)
    assert torch.equal(unpad(p, pads), x)


# ---- DINO --------------------------------------------------------------------------------------

def test_dino_loads_timm_safetensors_and_embeds(wdir):
    import timm
    from safetensors.torch import save_file

    from vdeval.backbones.dino import DinoBackbone

    torch.manual_seed(0)
    ref = timm.create_model("vit_base_patch16_224.dino", pretrained=False, num_classes=0)
    f = wdir / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(f))
    weights.install("dino-vitb16", f)
    b = DinoBackbone()
    assert torch.equal(b.model.state_dict()["cls_token"], ref.state_dict()["cls_token"])
    sizes = []
    b.model.register_forward_pre_hook(lambda mod, args: sizes.append(tuple(args[0].shape)))
    video = _clip(2, 48, 64)
    fe = b.compute("frame_embedding", [ClipInput(video)])[0]["value"]
    assert fe.shape == (2, 768)
    np.testing.assert_allclose(np.linalg.norm(fe, axis=1), 1, atol=1e-5)
    re = b.compute("reference_embedding", [ClipInput(video, reference_image=video.frames[1])])[0]["value"]
    np.testing.assert_allclose(re, fe[1], atol=1e-4)
    assert sizes[0] == (2, 3, 224, 224)
    with pytest.raises(FeatureError, match="no reference image"):
        b.compute("reference_embedding", [ClipInput(video)])


def test_clip_checkpoint_format_detection(tmp_path):
    from safetensors.torch import save_file

    from vdeval.backbones.clip import ClipBackbone

    st, pt = tmp_path / "a.bin", tmp_path / "b.bin"
    save_file({"w": torch.zeros(2)}, str(st))  # safetensors content under a .bin name
    torch.save({"w": torch.zeros(2)}, pt)
    assert ClipBackbone._is_safetensors(st) and not ClipBackbone._is_safetensors(pt)
    assert not ClipBackbone._is_torchscript(pt)


# ---- VBench protocols --------------------------------------------------------------------------

def test_raft_vbench_protocol_fixes_things_weights_and_20_iterations(wdir):
    from torchvision.models.optical_flow import raft_large

    from vdeval import registry
    from vdeval.backbones.raft import RaftFlow

    torch.manual_seed(0)
    f = wdir / "raft_large.pth"
    torch.save(raft_large(weights=None).state_dict(), f)
    weights.install("raft-large-C_T_V1", f, custom=True)
    b = registry.resolve("backbone", "raft_vbench")()
    assert b.options == {"model": "large", "weights_tag": "C_T_V1", "iters": 20, "protocol": "vbench"}
    assert b.label() == "raft@vbench:large-C_T_V1-20it"
    seen = []
    net = b.model
    b.model = lambda a, c, num_flow_updates: seen.append((a.shape, num_flow_updates)) or net(a, c, num_flow_updates=2)
    out = b.compute("flow", [ClipInput(_clip(2, 130, 140))])[0]  # >= 128 px: no upscaling, padded to 136 x 144
    assert seen[0] == ((2, 3, 136, 144), 20) and out["forward"].shape == (1, 130, 140, 2)
    plain = RaftFlow(model="large", weights_tag="C_T_V1")  # same weights, vdeval protocol: 12 iterations
    assert plain.iters == 12 and plain.identity_hash() != b.identity_hash() and plain.label() == "raft@large-C_T_V1"
    with pytest.raises(WeightsError, match="vbench protocol fixes"):
        RaftFlow(protocol="vbench", iters=12)
    with pytest.raises(WeightsError, match="vbench protocol fixes"):
        RaftFlow(protocol="vbench", model="small")


def test_dino_vbench_transform_and_position_embeddings():
    """VBench's dino_transform(224) and DINO's interpolate_pos_encoding, written out here (fast, no model)."""
    import math

    import torch.nn.functional as F
    import torchvision.transforms as T

    from vdeval.backbones.dino import dino_pos_embed, vbench_transform

    video = _clip(2, 90, 150, seed=4)
    x = torch.Tensor(video.frames).permute(0, 3, 1, 2)  # VBench's load_video: float32 0-255
    x = T.Resize(size=224, antialias=False)(x)  # bilinear in float32: no rounding
    x = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(x.float().div(255.0))
    got = vbench_transform(video.frames)
    assert tuple(got.shape) == (2, 3, 224, 373)  # int(224 * 150 / 90), no crop
    torch.testing.assert_close(got, x, atol=0, rtol=0)
    pos = torch.randn(1, 197, 8)
    w0, h0 = 224 // 16 + 0.1, 373 // 16 + 0.1  # DINO: B, nc, w, h = x.shape, so w0 counts rows
    pp = F.interpolate(pos[:, 1:].reshape(1, 14, 14, 8).permute(0, 3, 1, 2), scale_factor=(w0 / math.sqrt(196), h0 / math.sqrt(196)),
                       mode="bicubic")
    expected = torch.cat((pos[:, :1], pp.permute(0, 2, 3, 1).reshape(1, -1, 8)), dim=1)
    assert expected.shape[1] == 1 + 14 * 23
    torch.testing.assert_close(dino_pos_embed(pos, 224, 373), expected, atol=0, rtol=0)
    assert dino_pos_embed(pos, 224, 224) is pos  # DINO's shortcut for its own size


@pytest.mark.slow
def test_dino_vbench_protocol_matches_vbench_transform_and_dino_forward(wdir):
    """Parity with VBench's dino_transform(224) and DINO's own ViT forward, both written out here."""
    import math

    import timm
    import torch.nn.functional as F
    import torchvision.transforms as T
    from safetensors.torch import save_file

    from vdeval import registry

    torch.manual_seed(0)
    ref = timm.create_model("vit_base_patch16_224.dino", pretrained=False, num_classes=0)
    torch.nn.init.normal_(ref.pos_embed, std=0.5)  # position embeddings that matter
    f = wdir / "model.safetensors"
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(f))
    weights.install("dino-vitb16", f)
    b = registry.resolve("backbone", "dino_vbench")()
    assert b.label() == "dino@vitb16/vbench" and b.identity()["options"] == {"protocol": "vbench"}
    b.model.blocks, ref.blocks = b.model.blocks[:2], ref.blocks[:2]  # the protocol is under test, not depth: keep it fast
    video = _clip(2, 90, 150, seed=4)
    got = b.compute("frame_embedding", [ClipInput(video)])[0]["value"]

    # VBench: Compose([Resize(size=224, antialias=False), x.float().div(255), Normalize(...)]) on load_video's
    # torch.Tensor(buffer).permute(0, 3, 1, 2): float32 T x C x H x W
    x = torch.Tensor(video.frames).permute(0, 3, 1, 2)
    x = T.Resize(size=224, antialias=False)(x)
    assert x.dtype == torch.float32 and tuple(x.shape[-2:]) == (224, 373)  # int(224 * 150 / 90), no crop
    x = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(x.float().div(255.0))
    # DINO's VisionTransformer.prepare_tokens + interpolate_pos_encoding (B, nc, w, h = x.shape), then blocks, norm, CLS
    _, _, w, h = x.shape
    tok = ref.patch_embed.proj(x).flatten(2).transpose(1, 2)
    tok = torch.cat((ref.cls_token.expand(len(x), -1, -1), tok), dim=1)
    n = ref.pos_embed.shape[1] - 1
    w0, h0 = w // 16 + 0.1, h // 16 + 0.1
    pp = F.interpolate(ref.pos_embed[:, 1:].reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), -1).permute(0, 3, 1, 2),
                       scale_factor=(w0 / math.sqrt(n), h0 / math.sqrt(n)), mode="bicubic")
    assert int(w0) == pp.shape[-2] and int(h0) == pp.shape[-1]
    pos = torch.cat((ref.pos_embed[:, :1], pp.permute(0, 2, 3, 1).reshape(1, -1, tok.shape[-1])), dim=1)
    with torch.no_grad():
        out = ref.norm(ref.blocks(tok + pos))[:, 0]
    expected = F.normalize(out, dim=-1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_dino_vbench_input_full_size_float32_streamed(wdir, tmp_path):
    """A 600 x 840 file (short side over the 448 px cap used before): the ViT gets VBench's
    load_video + dino_transform(224) of the full-size frames, two at a time."""
    import timm
    import torchvision.transforms as T
    from safetensors.torch import save_file

    from helpers import featurize_recording, large_clip_file, vbench_load_video
    from vdeval import registry

    f = wdir / "model.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("vit_base_patch16_224.dino", pretrained=False,
                                                                num_classes=0).state_dict().items()}, str(f))
    weights.install("dino-vitb16", f)
    path = large_clip_file(tmp_path / "big.mp4", frames=3)
    b = registry.resolve("backbone", "dino_vbench")()
    assert b.input_spec("frame_embedding").max_short_side is None and b.streams_input
    seen = featurize_recording(path, b, "frame_embedding", b, "forward_whole_frame", lambda x: torch.ones(len(x), 8))
    assert [len(x) for x in seen] == [2, 1]
    images = vbench_load_video(path)
    want = T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(T.Resize(size=224, antialias=False)(images).float().div(255.0))
    assert tuple(want.shape[-2:]) == (224, 313)  # int(224 * 840 / 600)
    torch.testing.assert_close(torch.cat(seen), want, atol=0, rtol=0)
