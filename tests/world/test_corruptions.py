import numpy as np
import pytest

from vdeval.errors import VdevalError
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import CORRUPTIONS, corrupt


@pytest.fixture(scope="module")
def clip():
    # a moving object on a textured background, so every corruption has something to act on
    for seed in range(100):
        c = sample_clip(seed, WorldSpec(max_objects=1, backgrounds=("striped",)))
        if c.scene.objects[0].motion != "still":
            return c


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_identity_at_zero_deterministic_and_changes_at_one(clip, name):
    fn = CORRUPTIONS[name]
    assert np.array_equal(fn(clip, 0.0, 1).frames, clip.video.frames)
    a, b = fn(clip, 1.0, 3), fn(clip, 1.0, 3)
    assert np.array_equal(a.frames, b.frames)
    assert a.frames.shape == clip.video.frames.shape and a.fps == clip.video.fps
    assert not np.array_equal(a.frames, clip.video.frames)


@pytest.mark.parametrize("name", ["flicker", "noise", "blur", "scene_cut", "camera_shake", "color_wash", "compression", "video_compression"])
def test_damage_grows_with_severity(clip, name):
    d = [np.abs(corrupt(clip, name, s, 1).frames.astype(float) - clip.video.frames).mean() for s in (0.25, 0.5, 1.0)]
    assert d[0] < d[1] < d[2]


def test_freeze_repeats_one_frame(clip):
    v = corrupt(clip, "freeze", 0.5).frames
    k = round(0.5 * (clip.spec.frames - 1))
    assert np.array_equal(v[:k + 1], clip.video.frames[:k + 1])
    assert all(np.array_equal(v[t], v[k]) for t in range(k, len(v)))


def test_shuffle_only_reorders_frames(clip):
    v = corrupt(clip, "shuffle", 0.5, 2).frames
    orig = {f.tobytes() for f in clip.video.frames}
    assert {f.tobytes() for f in v} == orig
    moved = sum(not np.array_equal(a, b) for a, b in zip(v, clip.video.frames))
    assert moved >= 2


def test_identity_swap_changes_only_the_object_after_the_cut(clip):
    v = corrupt(clip, "identity_swap", 0.4, 1).frames
    cut = clip.spec.frames // 2
    assert np.array_equal(v[:cut], clip.video.frames[:cut])
    changed = np.any(v != clip.video.frames, axis=-1)
    assert changed[cut:].any()
    assert not (changed & ~clip.masks[:, 0]).any()  # below severity 0.5 the shape stays: only object pixels


def test_texture_swim_leaves_objects_alone(clip):
    v = corrupt(clip, "texture_swim", 1.0, 1).frames
    obj = clip.masks[:, 0]
    assert np.array_equal(v[obj], clip.video.frames[obj])
    assert np.any(v[~obj] != clip.video.frames[~obj])
    assert np.array_equal(v[0], clip.video.frames[0])  # drift starts from the first frame


def test_flicker_is_per_frame(clip):
    v = corrupt(clip, "flicker", 1.0, 1).frames.astype(float)
    per_frame_mean = v.mean(axis=(1, 2, 3)) - clip.video.frames.astype(float).mean(axis=(1, 2, 3))
    assert per_frame_mean.std() > 2.0


def test_unknown_corruption_suggests_a_name(clip):
    with pytest.raises(VdevalError, match="flicker"):
        corrupt(clip, "flickr", 0.5)
    with pytest.raises(ValueError):
        corrupt(clip, "blur", 1.5)


def test_motion_blur_smears_only_what_moves(clip):
    from vdeval.world.corruptions import MOTION_BLUR_EXPOSURE, motion_blur

    d = [np.abs(motion_blur(clip, s).frames.astype(float) - clip.video.frames).mean() for s in (0.25, 0.5, 1.0)]
    assert 0 < d[0] < d[1] < d[2]
    # pixels the object never covers during the exposure (nor is next to) keep their exact values
    still = ~np.any(clip.masks, axis=(0, 1))
    from scipy.ndimage import binary_dilation

    far = ~binary_dilation(~still, iterations=int(np.ceil(MOTION_BLUR_EXPOSURE * 2 * clip.spec.unit_speed)) + 1)
    assert far.any() and np.array_equal(motion_blur(clip, 1.0).frames[:, far], clip.video.frames[:, far])
    for seed in range(100):  # a clip where nothing moves is unchanged
        c = sample_clip(seed, WorldSpec(max_objects=1))
        if c.scene.objects[0].motion == "still" and not c.scene.pan:
            assert np.array_equal(motion_blur(c, 1.0).frames, c.video.frames)
            break
    else:
        pytest.fail("no still clip among 100 seeds")


def _luma(f):
    return f.astype(float) @ np.array([0.299, 0.587, 0.114])


def test_color_wash_shrinks_contrast_and_saturation_and_keeps_brightness(clip):
    f = clip.video.frames.astype(float)
    v = corrupt(clip, "color_wash", 0.5).frames.astype(float)
    # every pixel halfway to its frame's mean grey (rounding aside)
    grey = _luma(f).mean(axis=(1, 2))[:, None, None, None]
    assert np.abs(v - (0.5 * f + 0.5 * grey)).max() <= 0.5
    assert np.abs(_luma(v).mean(axis=(1, 2)) - _luma(f).mean(axis=(1, 2))).max() < 0.5
    assert np.ptp(corrupt(clip, "color_wash", 1.0).frames.reshape(len(f), -1, 3), axis=1).max() <= 1  # uniform grey


def test_compression_is_per_frame_jpeg_at_the_severity_quality(clip):
    import cv2

    from vdeval.world.corruptions import jpeg_quality

    assert [jpeg_quality(s) for s in (0.25, 0.5, 1.0)] == [76, 52, 5]
    v = corrupt(clip, "compression", 0.5).frames
    t = 3  # frame t decoded from its own JPEG: no other frame takes part
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(clip.video.frames[t][..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 52])
    assert ok and np.array_equal(v[t], cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1])


def test_video_compression_is_an_h264_round_trip_at_the_severity_crf(clip):
    from vdeval.world.corruptions import h264_crf

    assert [h264_crf(s) for s in (0.25, 0.5, 1.0)] == [30, 37, 51]
    v = corrupt(clip, "video_compression", 0.5)
    assert v.frames.shape == clip.video.frames.shape and v.fps == clip.video.fps
