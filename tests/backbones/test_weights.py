import json
import os

import pytest
import typer
from typer.testing import CliRunner

from vdeval.backbones import weights
from vdeval.errors import UnknownNameError, WeightsError
from vdeval.store import sha256_file


@pytest.fixture
def wdir(tmp_path, monkeypatch):
    d = tmp_path / "weights"
    monkeypatch.setenv(weights.ENV, str(d))
    return d


def test_weights_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv(weights.ENV, raising=False)
    assert weights.weights_dir() == weights.Path.home() / ".cache" / "vdeval" / "weights"
    monkeypatch.setenv(weights.ENV, str(tmp_path))
    assert weights.weights_dir() == tmp_path
    assert weights.path_of("i3d") == tmp_path / "i3d" / "i3d_torchscript.pt"


def test_table_has_every_published_backbone_and_known_hashes():
    backbones = {e.backbone for e in weights.ENTRIES.values()}
    assert backbones == {"i3d", "clip", "raft", "dino", "laion_aesthetic", "musiq", "amt", "face", "videomae"}
    # OpenAI publishes the full sha256 in its URL; torchvision a prefix in the file name
    e = weights.ENTRIES["clip-vit-b-32-openai"]
    assert e.sha256 and e.sha256 in e.source and len(e.sha256) == 64
    r = weights.ENTRIES["raft-large-C_T_SKHT_V2"]
    assert r.sha256_prefix and r.filename.endswith(f"-{r.sha256_prefix}.pth")
    from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights

    assert Raft_Large_Weights.C_T_SKHT_V2.url.endswith(r.filename)
    assert Raft_Small_Weights.C_T_V2.url.endswith(weights.ENTRIES["raft-small-C_T_V2"].filename)


def test_missing_weights_error_names_backbone_file_place_and_command(wdir):
    with pytest.raises(WeightsError) as err:
        weights.require("i3d")
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("i3d", "i3d_torchscript.pt", str(wdir / "i3d"), "vdeval weights install i3d"):
        assert part in msg
    with pytest.raises(UnknownNameError, match="did you mean 'i3d'"):
        weights.entry("i3e")


def test_install_checks_published_hash(wdir, tmp_path):
    f = tmp_path / "ViT-B-32.pt"
    f.write_bytes(b"definitely not the OpenAI checkpoint")
    with pytest.raises(WeightsError, match="published ViT-B-32.pt has 40d36571"):
        weights.install("clip-vit-b-32-openai", f)
    assert not weights.path_of("clip-vit-b-32-openai").exists()
    p, sha = weights.install("clip-vit-b-32-openai", f, custom=True)
    assert p.read_bytes() == f.read_bytes() and sha == sha256_file(f)
    assert weights.require("clip-vit-b-32-openai") == (p, sha)
    assert weights.verify("clip-vit-b-32-openai") == "custom"
    # torchvision prefixes are checked too
    g = tmp_path / "raft.pth"
    g.write_bytes(b"not raft")
    with pytest.raises(WeightsError, match="ad48884c"):
        weights.install("raft-small-C_T_V1", g)


def test_file_with_wrong_hash_placed_by_hand_is_refused(wdir, tmp_path):
    p = weights.path_of("raft-large-C_T_V1")
    p.parent.mkdir(parents=True)
    p.write_bytes(b"corrupt download")
    with pytest.raises(WeightsError, match="expected 22a6c225"):
        weights.require("raft-large-C_T_V1")
    with pytest.raises(WeightsError, match="expected 22a6c225"):
        weights.verify("raft-large-C_T_V1")


def test_unpublished_hash_is_recorded_and_changes_detected(wdir, tmp_path):
    f = tmp_path / "i3d.pt"
    f.write_bytes(b"stand-in detector bytes")
    p, sha = weights.install("i3d", f)
    rec = json.loads(p.with_name(p.name + weights.SIDECAR).read_text())
    assert rec["sha256"] == sha and rec["published_match"] is None and rec["custom"] is False
    assert weights.verify("i3d") == "unverified"
    p.write_bytes(b"modified after install")
    os.utime(p, ns=(1, 1))
    with pytest.raises(WeightsError, match="changed since install"):
        weights.require("i3d")
    with pytest.raises(WeightsError, match="changed since install"):
        weights.verify("i3d")
    with pytest.raises(WeightsError, match="not a file"):
        weights.install("i3d", tmp_path / "nope.pt")


def test_cli_list_install_verify_path(wdir, tmp_path):
    app = typer.Typer()

    @app.callback()
    def _root():
        pass

    weights.register(app)
    run = CliRunner().invoke
    out = run(app, ["weights", "list"])
    assert out.exit_code == 0 and "i3d" in out.output and "missing" in out.output and str(wdir) in out.output
    out = run(app, ["weights", "path", "dino-vitb16"])
    assert out.output.strip() == str(wdir / "dino" / "vit_base_patch16_224.dino.safetensors")
    f = tmp_path / "x.pt"
    f.write_bytes(b"abc")
    out = run(app, ["weights", "install", "i3d", str(f)])
    assert out.exit_code == 0 and "installed i3d" in out.output
    out = run(app, ["weights", "verify"])
    assert out.exit_code == 0 and "i3d: unverified" in out.output
    out = run(app, ["weights", "install", "i3d"])  # neither a file nor --download
    assert isinstance(out.exception, WeightsError)
    out = run(app, ["weights", "install", "raft-small-C_T_V1", str(f)])
    assert isinstance(out.exception, WeightsError)
    out = run(app, ["weights", "install", "raft-small-C_T_V1", str(f), "--custom"])
    assert out.exit_code == 0


def test_download_goes_through_torch_hub_then_install(wdir, monkeypatch):
    """The network call is replaced: this checks the plumbing (URL, hash prefix, install), offline."""
    import torch.hub

    calls = []

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        with open(dst, "wb") as fh:
            fh.write(b"downloaded bytes")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    p, sha = weights.download("i3d")
    assert calls == [(weights.ENTRIES["i3d"].source, None)]
    assert p.read_bytes() == b"downloaded bytes" and weights.require("i3d")[1] == sha
    # a download that does not match the published hash is refused, not installed
    with pytest.raises(WeightsError, match="ff5fadd5"):
        weights.download("raft-large-C_T_SKHT_V2")
    assert calls[-1][1] == "ff5fadd5" and not weights.path_of("raft-large-C_T_SKHT_V2").exists()
