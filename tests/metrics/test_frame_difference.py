import numpy as np

from vdeval.features import ClipFeatures
from vdeval.metrics.frame_difference import FrameDifference, pair_differences
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import flicker


def _score(video):
    return FrameDifference().score_clip(ClipFeatures("c", video))


def test_known_values_and_vbench_scale():
    f = np.zeros((3, 5, 7, 3), np.uint8)
    f[1] = 10
    f[2] = 40
    s = _score(Video(f))
    assert s.curve == [10.0, 30.0]
    assert s.value == 20.0
    assert np.isclose(s.extras["vbench"], (255 - 20) / 255)


def test_still_scene_is_zero_and_flicker_is_not():
    c = sample_clip(0, WorldSpec(motions=("still",)))
    assert _score(c.video).value == 0.0
    assert _score(flicker(c, 0.5, 0)).value > 3.0


def test_one_frame_is_nan_with_note():
    s = _score(Video(np.zeros((1, 9, 9, 3), np.uint8)))
    assert np.isnan(s.value) and "one-frame" in s.note


def test_nan_frames_in_pure_function():
    f = np.zeros((3, 4, 4, 3), np.float32)
    f[1, 0, 0, 0] = np.nan
    d = pair_differences(f)
    assert d.shape == (2,) and np.isnan(d).all()


def test_requests_only_the_decoded_frames():
    from vdeval.features import FeatureRequest

    assert FrameDifference().requests() == [FeatureRequest("frames", "pixels")]
