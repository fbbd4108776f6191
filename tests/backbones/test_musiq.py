"""MUSIQ (imaging_quality's published tier): stand-in weights at the released size and key set,
loaded through the weights manager; parity with pyiqa's own MUSIQ module (its source file loaded on
its own, pyiqa not installed) under VBench's imaging_quality preprocessing written out here."""
import importlib.util
import os
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vdeval.backbones import weights
from vdeval.backbones.musiq import MusiqBackbone, MusiqNet, hashed_positions, multiscale_tokens, vbench_longer
from vdeval.errors import WeightsError
from vdeval.features import ClipFeatures, ClipInput
from vdeval.metrics.imaging_quality import ImagingQuality
from vdeval.video import Video

PYIQA = Path(os.environ.get("PYIQA_SRC", "/tmp/pyiqa_x/pyiqa"))

# pyiqa's MUSIQ state dict (MUSIQ(pretrained=False, num_class=1) defaults: hidden 384, mlp 1152, 14
# layers, 3 scales, 10x10 grid), listed from archs/musiq_arch.py; the released koniq / spaq files hold these.
BLOCK = {"norm1.weight": (384,), "norm1.bias": (384,), "norm2.weight": (384,), "norm2.bias": (384,),
         **{f"attention.{p}.weight": (384, 384) for p in ("query", "key", "value", "out")},
         **{f"attention.{p}.bias": (384,) for p in ("query", "key", "value", "out")},
         "mlp.fc1.weight": (1152, 384), "mlp.fc1.bias": (1152,), "mlp.fc2.weight": (384, 1152), "mlp.fc2.bias": (384,)}
RELEASED = {
    "conv_root.weight": (64, 3, 7, 7), "gn_root.weight": (64,), "gn_root.bias": (64,),
    "block1.conv1.weight": (64, 64, 1, 1), "block1.gn1.weight": (64,), "block1.gn1.bias": (64,),
    "block1.conv2.weight": (64, 64, 3, 3), "block1.gn2.weight": (64,), "block1.gn2.bias": (64,),
    "block1.conv3.weight": (256, 64, 1, 1), "block1.gn3.weight": (256,), "block1.gn3.bias": (256,),
    "block1.conv_proj.weight": (256, 64, 1, 1), "block1.gn_proj.weight": (256,), "block1.gn_proj.bias": (256,),
    "embedding.weight": (384, 16384), "embedding.bias": (384,),
    "transformer_encoder.posembed_input.position_emb": (1, 100, 384),
    "transformer_encoder.scaleembed_input.scale_emb": (3, 384),
    "transformer_encoder.cls": (1, 1, 384),
    "transformer_encoder.encoder_norm.weight": (384,), "transformer_encoder.encoder_norm.bias": (384,),
    **{f"transformer_encoder.transformer.encoderblock_{i}.{k}": s for i in range(14) for k, s in BLOCK.items()},
    "head.weight": (1, 384), "head.bias": (1,),
}


def random_state(seed: int = 0) -> dict:
    """Random weights in the released format; norms and embeddings away from their init so they matter."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in RELEASED.items():
        t = torch.randn(shape, generator=g)
        if k.endswith(".weight") and len(shape) >= 2:
            t = t / shape[-1] ** 0.5 if len(shape) == 2 else t * 0.1
        elif "norm" in k or ".gn" in k or k.startswith("gn_"):
            t = (1.0 + 0.1 * t) if k.endswith("weight") else 0.1 * t
        else:
            t = 0.1 * t
        out[k] = t
    return out


@pytest.fixture(scope="module")
def state():
    return random_state()


@pytest.fixture
def installed(state, tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    f = tmp_path / "musiq_spaq_ckpt-358bb6af.pth"
    torch.save(state, f)
    weights.install("musiq-spaq", f, custom=True)
    return f


def test_released_keys_and_shapes():
    assert {k: tuple(v.shape) for k, v in MusiqNet().state_dict().items()} == RELEASED


def test_hashed_positions_and_token_layout():
    # 3 patch rows on a 10-row grid: rows 0, 3, 6 (nearest: floor(i * 10 / 3)); 16 columns repeat indices
    assert hashed_positions(3, 1).tolist() == [0, 30, 60]
    assert hashed_positions(1, 16).tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9]
    img = torch.ones(1, 3, 40, 70)
    patches, spatial, scale, mask = multiscale_tokens(img)
    # 49 + 144 padded tokens for the 224 / 384 scales, then 2 x 3 patches of the 40 x 70 frame itself
    assert patches.shape == (1, 49 + 144 + 6, 3 * 32 * 32)
    assert mask[0, :49].sum() == 7 * 4 and mask[0, 49:193].sum() == 12 * 7 and mask[0, 193:].sum() == 6
    assert scale[0, 193:].tolist() == [2] * 6 and scale[0, 49:193].max() == 1
    # TF SAME padding of the frame scale to 64 x 96: 12 rows above, 12 below, 13 columns left, 13 right
    first = patches[0, 193].view(3, 32, 32)
    assert first[:, :12].eq(0).all() and first[:, :, :13].eq(0).all() and first[:, 12:, 13:].eq(1).all()
    last = patches[0, -1].view(3, 32, 32)
    assert last[:, 20:].eq(0).all() and last[:, :, 19:].eq(0).all() and last[:, :20, :19].eq(1).all()


def test_vbench_longer_resize():
    frames = np.random.default_rng(0).integers(0, 256, (2, 300, 720, 3), dtype=np.uint8)
    x = vbench_longer(frames)
    assert x.shape == (2, 3, int(512 / 720 * 300), int(512 / 720 * 720)) and x.dtype == torch.float32
    # VBench: load_video's torch.Tensor(buffer) is float32 0-255; Resize on it, no rounding back to uint8
    from torchvision import transforms
    want = transforms.Resize(size=(213, 512), antialias=False)(torch.Tensor(frames).permute(0, 3, 1, 2)) / 255.
    torch.testing.assert_close(x, want, atol=0, rtol=0)
    assert not torch.equal(x * 255, (x * 255).round())
    small = vbench_longer(frames[:, :100, :200])
    assert torch.equal(small, torch.from_numpy(frames[:, :100, :200]).permute(0, 3, 1, 2).float() / 255)


def test_backbone_loads_through_weights_manager(installed, state):
    b = MusiqBackbone()
    assert b.label() == "musiq@spaq" and b.tier == "published"
    assert b.weights_sha256() == {"musiq_spaq_ckpt-358bb6af.pth": weights.status("musiq-spaq")["sha256"]}
    assert b.input_spec("frame_score").max_short_side is None and b.streams_input  # full size, as VBench decodes
    assert MusiqBackbone(max_short_side=512).input_spec("frame_score").max_short_side == 512  # opt-in, not VBench's
    assert all(torch.equal(v, state[k]) for k, v in b.net.state_dict().items())


def test_metric_on_musiq_features():
    video = Video(np.zeros((3, 8, 8, 3), np.uint8))
    cf = ClipFeatures("c", video)
    cf.features[("frame_score", "musiq")] = {"value": np.asarray([40.0, 50.0, 66.0], np.float32), "clip": np.asarray([52.0], np.float32)}
    m = ImagingQuality(backbone="musiq")
    assert m.higher_is_better and not ImagingQuality().higher_is_better and m.describe()["higher_is_better"]
    got = m.score_clip(cf)
    assert got.value == pytest.approx(0.52) and got.curve == pytest.approx([0.40, 0.50, 0.66]) and got.note is None


@pytest.mark.slow
def test_backbone_scores_frames(installed):
    """Real-size forward passes (several seconds each on a busy 2-core CPU)."""
    rng = np.random.default_rng(1)
    video = Video(rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8))
    b = MusiqBackbone()  # full-size decode: VBench's exact path
    assert b.input_spec("frame_score").max_short_side is None
    f = b.compute("frame_score", [ClipInput(video)])[0]
    assert f["value"].shape == (2,) and np.isfinite(f["value"]).all()
    assert f["clip"][0] == pytest.approx(f["value"].mean(), rel=1e-6)
    assert b.batch_size == 1  # the CPU default: one frame per forward
    both = MusiqBackbone(batch_size=8).compute("frame_score", [ClipInput(video)])[0]["value"]  # batch-invariant
    np.testing.assert_allclose(both, f["value"], rtol=1e-5, atol=1e-5)


def test_batch_defaults_by_device(installed):
    from vdeval.backbones import musiq

    # a CPU gets the batch measured fastest there (benchmarks/cpu_batch_sizes.py); a GPU keeps 8
    assert MusiqBackbone.unbuilt().batch_size == musiq.CPU_BATCH < musiq.GPU_BATCH
    assert MusiqBackbone.unbuilt(device="cuda").batch_size == musiq.GPU_BATCH == 8
    assert MusiqBackbone.unbuilt(batch_size=2).batch_size == 2


def test_missing_and_wrong_weights(tmp_path, monkeypatch, state):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "w"))
    with pytest.raises(WeightsError, match="vdeval weights install musiq-spaq") as e:
        MusiqBackbone()
    assert "\n" not in str(e.value)
    with pytest.raises(WeightsError, match="unknown checkpoint"):
        MusiqBackbone(checkpoint="ava")
    bad = tmp_path / "bad.pth"
    torch.save({"head.0.weight": torch.zeros(10, 384), "head.0.bias": torch.zeros(10)}, bad)  # an AVA-style head
    weights.install("musiq-koniq", bad, custom=True)
    with pytest.raises(WeightsError, match="not a one-output MUSIQ checkpoint.*block1"):
        MusiqBackbone(checkpoint="koniq")
    class Payload:  # what a crafted checkpoint does on unpickling: run a command
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    torch.save({"head.weight": Payload()}, bad)
    weights.install("musiq-koniq", bad, custom=True)
    with pytest.raises(WeightsError, match="not a PyTorch state dict"):
        MusiqBackbone(checkpoint="koniq")
    assert not (tmp_path / "pwned").exists(), "the pickle payload ran"
    with warnings.catch_warnings():  # torch.jit.script's deprecation notice
        warnings.simplefilter("ignore")
        torch.jit.script(torch.nn.Identity()).save(str(bad))  # TorchScript may run code: refused too
    weights.install("musiq-koniq", bad, custom=True)
    with pytest.raises(WeightsError, match="is a TorchScript archive"):
        MusiqBackbone(checkpoint="koniq")
    bad.write_bytes(b"not a checkpoint")
    weights.install("musiq-koniq", bad, custom=True)
    with pytest.raises(WeightsError, match="not a PyTorch state dict"):
        MusiqBackbone(checkpoint="koniq")


def _load(name: str, path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)
    spec.loader.exec_module(mod)
    return mod


def pyiqa_musiq(monkeypatch):
    """pyiqa's archs/musiq_arch.py with its own imports (padding, multiscale utils, arch_util, registry)
    loaded from pyiqa's files; only the download helper (network) and the package __init__s are stubbed."""
    for pkg in ("pyiqa", "pyiqa.archs", "pyiqa.data", "pyiqa.utils", "pyiqa.matlab_utils"):
        mod = types.ModuleType(pkg)
        mod.__path__ = [str(PYIQA / pkg.partition(".")[2].replace(".", "/"))]
        monkeypatch.setitem(sys.modules, pkg, mod)
    dl = types.ModuleType("pyiqa.utils.download_util")
    dl.load_file_from_url = lambda *a, **k: pytest.fail("no downloads in tests")
    monkeypatch.setitem(sys.modules, "pyiqa.utils.download_util", dl)
    padding = _load("pyiqa.matlab_utils.padding", PYIQA / "matlab_utils" / "padding.py", monkeypatch)
    sys.modules["pyiqa.matlab_utils"].ExactPadding2d = padding.ExactPadding2d
    sys.modules["pyiqa.matlab_utils"].exact_padding_2d = padding.exact_padding_2d
    _load("pyiqa.utils.registry", PYIQA / "utils" / "registry.py", monkeypatch)
    _load("pyiqa.data.multiscale_trans_util", PYIQA / "data" / "multiscale_trans_util.py", monkeypatch)
    _load("pyiqa.archs.constants", PYIQA / "archs" / "constants.py", monkeypatch)
    _load("pyiqa.archs.arch_util", PYIQA / "archs" / "arch_util.py", monkeypatch)
    return _load("pyiqa.archs.musiq_arch", PYIQA / "archs" / "musiq_arch.py", monkeypatch)


def vbench_imaging_quality(model, frames: np.ndarray) -> float:
    """VBench's technical_quality for one video, preprocess mode 'longer' (its default), before / 100."""
    from torchvision import transforms

    images = torch.Tensor(frames).permute(0, 3, 1, 2)  # load_video: torch.Tensor(buffer), float32 T x C x H x W
    _, _, h, w = images.size()
    if max(h, w) > 512:
        scale = 512. / max(h, w)
        images = transforms.Resize(size=(int(scale * h), int(scale * w)), antialias=False)(images)
    images = images / 255.
    acc = 0.
    for i in range(len(images)):
        acc += float(model(images[i].unsqueeze(0)))
    return acc / len(images)


needs_pyiqa = pytest.mark.skipif(not (PYIQA / "archs" / "musiq_arch.py").is_file(),
                                 reason=f"pyiqa's source is not unpacked at {PYIQA} (set PYIQA_SRC to its pyiqa/ folder)")


@needs_pyiqa
@pytest.mark.parametrize("size", [(40, 56), (70, 530)])
def test_parity_with_pyiqa_small_encoder(monkeypatch, size):
    """Same code paths at a 2-layer, 48-wide encoder (pyiqa's MUSIQ takes those sizes): exact to 1e-5."""
    arch = pyiqa_musiq(monkeypatch)
    torch.manual_seed(3)
    theirs = arch.MUSIQ(pretrained=False, hidden_size=48, mlp_dim=96, num_heads=6, num_layers=2)
    for p in theirs.parameters():  # move norms, embeddings and the class token off their init values
        torch.nn.init.normal_(p, 0.0, 0.2) if p.dim() < 2 or p.shape[0] == 1 else None
    ours = MusiqNet(dim=48, hidden=96, heads=6, layers=2)
    ours.load_state_dict(theirs.state_dict())  # the same parameter names
    theirs.training = False
    frames = np.random.default_rng(2).integers(0, 256, (2, *size, 3), dtype=np.uint8)
    frames[1] = np.linspace(0, 255, size[1], dtype=np.uint8)[None, :, None]  # a smooth ramp beside the noise
    x = vbench_longer(frames)
    with torch.no_grad():
        got, want = ours.eval()(x), theirs(x).reshape(-1)
    assert got.std() > 1e-3  # the two frames score differently: the inputs matter
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


@needs_pyiqa
@pytest.mark.slow
@pytest.mark.parametrize("size", [(40, 56), (130, 600)])
def test_parity_with_pyiqa(installed, state, monkeypatch, size):
    """The backbone at the released size against VBench's imaging_quality loop around pyiqa's MUSIQ."""
    arch = pyiqa_musiq(monkeypatch)
    theirs = arch.MUSIQ(pretrained=False)  # VBench: MUSIQ(pretrained_model_path=...), one-output head
    theirs.load_state_dict(state)
    theirs.training = False  # what VBench sets (on the top module only)
    frames = np.random.default_rng(2).integers(0, 256, (2, *size, 3), dtype=np.uint8)
    with torch.no_grad():
        want = vbench_imaging_quality(theirs, frames)
    f = MusiqBackbone().compute("frame_score", [ClipInput(Video(frames))])[0]
    assert float(f["clip"][0]) == pytest.approx(want, abs=1e-5)


def test_vbench_input_full_size_float32_streamed(installed, tmp_path):
    """A 600 x 840 file (short side over the 512 px cap used before): the network gets VBench's
    load_video + 'longer' transform of the full-size frames, two frames at a time."""
    from torchvision import transforms

    from helpers import featurize_recording, large_clip_file, vbench_load_video

    path = large_clip_file(tmp_path / "big.mp4", frames=5)
    b = MusiqBackbone()
    b.net = torch.nn.Identity()
    seen = featurize_recording(path, b, "frame_score", b, "net", lambda x: x.mean((1, 2, 3)))
    assert [len(x) for x in seen] == [2, 2, 1]  # streamed: never the whole clip at once
    images = vbench_load_video(path)
    want = transforms.Resize(size=(int(512 / 840 * 600), int(512 / 840 * 840)), antialias=False)(images) / 255.
    torch.testing.assert_close(torch.cat(seen), want, atol=0, rtol=0)
