"""frame_repeats and frame_skips: known answers on hand-built clips, and the world's corruptions."""
import math

import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.metrics.frame_cadence import FrameRepeats, FrameSkips, pair_measures, repeat_dips, skip_ratios
from vdeval.video import Video


def _square(positions, size=8, h=32, w=48, fg=200, bg=40):
    """A hard-edged square whose left edge is at x = positions[t] (integers), on a plain background."""
    f = np.full((len(positions), h, w, 3), bg, np.uint8)
    for t, x in enumerate(positions):
        f[t, 12:12 + size, x:x + size] = fg
    return f


def _score(metric, frames):
    return metric.score_clip(ClipFeatures("c", Video(frames, 8.0)))


def test_steady_motion_scores_zero_repeats_and_unit_skip_ratio():
    f = _square(list(range(2, 22, 2)))  # 2 px a frame
    assert _score(FrameRepeats(), f).value == 0.0
    assert _score(FrameSkips(), f).value == pytest.approx(1.0)


def test_an_exact_hold_between_moving_frames_scores_one():
    pos = list(range(2, 22, 2))
    f = _square(pos)
    f[5] = f[4]  # frame 5 repeats frame 4
    s = _score(FrameRepeats(), f)
    assert s.value == 1.0 and s.curve[4] == 1.0 and s.curve[0] == 0.0
    last = _square(pos)
    last[-1] = last[-2]  # a hold at the end: compared with the pairs before it
    assert _score(FrameRepeats(), last).value == 1.0


def test_a_noisy_repeat_below_the_change_threshold_is_a_repeat():
    f = _square(list(range(2, 22, 2)))
    noise = np.random.default_rng(0).integers(-4, 5, f[4].shape)  # |noise| <= 4 < 8 grey levels
    f[5] = np.clip(f[4].astype(int) + noise, 0, 255).astype(np.uint8)
    assert _score(FrameRepeats(), f).value == 1.0


def test_a_half_speed_pair_dips_by_half():
    # the square moves 2 px a frame, 1 px once: half the changed pixels of its neighbours
    pos = [2, 4, 6, 8, 9, 11, 13, 15]
    assert _score(FrameRepeats(), _square(pos)).value == pytest.approx(0.5)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_dropping_k_frames_of_steady_motion_gives_ratio_k_plus_one(k):
    # 1 px a frame, an 8 px square: the mean difference is proportional to the displacement
    # while it is under the square's size, so a jump of k + 1 px is k + 1 times its neighbours
    pos = list(range(2, 8)) + list(range(8 + k, 14 + k))
    s = _score(FrameSkips(), _square(pos))
    assert s.value == pytest.approx(k + 1) and int(np.nanargmax(s.curve)) == 5


def test_still_clips_are_nan_with_a_note_and_motion_that_ends_is_no_repeat():
    still = _square([5] * 6)
    for m in (FrameRepeats(), FrameSkips()):
        s = _score(m, still)
        assert math.isnan(s.value) and s.note
    ends = _square([2, 4, 6, 8, 8, 8, 8])  # the square stops for good: no dip between moving pairs
    assert _score(FrameRepeats(), ends).value == 0.0


def test_helpers():
    c, d = pair_measures(_square([2, 4, 6]))
    assert c == pytest.approx([2 * 2 * 8 / (32 * 48)] * 2)  # two 2x8 bands change per pair
    assert d == pytest.approx([2 * 2 * 8 * 160 / (32 * 48)] * 2, rel=1e-6)
    np.testing.assert_allclose(repeat_dips(np.array([1.0, 1.0, 0.0, 2.0, 2.0])), [0, 0, 1, 0, 0])
    np.testing.assert_allclose(skip_ratios(np.array([1.0, 1.0, 3.0, 1.0, 1.0])), [0.5, 1, 3, 1, 0.5])  # ends: median of (1, 3)
    assert np.isnan(skip_ratios(np.array([0.0, 0.0, 1.0]))[2])


def test_world_corruptions_are_caught():
    from vdeval.world import WorldSpec, sample_clip
    from vdeval.world.corruptions import corrupt

    spec = WorldSpec(height=32, width=32, frames=12, speeds=("slowly",))
    clips = [sample_clip(s, spec) for s in range(6)]
    clean = [_score(FrameRepeats(), c.video.frames).value for c in clips]
    held = [_score(FrameRepeats(), corrupt(c, "stutter", 1.0, seed=1).frames).value for c in clips]
    assert min(held) > max(v for v in clean if np.isfinite(v))
    steady = [_score(FrameSkips(), c.video.frames).value for c in clips]
    jumped = [_score(FrameSkips(), corrupt(c, "teleport", 1.0, seed=1).frames).value for c in clips]
    assert np.mean(np.array(jumped)[:, None] > np.array(steady)[None, :]) >= 0.9  # AUROC
