import json
import shutil

import numpy as np
import pytest

from vdeval.backbones import embedded as E
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip, scene_from_caption
from vdeval.world.render import render_scene

SPEC = WorldSpec()


@pytest.fixture(scope="module")
def bb():
    return E.EmbeddedBackbone()


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_shipped_weights_are_small_and_described():
    w = E.WEIGHTS_DIR / E.WEIGHTS_FILE
    assert w.is_file() and w.stat().st_size < 5 * 2**20
    cfg = json.loads((E.WEIGHTS_DIR / E.CONFIG_FILE).read_text())
    assert cfg["training"]["seed"] == 0 and "text_to_video_top1" in cfg["heldout"]
    card = (E.WEIGHTS_DIR / "README.md").read_text()
    assert "top-1" in card and str(cfg["heldout"]["n_clips"]) in card


def test_every_kind_any_size_and_length(bb):
    rng = np.random.default_rng(0)
    for t, h, w in ((3, 48, 64), (20, 16, 16), (8, 32, 32), (1, 40, 40)):
        v = Video(rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8))
        c = ClipInput(v, prompt="a small red circle moving left slowly on a plain background", reference_image=v.frames[0])
        fe = bb.compute("frame_embedding", [c])[0]["value"]
        ve = bb.compute("video_embedding", [c])[0]["value"]
        te = bb.compute("text_embedding", [c])[0]["value"]
        re = bb.compute("reference_embedding", [c])[0]["value"]
        assert fe.shape == (t, 128) and ve.shape == te.shape == re.shape == (128,)
        for z in (fe, ve[None], te[None], re[None]):
            np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1, atol=1e-5)
        np.testing.assert_allclose(re, fe[0], atol=1e-5)
    assert bb.tier == "embedded" and "32x32" in bb.protocol and bb.weights_sha256()[E.WEIGHTS_FILE]


def test_long_clip_frames_in_chunks(bb):
    rng = np.random.default_rng(1)
    v = Video(rng.integers(0, 256, (70, 24, 24, 3), dtype=np.uint8))
    fe = bb.compute("frame_embedding", [ClipInput(v)])[0]["value"]
    assert fe.shape == (70, 128)
    tail = bb.compute("frame_embedding", [ClipInput(Video(v.frames[64:]))])[0]["value"]
    np.testing.assert_allclose(fe[64:], tail, atol=1e-5)


def test_frame_sampling_protocol():
    assert E.sample_indices(20).tolist() == [0, 3, 5, 8, 11, 14, 16, 19]
    assert E.sample_indices(8).tolist() == list(range(8))
    assert E.sample_indices(3).tolist() == [0, 1, 2, 2, 2, 2, 2, 2]  # padded by repeating: no invented motion
    x = E.video_to_input(np.full((5, 64, 48, 3), 255, np.uint8))
    assert x.shape == (3, 8, 32, 32) and float(x.min()) == pytest.approx(1.0)


def test_batch_invariance_and_unknown_words(bb):
    clips = [ClipInput(sample_clip(s, SPEC).video, prompt=sample_clip(s, SPEC).caption) for s in range(4)]
    together = bb.compute("video_embedding", clips)
    alone = bb.compute("video_embedding", clips[1:2])
    np.testing.assert_allclose(together[1]["value"], alone[0]["value"], atol=1e-5)
    t = bb.compute("text_embedding", [ClipInput(clips[0].video, prompt="A purple Zebra, dancing!")])[0]["value"]
    assert np.isfinite(t).all()  # unknown words map to <unk>, no crash
    texts = [ClipInput(clips[0].video, prompt=c.prompt) for c in clips] + [ClipInput(clips[0].video, prompt="a red")]
    batched = bb.compute("text_embedding", texts)
    for c, z in zip(texts, batched):
        np.testing.assert_allclose(z["value"], bb.compute("text_embedding", [c])[0]["value"], atol=1e-5)
    with pytest.raises(FeatureError, match="no reference image"):
        bb.compute("reference_embedding", [clips[0]])
    with pytest.raises(FeatureError, match="does not compute"):
        bb.compute("flow", clips[:1])


def test_missing_or_mismatched_weights(tmp_path):
    with pytest.raises(WeightsError, match="embedded.safetensors not found at .*train_embedded"):
        E.EmbeddedBackbone(weights_dir=tmp_path)
    shutil.copy(E.WEIGHTS_DIR / E.WEIGHTS_FILE, tmp_path / E.WEIGHTS_FILE)
    cfg = json.loads((E.WEIGHTS_DIR / E.CONFIG_FILE).read_text())
    cfg["model"]["dim"] = 64
    (tmp_path / E.CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="does not match config.json"):
        E.EmbeddedBackbone(weights_dir=tmp_path)


def _recolour(caption, old, new):
    return caption.replace(f" {old} ", f" {new} ", 1)


def test_frame_embeddings_track_colour_and_shape_identity(bb):
    """Same caption at another position/background level stays closer than a colour or shape swap."""
    wins, total = 0, 0
    for s in range(30):
        clip = sample_clip(1000 + s, WorldSpec(min_objects=1, max_objects=1))
        o = clip.scene.objects[0]
        other_colour = "blue" if o.color != "blue" else "red"
        other_shape = "square" if o.shape != "square" else "circle"
        same = render_scene(scene_from_caption(clip.caption, 7 + s, SPEC), SPEC)
        recol = render_scene(scene_from_caption(_recolour(clip.caption, o.color, other_colour), 7 + s, SPEC), SPEC)
        reshape = render_scene(scene_from_caption(_recolour(clip.caption, o.shape, other_shape), 7 + s, SPEC), SPEC)
        f = [bb.compute("frame_embedding", [ClipInput(c.video)])[0]["value"][0] for c in (clip, same, recol, reshape)]
        wins += (_cos(f[0], f[1]) > _cos(f[0], f[2])) + (_cos(f[0], f[1]) > _cos(f[0], f[3]))
        total += 2
    assert wins / total >= 0.9, wins / total


def test_video_embeddings_see_motion_direction(bb):
    wins = 0
    n = 30
    for s in range(n):
        clip = sample_clip(2000 + s, WorldSpec(min_objects=1, max_objects=1, motions=("left", "right", "up", "down")))
        o = clip.scene.objects[0]
        opposite = {"left": "right", "right": "left", "up": "down", "down": "up"}[o.motion]
        same = render_scene(scene_from_caption(clip.caption, 11 + s, SPEC), SPEC)
        rev = render_scene(scene_from_caption(clip.caption.replace(f"moving {o.motion} ", f"moving {opposite} "), 11 + s, SPEC), SPEC)
        v = [x["value"] for x in bb.compute("video_embedding", [ClipInput(c.video) for c in (clip, same, rev)])]
        wins += _cos(v[0], v[1]) > _cos(v[0], v[2])
    assert wins / n >= 0.9, wins / n


def test_text_and_video_share_a_space(bb):
    """The true caption beats every colour-swapped variant for most held-out clips."""
    ok, n = 0, 30
    for s in range(n):
        clip = sample_clip(10**9 + 5000 + s, WorldSpec(min_objects=1, max_objects=1, pan_probability=0.3))
        o = clip.scene.objects[0]
        texts = [_recolour(clip.caption, o.color, c) for c in ("red", "green", "blue", "yellow", "purple", "cyan", "orange", "white")]
        v = bb.compute("video_embedding", [ClipInput(clip.video)])[0]["value"]
        t = [x["value"] for x in bb.compute("text_embedding", [ClipInput(clip.video, prompt=p) for p in texts])]
        ok += texts[int(np.argmax([v @ z for z in t]))] == clip.caption
    assert ok / n >= 0.9, ok / n
