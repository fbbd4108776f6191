import numpy as np
import pytest

from vdeval.audit import auroc
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.background_consistency import (BackgroundConsistency, WorldBackgroundConsistency,
                                                   background_similarity, world_background_consistency)
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import scene_cut, texture_swim


def _vbench_background_consistency(feats):
    """VBench's background_consistency loop (per frame: L2-normalise, then for i >= 1 the mean of the
    clamped cosine to the previous and to the first frame; averaged over len - 1), written out here."""
    video_sim, first, former = 0.0, None, None
    for i, f in enumerate(feats):
        f = f / np.linalg.norm(f)
        if i == 0:
            first = f
        else:
            sim_pre = max(0.0, float(former @ f))
            sim_fir = max(0.0, float(first @ f))
            video_sim += (sim_pre + sim_fir) / 2
        former = f
    return video_sim / (len(feats) - 1)


def test_parity_with_vbench_loop():
    rng = np.random.default_rng(0)
    m = BackgroundConsistency(backbone="pixels")
    for T in (2, 5, 16):
        e = rng.normal(size=(T, 12)) + 0.5  # some cosines negative: the clamp matters
        cf = ClipFeatures("c", Video(np.zeros((T, 4, 4, 3), np.uint8)), features={("frame_embedding", "pixels"): {"value": e}})
        assert m.score_clip(cf).value == pytest.approx(_vbench_background_consistency(e), abs=1e-12)


def test_embedding_version_edge_cases_and_batch_invariance():
    m = BackgroundConsistency(backbone="pixels")
    clips = [ClipFeatures(str(s), sample_clip(s).video) for s in range(3)]
    featurize(clips, m.requests(), BackbonePool())
    alone = ClipFeatures("x", clips[1].video)
    featurize([alone], m.requests(), BackbonePool())
    assert m.score_clip(clips[1]).value == m.score_clip(alone).value
    one = ClipFeatures("o", Video(clips[0].video.frames[:1]))
    featurize([one], m.requests(), BackbonePool())
    r = m.score_clip(one)
    assert np.isnan(r.value) and "one-frame" in r.note
    assert BackgroundConsistency().backbone == "embedded"


def test_world_version_is_exactly_one_on_clean_clips_with_or_without_pan():
    for seed in range(40):
        c = sample_clip(seed, WorldSpec(pan_probability=0.5))
        value, curve = world_background_consistency(c.video.frames, c.scene.pan)
        assert value == 1.0 and curve == [1.0] * c.video.num_frames, (seed, c.caption)


def test_background_similarity_known_answer():
    a = np.zeros((4, 6, 3), np.uint8)
    b = np.full((4, 6, 3), 51, np.uint8)
    bg = np.ones((4, 6), bool)
    assert background_similarity(a, b, bg, bg, (0, 0)) == pytest.approx(0.8)
    ramp = np.repeat(np.repeat((np.arange(6) * 40).astype(np.uint8)[None, :, None], 4, 0), 3, 2)
    moved = np.roll(ramp, 2, axis=1)  # content moved right by 2 px: moved(x + 2) = ramp(x)
    assert background_similarity(ramp, moved, bg, bg, (2, 0)) == 1.0
    assert background_similarity(ramp, moved, bg, bg, (0, 0)) < 1.0
    none = np.zeros((4, 6), bool)
    assert np.isnan(background_similarity(a, b, none, bg, (0, 0)))


def test_world_version_catches_texture_swim_where_it_is_visible():
    clean, swim = [], []
    for seed in range(12):
        c = sample_clip(seed, WorldSpec(backgrounds=("striped", "checkered", "dotted")))
        clean.append(world_background_consistency(c.video.frames, c.scene.pan)[0])
        swim.append(world_background_consistency(texture_swim(c, 0.5, seed).frames, c.scene.pan)[0])
    assert auroc(clean, swim, higher_is_better=True) == 1.0


def test_world_metric_notes_and_invariance():
    m = WorldBackgroundConsistency()
    c = sample_clip(4)
    r = m.score_clip(ClipFeatures("c", c.video, "a photo of a cat"))
    assert np.isnan(r.value) and "world caption" in r.note
    r1 = m.score_clip(ClipFeatures("c", Video(c.video.frames[:1]), c.caption))
    assert np.isnan(r1.value) and "one-frame" in r1.note
    cut = m.score_clip(ClipFeatures("c", scene_cut(c, 1.0, 0), c.caption))
    assert cut.value < m.score_clip(ClipFeatures("c", c.video, c.caption)).value == 1.0
    assert [(r.kind, r.backbone) for r in m.requests()] == [("frames", "pixels")]


@pytest.mark.slow  # featurizes 36 clips with the embedded network (about 10 s on one core)
def test_audit_floor_embedded():
    from vdeval.audit import run_audit
    from vdeval.backbones.embedded import WEIGHTS_DIR, WEIGHTS_FILE

    if not (WEIGHTS_DIR / WEIGHTS_FILE).is_file():
        pytest.skip("embedded weights not found")
    r = run_audit(n=12, severities=(0.5, 1.0), metrics=["background_consistency"], corruptions=["scene_cut"])
    row = r.own_failure(0.5)
    assert float(row["auroc"].iloc[0]) >= 0.9 and float(row["spearman"].iloc[0]) > 0.5


def _openai_clip_model_module():
    """OpenAI's clip/model.py (package openai-clip, VBench's `import clip`), loaded on its own:
    the package's __init__ needs pkg_resources, which new setuptools no longer ship."""
    import importlib.util

    spec = importlib.util.find_spec("clip")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("OpenAI's clip package (pip install openai-clip) is not installed")
    path = f"{list(spec.submodule_search_locations)[0]}/model.py"
    mod_spec = importlib.util.spec_from_file_location("openai_clip_model", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_clip_vbench_matches_vbench_background_consistency(tmp_path, monkeypatch):
    """VBench's protocol end to end on identical random ViT-B/32 weights: OpenAI's CLIP built by its
    own build_model (as clip.load, jit=False, on CPU: float32), load_video + clip_transform(224) on
    a 600 x 840 file, encode_image, normalise, VBench's loop; against backbone clip_vbench through
    featurize and the metric. Stand-in weights: the archive's state dict saved as a plain .pt file
    (the loader takes the tensors of OpenAI's TorchScript archive the same way; an unpublished
    TorchScript file is refused by design)."""
    import torch
    import torch.nn.functional as F
    from torchvision.transforms import CenterCrop, Compose, InterpolationMode, Lambda, Normalize, Resize

    from helpers import large_clip_file, vbench_load_video
    from vdeval.backbones import weights
    from vdeval.features import FeatureRequest
    from vdeval.video.source import FileSource

    model_py = _openai_clip_model_module()
    torch.manual_seed(0)
    ref = model_py.CLIP(512, 224, 12, 768, 32, 77, 49408, 512, 8, 12)  # ViT-B/32's build_model arguments
    state = ref.state_dict()
    theirs = model_py.build_model({k: v.clone() for k, v in state.items()}).float().eval()  # clip.load(jit=False), CPU
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    f = tmp_path / "ViT-B-32.pt"
    torch.save(state, f)
    weights.install("clip-vit-b-32-openai", f, custom=True)

    path = large_clip_file(tmp_path / "big.mp4", frames=4)
    m = BackgroundConsistency(backbone="clip_vbench")
    cf = ClipFeatures("c", FileSource(path))
    featurize([cf], m.requests(), BackbonePool())
    got = m.score_clip(cf).value

    clip_transform = Compose([Resize(224, interpolation=InterpolationMode.BICUBIC, antialias=False), CenterCrop(224),
                              Lambda(lambda x: x.float().div(255.0)),
                              Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))])
    with torch.no_grad():
        feats = F.normalize(theirs.encode_image(clip_transform(vbench_load_video(path))), dim=-1, p=2).numpy()
    want = _vbench_background_consistency(feats)
    assert 0.5 < want < 1.0  # the frames differ: the value is not the trivial 1
    assert got == pytest.approx(want, abs=1e-5)
    emb = cf.get("frame_embedding", "clip_vbench")["value"]
    np.testing.assert_allclose(emb, feats, atol=1e-4)
