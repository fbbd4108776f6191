import numpy as np
import pytest

from vdeval.errors import VdevalError
from vdeval.world import (
    COLORS, WorldSpec, caption_of, parse_caption, render_scene, sample_clip, sample_scene, scene_from_caption, vocabulary,
)


def warp_back_error(clip):
    """Max |frame_t(x) - frame_{t+1}(x + flow_t(x))| over pixels whose target stays in frame and
    is not covered by a different surface at t+1 (occlusion)."""
    f = clip.video.frames.astype(np.int64)
    T, H, W, _ = f.shape
    ys, xs = np.mgrid[0:H, 0:W]
    worst = 0
    for t in range(T - 1):
        fx = clip.flow[t, ..., 0]
        fy = clip.flow[t, ..., 1]
        x2, y2 = (xs + fx).astype(int), (ys + fy).astype(int)
        inside = (x2 >= 0) & (x2 < W) & (y2 >= 0) & (y2 < H)
        x2c, y2c = np.clip(x2, 0, W - 1), np.clip(y2, 0, H - 1)
        # occluded: the surface at the target at t+1 moves differently from this pixel's surface
        owner_t = np.full((H, W), -1)
        owner_t1 = np.full((H, W), -1)
        for i in range(clip.masks.shape[1]):
            owner_t[clip.masks[t, i]] = i
            owner_t1[clip.masks[t + 1, i]] = i
        visible = inside & (owner_t1[y2c, x2c] == owner_t)
        d = np.abs(f[t + 1][y2c, x2c] - f[t]).max(-1)
        worst = max(worst, int(d[visible].max(initial=0)))
        assert visible.mean() > 0.7
    return worst


@pytest.mark.parametrize("seed", range(6))
def test_ground_truth_flow_warps_exactly(seed):
    clip = sample_clip(seed, WorldSpec(pan_probability=0.5, max_objects=2))
    assert warp_back_error(clip) == 0


def test_ground_truth_flow_at_other_resolutions():
    clip = sample_clip(3, WorldSpec(height=48, width=64, frames=12, pan_probability=1.0))
    assert clip.video.frames.shape == (12, 48, 64, 3)
    assert clip.flow.shape == (11, 48, 64, 2)
    assert warp_back_error(clip) == 0


def test_deterministic_from_seed_and_different_across_seeds():
    a, b = sample_clip(11), sample_clip(11)
    assert np.array_equal(a.video.frames, b.video.frames) and a.caption == b.caption
    assert not np.array_equal(sample_clip(12).video.frames, a.video.frames)


def test_caption_grammar_round_trips():
    spec = WorldSpec(max_objects=2, pan_probability=0.5)
    vocab = set(vocabulary())
    for seed in range(40):
        scene = sample_scene(seed, spec)
        cap = caption_of(scene)
        assert set(cap.split()) <= vocab
        parsed = parse_caption(cap)
        assert [o["color"] for o in parsed["objects"]] == [o.color for o in scene.objects]
        assert [o["motion"] for o in parsed["objects"]] == [o.motion for o in scene.objects]
        assert parsed["background"] == scene.background and parsed["pan"] == scene.pan


def test_caption_errors_name_the_word():
    with pytest.raises(VdevalError, match="'banana'"):
        parse_caption("a small banana circle moving left slowly on a plain background")
    with pytest.raises(VdevalError, match="order"):
        parse_caption("circle a small red moving left slowly on a plain background")


def test_scene_from_caption_matches_caption_and_moves_as_told():
    spec = WorldSpec()
    cap = "a large red square moving right quickly on a striped background"
    clip = render_scene(scene_from_caption(cap, 5, spec), spec)
    assert clip.caption == cap
    xs = clip.positions[:, 0, 0]
    assert np.all(np.diff(xs) == 2)  # quickly = 2 px/frame at 32 px
    obj_pixels = clip.video.frames[0][clip.masks[0, 0]]
    assert (obj_pixels == COLORS["red"]).all()
    assert np.array_equal(clip.reference_image, clip.video.frames[0])


def test_objects_stay_inside_the_frame_when_possible():
    spec = WorldSpec(frames=8)
    for seed in range(30):
        clip = sample_clip(seed, spec)
        area = clip.masks.sum(axis=(2, 3))
        assert (area == area[0]).all(), f"seed {seed}: object left the frame"


def test_invalid_spec_is_a_clear_error():
    with pytest.raises(VdevalError, match="colors"):
        WorldSpec(colors=("red", "mauve"))
