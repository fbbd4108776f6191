"""Content-debiased FVD (Ge et al., CVPR 2024): vdeval's VideoMAE-v2 backbone and `cd-fvd` protocol
against the `cd-fvd` package's own code path (cdfvd.fvd.get_videomae_features, cdfvd's FeatureStats
and compute_fvd_from_stats) on identical random weights, installed through the weights manager.

The published ViT-g checkpoint (about 4 GB, a download) is not here: the stand-ins keep ViT-g's
input and token layout (224 px, 14 px patches, tubelets of 2 frames, 8 x 16 x 16 tokens, heads 88
wide) at a small width and depth. What random weights cannot show is the paper's finding (cd-FVD
weighs temporal corruption more, relative to per-frame corruption, than I3D FVD):
test_content_bias_with_published_weights runs that experiment where both published networks are
installed and is skipped otherwise."""
from functools import partial

import numpy as np
import pytest
import torch

from vdeval.backbones import weights
from vdeval.backbones.videomae import GIANT, VideoMAEBackbone, VideoMAEv2, config_of, preprocess
from vdeval.errors import SuiteError, WeightsError
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest
from vdeval.metrics.fvd import FVD
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip

cdfvd_fvd = pytest.importorskip("cdfvd.fvd", reason="the cd-fvd package (test extra) is the reference")
from cdfvd.third_party.VideoMAEv2 import videomaev2_finetune as peer  # noqa: E402
from cdfvd.utils.metric_utils import FeatureStats  # noqa: E402


def peer_model(dim: int = 16, depth: int = 2, seed: int = 0):
    """cd-fvd's VisionTransformer as vit_giant_patch14_224 builds it, narrower and shallower, with
    every parameter random (its init leaves biases and LayerNorms at 0 and 1)."""
    torch.manual_seed(seed)
    m = peer.VisionTransformer(img_size=224, patch_size=14, embed_dim=dim, depth=depth, num_heads=max(1, dim // 88),
                               mlp_ratio=48 / 11, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                               num_classes=7, all_frames=16, tubelet_size=2, use_mean_pooling=True).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return m


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """cd-fvd's network with random weights, saved as its checkpoints are ({"model": state dict})
    and installed as the videomae weights."""
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    m = peer_model()
    f = tmp_path / "stand_in.pth"
    torch.save({"model": m.state_dict()}, f)
    weights.install("videomae-v2-g-ssv2", f)
    return m


def world(seed: int, frames: int = 16) -> Video:
    return sample_clip(seed, WorldSpec(height=32, width=48, frames=frames)).video


def test_the_giant_architecture_matches_cd_fvds():
    """vit_giant_patch14_224's arguments at one block of forty (a billion parameters would not fit a test)."""
    kw = dict(patch_size=14, embed_dim=1408, num_heads=16, mlp_ratio=48 / 11, qkv_bias=True,
              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    theirs = peer.VisionTransformer(img_size=224, num_classes=174, all_frames=16, tubelet_size=2, use_mean_pooling=True,
                                    depth=1, **kw)
    ours = VideoMAEv2(**{**GIANT, "depth": 1})
    a = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert a == {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert config_of(theirs.state_dict()) == {**GIANT, "depth": 1, "mlp_ratio": 6144 / 1408}
    assert theirs.blocks[0].attn.num_heads == ours.blocks[0].attn.heads == 16
    assert torch.equal(theirs.pos_embed, ours.pos_embed)  # the fixed sinusoid table, 2048 x 1408


def test_features_equal_cd_fvds_code_path(installed):
    rng = np.random.default_rng(0)
    videos = rng.integers(0, 256, (3, 16, 40, 56, 3), dtype=np.uint8)  # not square, not 224: the resize is cd-fvd's
    stats = cdfvd_fvd.get_videomae_features(FeatureStats(capture_all=True, capture_mean_cov=True), installed, videos,
                                            batchsize=2, device="cpu")
    b = VideoMAEBackbone()
    ours = np.stack([o["value"] for o in b.compute("video_embedding", [ClipInput(Video(v)) for v in videos])])
    assert ours.shape == (3, 16) and np.abs(ours - stats.get_all()).max() < 1e-5  # measured: 0.0
    # fewer than 16 frames: the temporal position table is interpolated as cd-fvd's model does
    short = cdfvd_fvd.get_videomae_features(FeatureStats(capture_all=True), installed, videos[:1, :8], device="cpu")
    assert np.abs(b.compute("video_embedding", [ClipInput(Video(videos[0, :8]))])[0]["value"] - short.get_all()[0]).max() < 1e-5
    # the preprocessing, frame by frame, is cd-fvd's preprocess_videomae on whole clips
    from cdfvd.third_party.VideoMAEv2.utils import preprocess_videomae

    assert torch.equal(preprocess(videos[1]), preprocess_videomae(videos[1:2])[0])
    assert b.identity()["weights"] == {"vit_g_hybrid_pt_1200e_ssv2_ft.pth": weights.require("videomae-v2-g-ssv2")[1]}
    assert b.input_spec("video_embedding").frames == 16 and b.input_spec("video_embedding").max_short_side is None


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # cd-fvd's scipy call
def test_cd_fvd_protocol_equals_cd_fvds_value_on_world_clips(installed):
    """Through featurize (first 16 of 20 frames decoded) and the FVD metric, against cdfvd.compute_fvd
    on the same first 16 frames: 24 clips a set for 16 features, so both covariances are full rank."""
    real = [world(s, frames=20) for s in range(24)]
    fake = [world(100 + s, frames=20) for s in range(24)]
    metric = FVD(backbone="videomae", n_bootstrap=0)
    assert metric.protocol == "cd-fvd" and metric.ddof == 0
    clips = [ClipFeatures(f"c{i}", v) for i, v in enumerate(real + fake)]
    featurize(clips, [FeatureRequest("video_embedding", "videomae")], BackbonePool())
    ours = metric.score_set(clips[24:], clips[:24]).value
    ref = object.__new__(cdfvd_fvd.cdfvd)  # its constructor downloads ViT-g; the rest of its path as written
    ref.model, ref.feature_fn, ref.device, ref.model_dtype = installed, cdfvd_fvd.get_videomae_features, "cpu", torch.float32
    ref.real_stats, ref.fake_stats = FeatureStats(capture_mean_cov=True), FeatureStats(capture_mean_cov=True)
    theirs = float(ref.compute_fvd(np.stack([v.frames[:16] for v in real]), np.stack([v.frames[:16] for v in fake])))
    assert ours == pytest.approx(theirs, rel=1e-6), (ours, theirs)  # measured: 4e-8 (eigenvalues vs scipy's sqrtm)


def test_protocol_names_its_backbone(installed):
    assert FVD(backbone="videomae", protocol="cd-fvd").protocol == "cd-fvd"
    with pytest.raises(SuiteError, match="videomae"):
        FVD(backbone="i3d", protocol="cd-fvd")


def test_missing_or_foreign_checkpoint_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    with pytest.raises(WeightsError, match="vdeval weights install videomae-v2-g-ssv2"):
        VideoMAEBackbone()
    f = tmp_path / "other.pth"
    torch.save({"model": {"head.weight": torch.zeros(3, 4)}}, f)
    weights.install("videomae-v2-g-ssv2", f)
    with pytest.raises(WeightsError, match="patch_embed"):
        VideoMAEBackbone()


def test_shuffled_frames_move_cd_fvd_while_every_frame_is_unchanged(installed):
    """What random weights can show: shuffling a clip's frames keeps every frame (so any per-frame
    statistic, and FVD on any image backbone, cannot move), yet the VideoMAE features move, because
    tubelets and time positions see the order. Not the paper's finding (see the module docstring)."""
    b = VideoMAEBackbone()
    clips = [world(s) for s in range(4)]
    order = np.random.default_rng(1).permutation(16)
    for v in clips:
        shuffled = Video(v.frames[order], v.fps)
        assert sorted(map(bytes, shuffled.frames)) == sorted(map(bytes, v.frames))
        a, s = (b.compute("video_embedding", [ClipInput(x)])[0]["value"] for x in (v, shuffled))
        assert np.abs(a - s).max() > 1e-3
        frozen = Video(np.repeat(v.frames[:1], 16, 0), v.fps)
        assert np.abs(b.compute("video_embedding", [ClipInput(frozen)])[0]["value"] - a).max() > 1e-3


def _published(name: str) -> bool:
    try:
        path, _ = weights.require(name)
    except WeightsError:
        return False
    return weights.status(name)["custom"] is False


@pytest.mark.slow
@pytest.mark.skipif(not (_published("i3d") and _published("videomae-v2-g-ssv2")),
                    reason="needs the published I3D and VideoMAE-v2 weights (not installable offline)")
def test_content_bias_with_published_weights():
    """Ge et al.'s finding on world clips: shuffled frames (every frame kept) move cd-FVD more than
    I3D FVD, each relative to the FVD of per-frame noise."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cdfvd_content_bias.py"
    spec = importlib.util.spec_from_file_location("bench_cdfvd_content_bias", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.content_bias(n=64, device="cuda" if torch.cuda.is_available() else "cpu")
    assert r["videomae"]["shuffle_over_noise"] > r["i3d"]["shuffle_over_noise"], r
