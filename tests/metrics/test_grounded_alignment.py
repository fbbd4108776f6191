import numpy as np
import pytest

from vdeval.audit import run_audit, swap_caption
from vdeval.features import ClipFeatures
from vdeval.metrics.grounded_alignment import ATTRIBUTES, GroundedAlignment, grounded_scores, read_background, read_shape
from vdeval.video import Video
from vdeval.world import BACKGROUNDS, SHAPES, SIZES, WorldSpec, sample_clip
from vdeval.world.render import shape_mask
from vdeval.world.scene import ObjectSpec, Scene, caption_of


def _score(video, prompt):
    return GroundedAlignment().score_clip(ClipFeatures("c", video, prompt))


def test_exactly_one_on_clean_world_clips():
    for spec in (WorldSpec(pan_probability=0.3), WorldSpec(height=40, width=48, frames=6, pan_probability=0.5)):
        for seed in range(30):
            c = sample_clip(seed, spec)
            s = grounded_scores(c.video.frames, c.caption)
            if s["color"] < 1:  # an object hidden under another all clip long: not in the pixels
                continue
            read = [s[a] for a in ATTRIBUTES + ("speed",) if np.isfinite(s[a])]
            assert read and all(v == 1.0 for v in read), (seed, c.caption, s)


def test_each_attribute_is_read():
    for shape in SHAPES:
        for size, frac in SIZES.items():
            m = shape_mask(shape, 15, 17, frac * 32, 32, 32)
            assert read_shape(m) == (shape, size)
    from vdeval.world.render import render_scene

    for bg in BACKGROUNDS:
        scene = Scene((ObjectSpec("circle", "red", "small", "still", "slowly", (16, 16)),), bg, (40, 100), None, "slowly", (3, 5))
        clip = render_scene(scene, WorldSpec(frames=2))
        assert read_background(clip.video.frames[0], clip.masks[0, 0]) == bg


def test_known_answers_attribute_by_attribute():
    obj = ObjectSpec("square", "blue", "large", "right", "slowly", (10, 16))
    from vdeval.world.render import render_scene

    clip = render_scene(Scene((obj,), "striped"), WorldSpec(frames=5))
    base = caption_of(Scene((obj,), "striped"))
    assert _score(clip.video, base).value == 1.0
    wrong = {
        "color": base.replace("blue", "red"), "shape": base.replace("square", "circle"),
        "size": base.replace("large", "small"), "motion": base.replace("moving right slowly", "moving up slowly"),
        "background": base.replace("striped", "dotted"),
    }
    for attr, caption in wrong.items():
        s = _score(clip.video, caption)
        assert s.extras[attr] == 0.0, attr
        if attr != "color":  # a missing colour also fails that object's other attributes and the count
            assert s.value == pytest.approx(5 / 6), attr
    fast = _score(clip.video, base.replace("slowly", "quickly"))
    assert fast.extras["motion"] == 1.0 and fast.extras["speed"] == 0.0 and fast.value == 1.0
    two = _score(clip.video, base.replace(" on a", " and a small red circle staying still on a"))
    assert two.extras["count"] == 0.0 and two.extras["color"] == 0.5


def test_swapped_captions_score_lower():
    c = sample_clip(3, WorldSpec(max_objects=1))
    s = [_score(c.video, swap_caption(c.caption, v, 3)).value for v in (0.0, 0.4, 1.0)]
    assert s[0] == 1.0 and s[0] > s[1] > s[2]


def test_nan_cases_and_batch_invariance():
    c = sample_clip(0)
    bad = _score(c.video, "a photo of a cat")
    assert np.isnan(bad.value) and "not a world caption" in bad.note
    one = _score(Video(c.video.frames[:1]), c.caption)
    assert np.isnan(one.value) and "one-frame" in one.note
    assert [(r.kind, r.backbone) for r in GroundedAlignment().requests()] == [("frames", "pixels")]
    assert _score(c.video, c.caption).value == _score(Video(c.video.frames.copy()), c.caption).value


def test_audit_floor():
    r = run_audit(n=12, severities=(0.5, 1.0), metrics=["grounded_alignment"], corruptions=["caption_swap"])
    row = r.own_failure(0.5)
    assert float(row["auroc"].iloc[0]) >= 0.9 and float(row["spearman"].iloc[0]) > 0.5
