"""AMT-S (backbone `amt`): the released checkpoint format loads through the weights manager, the
network has the released key names and shapes, forward is deterministic with the interpolated frame's
shape, and known answers with stand-in weights whose flow and residual heads are zero (the network
then blends the two frames with its 0.5 mask)."""
import numpy as np
import pytest
import torch

from vdeval.backbones import weights
from vdeval.errors import FeatureError, VdevalError, WeightsError
from vdeval.features import ClipFeatures, ClipInput
from vdeval.video import Video

# a few keys of the released state dict with the shapes AMT's networks/AMT-S.py gives them
RELEASED = {
    "feat_encoder.conv1.weight": (32, 3, 7, 7), "feat_encoder.layer2.0.downsample.0.weight": (64, 32, 1, 1),
    "feat_encoder.conv2.weight": (84, 96, 1, 1), "encoder.pyramid4.1.1.weight": (56,),
    "decoder4.convblock.0.0.weight": (112, 113, 3, 3), "decoder4.convblock.1.conv2.0.weight": (20, 20, 3, 3),
    "decoder3.convblock.2.weight": (132, 36, 4, 4), "decoder1.convblock.2.weight": (60, 24, 4, 4),
    "update4.convc1.weight": (64, 392, 1, 1), "update3.gru.0.weight": (76, 104, 3, 3),
    "update2.flow_head.2.weight": (4, 76, 3, 3), "comb_block.1.weight": (18,), "comb_block.2.weight": (3, 18, 3, 3),
}


def _standin(tmp_path, monkeypatch, zero_heads=False):
    """Random AMT-S weights saved as the release is ({"state_dict": ...} torch pickle), installed as amt-s."""
    from vdeval.backbones.amt import AMTS

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    torch.manual_seed(0)
    m = AMTS()
    sd = m.state_dict()
    if zero_heads:  # every flow, residual and mask output zero: flows 0, mask sigmoid(0) = 0.5
        for k in ("decoder4", "decoder3", "decoder2"):
            sd[f"{k}.convblock.2.weight"][:, :4] = 0
            sd[f"{k}.convblock.2.bias"][:4] = 0
        for k in ("decoder1.convblock.2", "update4.flow_head.2", "update3.flow_head.2", "update2.flow_head.2", "comb_block.2"):
            sd[f"{k}.weight"].zero_()
            sd[f"{k}.bias"].zero_()
    f = tmp_path / "amt-s.pth"
    torch.save({"state_dict": sd}, f)
    weights.install("amt-s", f, custom=True)
    return sd


def test_released_key_names_shapes_and_size():
    from vdeval.backbones.amt import AMTS

    m = AMTS()
    sd = m.state_dict()
    assert {k: tuple(sd[k].shape) for k in RELEASED} == RELEASED
    assert round(sum(p.numel() for p in m.parameters()) / 1e6, 1) == 3.0  # the paper's AMT-S: 3.0 M parameters


def test_loads_the_released_format_forward_is_deterministic(tmp_path, monkeypatch):
    from vdeval.backbones.amt import AMTBackbone

    _standin(tmp_path, monkeypatch)
    b = AMTBackbone()
    assert set(b.weights_sha256()) == {"amt-s.pth"} and b.tier == "published"
    v = Video(np.random.default_rng(0).integers(0, 256, (5, 113, 120, 3), dtype=np.uint8))  # padded to 128
    a = b.compute("midframes_even", [ClipInput(v)])[0]["value"]
    assert a.shape == (2, 113, 120, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b.compute("midframes_even", [ClipInput(v)])[0]["value"])
    with pytest.raises(FeatureError, match="too small for AMT-S"):
        b.compute("midframes_even", [ClipInput(Video(v.frames[:, :64]))])


def test_zero_heads_blend_the_neighbours_known_answer(tmp_path, monkeypatch):
    from vdeval.backbones.amt import AMTBackbone

    _standin(tmp_path, monkeypatch, zero_heads=True)
    rng = np.random.default_rng(1)
    f = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    same = Video(np.stack([f[0], f[1], f[0]]))
    b = AMTBackbone()
    mids = b.compute("midframes_even", [ClipInput(Video(f)), ClipInput(same)])
    want = (f[0].astype(float) + f[2]) / 2
    # (x * 255) truncated to uint8, as VBench's tensor2img: within one level below the exact blend
    d = want - mids[0]["value"][0]
    assert d.min() >= -1e-3 and d.max() < 1.0 + 1e-3
    d = f[0].astype(float) - mids[1]["value"][0]  # identical neighbours: the same frame
    assert d.min() >= 0 and d.max() <= 1 and (d == 0).mean() > 0.5


def test_bad_checkpoints_say_what_to_do(tmp_path, monkeypatch):
    from vdeval.backbones.amt import AMTBackbone

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    with pytest.raises(WeightsError, match="vdeval weights install amt-s"):
        AMTBackbone()
    f = tmp_path / "amt-s.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, f)
    weights.install("amt-s", f, custom=True)
    with pytest.raises(WeightsError, match="not a released AMT-S checkpoint"):
        AMTBackbone()


def test_motion_smoothness_with_amt_records_its_interpolator(tmp_path, monkeypatch):
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.metrics.motion_smoothness import MotionSmoothness

    _standin(tmp_path, monkeypatch, zero_heads=True)
    m = MotionSmoothness(backbone="amt")
    assert m.describe()["params"] == {"interpolator": "amt-s"}
    assert MotionSmoothness(backbone="dis").describe()["params"] == {"interpolator": "flow-splat-midpoint"}
    with pytest.raises(VdevalError, match="does not run on backbone 'amt'"):
        MotionSmoothness(backbone="amt", interpolator="flow-splat-midpoint")
    f = np.zeros((5, 128, 128, 3), np.uint8)
    f[0::2] = 200  # even frames 200, odd frames 0: the blend is 200, so d = 200 (or 199 after truncation)
    cf = ClipFeatures("c", Video(f))
    featurize([cf], m.requests(), BackbonePool())
    s = m.score_clip(cf)
    assert len(s.curve) == 2 and all(199 <= d <= 200 for d in s.curve)
    assert s.value == pytest.approx((255 - np.mean(s.curve)) / 255)


def test_pairs_batched_give_the_midpoints_of_one_pair_at_a_time():
    """VBench runs AMT-S one pair at a time; vdeval batches pairs (pairs_per_batch). The network is
    per-sample, so midpoints agree up to float round-off, which VBench's truncation to uint8 can
    turn into a flip of one level on a few pixels."""
    from vdeval.backbones.amt import AMTS, interpolate_midframes, pairs_per_batch

    torch.manual_seed(0)
    m = AMTS().eval()
    rng = np.random.default_rng(0)
    h, w = 128, 160
    base = np.repeat(np.repeat(rng.integers(0, 256, (h // 4 + 4, w // 4 + 8, 3), dtype=np.uint8), 4, 0), 4, 1)
    f = np.stack([base[i:i + h, 2 * i:2 * i + w] for i in range(9)])  # 4 even pairs, moving
    one = interpolate_midframes(m, f, batch=1)
    assert pairs_per_batch(h, w) >= 4  # all four in one forward
    batched = interpolate_midframes(m, f)
    d = np.abs(one.astype(int) - batched.astype(int))
    assert d.max() <= 1 and (d > 0).mean() < 1e-4
    assert pairs_per_batch(720, 1280, device="cuda") == 1 and pairs_per_batch(160, 256, device="cuda") == 8
    # a CPU batches only small frames, where it pays (2 pairs at 256x160, one from 384x240 up)
    assert [pairs_per_batch(h, w) for h, w in ((128, 160), (160, 256), (240, 384), (320, 512), (720, 1280))] == [4, 2, 1, 1, 1]
