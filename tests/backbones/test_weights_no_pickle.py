"""Weights are data, never code (issue 15, item 2): `vdeval weights install clip-vit-b-32-openai
file.pt --custom` followed by loading CLIP ran torch.load(weights_only=False), so a crafted file
ran its payload. Every loader now refuses pickled code; TorchScript only from a published file."""
from __future__ import annotations

import dataclasses
import os
import warnings

import pytest
import torch

from vdeval.backbones import weights
from vdeval.errors import WeightsError


class _Payload:
    """Unpickling this calls os.system: what a crafted checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def wdir(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    return tmp_path


def test_crafted_custom_clip_weights_are_refused_not_run(wdir):
    from vdeval.backbones.clip import ClipBackbone

    marker = wdir / "pwned"
    f = wdir / "ViT-B-32.pt"
    torch.save({"state_dict": _Payload(marker)}, f)
    weights.install("clip-vit-b-32-openai", f, custom=True)
    with pytest.raises(WeightsError, match="does not load into open_clip"):
        ClipBackbone(pretrained="openai")
    assert not marker.exists(), "the pickle payload ran"


def _tiny_script(path):
    class M(torch.nn.Module):
        def forward(self, x: torch.Tensor):
            return x

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(M()).save(str(path))


def test_custom_torchscript_clip_is_refused(wdir):
    from vdeval.backbones.clip import ClipBackbone

    f = wdir / "ViT-B-32.pt"
    _tiny_script(f)
    weights.install("clip-vit-b-32-openai", f, custom=True)
    with pytest.raises(WeightsError, match="TorchScript archive that is not a published OpenAI file"):
        ClipBackbone(pretrained="openai")


@pytest.mark.slow
def test_published_torchscript_clip_loads_its_tensors(wdir, monkeypatch):
    # a stand-in for OpenAI's ViT-B-32.pt (a scripted open_clip model); the table is told its hash
    import open_clip

    from vdeval.backbones.clip import ClipBackbone
    from vdeval.store import sha256_file

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        ref = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
        f = wdir / "ViT-B-32.pt"
        torch.jit.script(ref).save(str(f))
    name = "clip-vit-b-32-openai"
    monkeypatch.setitem(weights.ENTRIES, name, dataclasses.replace(weights.ENTRIES[name], sha256=sha256_file(f)))
    weights.install(name, f)
    b = ClipBackbone(pretrained="openai")
    assert torch.equal(b.model.state_dict()["visual.conv1.weight"], ref.state_dict()["visual.conv1.weight"])


@pytest.mark.parametrize("module,name,attr", [("vdeval.backbones.raft", "raft-small-C_T_V2", "RaftFlow"),
                                              ("vdeval.backbones.dino", "dino-vitb16", "DinoBackbone")])
def test_other_published_backbones_refuse_pickled_code(wdir, module, name, attr, monkeypatch):
    import importlib

    pytest.importorskip("timm") if "dino" in module else None
    marker = wdir / "pwned"
    e = weights.ENTRIES[name]
    f = wdir / e.filename.replace(".safetensors", ".pt")
    torch.save({"x": _Payload(marker)}, f)
    monkeypatch.setitem(weights.ENTRIES, name, dataclasses.replace(e, filename=f.name))
    weights.install(name, f, custom=True)
    cls = getattr(importlib.import_module(module), attr)
    kwargs = {"model": "small"} if "raft" in module else {}
    with pytest.raises(WeightsError):
        cls(**kwargs)
    assert not marker.exists()
