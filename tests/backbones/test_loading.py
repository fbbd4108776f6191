"""Networks built on the meta device with the checkpoint's tensors assigned (one copy of the
weights while loading) give the same parameters, buffers and features as the usual way (random
init, then load_state_dict's copy), and refuse the same bad checkpoints."""
import json

import numpy as np
import pytest
import torch

from vdeval.backbones import loading, weights
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.world import sample_clip


def _both(monkeypatch, make):
    """make() built the usual way and on the meta device."""
    monkeypatch.setattr(loading, "ASSIGN", False)
    usual = make()
    monkeypatch.setattr(loading, "ASSIGN", True)
    return usual, make()


def _same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = dict(a.named_buffers()), dict(b.named_buffers())  # non-persistent buffers included
    sa.update(a.named_parameters())
    sb.update(b.named_parameters())
    assert sa.keys() == sb.keys()
    for k in sa:
        assert not sb[k].is_meta and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
        assert sa[k].requires_grad == sb[k].requires_grad, k


def test_raft_and_musiq_load_the_same_on_meta(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones.musiq import MusiqBackbone, MusiqNet
    from vdeval.backbones.raft import RaftFlow

    monkeypatch.setenv(weights.ENV, str(tmp_path / "w"))
    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / "r.pth")
    weights.install("raft-small-C_T_V2", tmp_path / "r.pth", custom=True)
    usual, meta = _both(monkeypatch, lambda: RaftFlow(model="small", iters=2))
    _same_state(usual.model, meta.model)
    clip = ClipInput(sample_clip(0).video)
    a, b = usual.compute("flow", [clip])[0], meta.compute("flow", [clip])[0]
    assert all(np.array_equal(a[d], b[d]) for d in a)

    torch.save(MusiqNet().state_dict(), tmp_path / "m.pth")
    weights.install("musiq-spaq", tmp_path / "m.pth", custom=True)
    usual, meta = _both(monkeypatch, lambda: MusiqBackbone())
    _same_state(usual.net, meta.net)


def test_a_checkpoint_missing_a_tensor_is_refused_on_meta_too(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones.raft import RaftFlow

    monkeypatch.setenv(weights.ENV, str(tmp_path / "w"))
    state = raft_small(weights=None).state_dict()
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / "r.pth")
    weights.install("raft-small-C_T_V2", tmp_path / "r.pth", custom=True)
    for assign in (False, True):
        monkeypatch.setattr(loading, "ASSIGN", assign)
        with pytest.raises(WeightsError, match="does not load into torchvision raft_small"):
            RaftFlow(model="small")


def test_clip_loads_the_same_on_meta_with_its_causal_mask(tmp_path, monkeypatch):
    """open_clip's load_checkpoint (key adaptation) feeds our assignment; the text tower's causal
    mask, a non-persistent buffer no checkpoint holds, is made as open_clip makes it."""
    import open_clip

    from vdeval.backbones.clip import ClipBackbone

    cfg = {"embed_dim": 64, "vision_cfg": {"image_size": 224, "layers": 1, "width": 64, "head_width": 64, "patch_size": 32},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 1, "layers": 1}}
    (tmp_path / "TinyLoad.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "TinyLoad.json")
    torch.manual_seed(0)
    ckpt = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("TinyLoad", pretrained=None).state_dict(), ckpt)
    usual, meta = _both(monkeypatch, lambda: ClipBackbone(model="TinyLoad", pretrained=str(ckpt)))
    _same_state(usual.model, meta.model)
    assert "load_state_dict" not in vars(meta.model)  # open_clip's hook removed after loading
    clip = ClipInput(sample_clip(1).video, prompt="a red square")
    for kind in ("frame_embedding", "text_embedding"):
        assert np.array_equal(usual.compute(kind, [clip])[0]["value"], meta.compute(kind, [clip])[0]["value"])
