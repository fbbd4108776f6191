import numpy as np
import pytest

from vdeval.backbones.dis import DISFlow, dis_flow_pair, dis_flow_video, upscale_factor
from vdeval.backbones.pixels import PixelBackbone, colour_histogram_embedding
from vdeval.errors import FeatureError
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip


def _textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 4 + 2, w // 4 + 2), dtype=np.uint8)
    import cv2

    return cv2.resize(base, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)  # smooth texture, margin for shifts


def test_known_translation_has_known_flow():
    tex = _textured(48, 48)
    a = tex[8:56, 8:56]
    b = tex[8:56, 6:54]  # content moves right by 2 px: b(x) = a(x - 2)
    f = dis_flow_pair(a, b)
    inner = f[8:-8, 8:-8]
    assert np.allclose(inner[..., 0].mean(), 2.0, atol=0.15)
    assert np.allclose(inner[..., 1].mean(), 0.0, atol=0.15)
    back = dis_flow_pair(b, a)[8:-8, 8:-8]
    assert np.allclose(back[..., 0].mean(), -2.0, atol=0.15)


def test_epe_against_world_ground_truth():
    # the docstring records 0.60 px on moving pixels at 32 px (20 clips); guard against regressions
    spec = WorldSpec(frames=6, pan_probability=0.3)
    epe_moving, epe_zero = [], []
    for s in range(8):
        c = sample_clip(s, spec)
        fw = dis_flow_video(c.video.frames)["forward"]
        moving = np.linalg.norm(c.flow, axis=-1) > 0
        if moving.any():
            epe_moving.append(np.linalg.norm(fw - c.flow, axis=-1)[moving].mean())
            epe_zero.append(np.linalg.norm(c.flow, axis=-1)[moving].mean())
    assert np.mean(epe_moving) < 0.8
    assert np.mean(epe_moving) < 0.5 * np.mean(epe_zero)  # far better than guessing no motion


def test_layout_static_and_one_frame():
    c = sample_clip(3, WorldSpec(height=24, width=40, frames=5))
    out = DISFlow().compute("flow", [ClipInput(c.video)])[0]
    assert out["forward"].shape == (4, 24, 40, 2) and out["backward"].shape == (4, 24, 40, 2)
    assert out["forward"].dtype == np.float16  # held at half precision (FLOW_DTYPE)
    still = Video(np.repeat(c.video.frames[:1], 4, axis=0))
    assert np.abs(dis_flow_video(still.frames)["forward"]).max() == 0.0
    one = dis_flow_video(c.video.frames[:1])
    assert one["forward"].shape == (0, 24, 40, 2)


def test_odd_sizes():
    c = sample_clip(1, WorldSpec(height=27, width=35, frames=3))
    out = dis_flow_video(c.video.frames)
    assert out["forward"].shape == (2, 27, 35, 2) and np.isfinite(out["forward"]).all()
    assert upscale_factor(27, 35, 128) == 5


def test_batch_invariant_and_deterministic():
    clips = [sample_clip(s, WorldSpec(frames=4)) for s in range(3)]
    bb = DISFlow()
    batch = bb.compute("flow", [ClipInput(c.video) for c in clips])
    alone = bb.compute("flow", [ClipInput(clips[1].video)])[0]
    assert np.array_equal(batch[1]["forward"], alone["forward"])
    assert np.array_equal(batch[1]["backward"], alone["backward"])


def test_same_flow_whatever_opencv_threads():
    import cv2

    frames = sample_clip(3, WorldSpec(height=40, width=40, pan_probability=1.0, frames=3)).video.frames
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(1)
        one = dis_flow_video(frames)["forward"]
        cv2.setNumThreads(4)
        four = dis_flow_video(frames)["forward"]
    finally:
        cv2.setNumThreads(before)
    assert np.array_equal(one, four)


def test_bad_options_and_kinds():
    with pytest.raises(FeatureError):
        DISFlow(preset="bogus")
    with pytest.raises(FeatureError):
        DISFlow().compute("frame_embedding", [])
    with pytest.raises(FeatureError):
        PixelBackbone(bins=1)


def test_pixels_histogram_embedding():
    c = sample_clip(2, WorldSpec(frames=4))
    e = colour_histogram_embedding(c.video.frames)
    assert e.shape == (4, 4096)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # a pure colour frame has all mass in one bin
    solid = np.zeros((1, 8, 8, 3), np.uint8)
    solid[..., 0] = 255
    e1 = colour_histogram_embedding(solid)
    assert e1.max() == pytest.approx(1.0) and (e1 > 0).sum() == 1


def test_featurize_through_registry():
    clips = [ClipFeatures(str(s), sample_clip(s, WorldSpec(frames=3)).video) for s in range(2)]
    n = featurize(clips, [FeatureRequest("flow", "dis"), FeatureRequest("frame_embedding", "pixels")], BackbonePool())
    assert n == {("flow", "dis"): 2, ("frame_embedding", "pixels"): 2}
    assert clips[0].get("flow", "dis")["forward"].shape == (2, 32, 32, 2)
