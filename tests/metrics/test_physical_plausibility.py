import numpy as np
import pytest

from vdeval.audit import run_audit
from vdeval.features import ClipFeatures
from vdeval.metrics.physical_plausibility import PhysicalPlausibility, violations
from vdeval.metrics.world_objects import min_area, track_objects
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import corrupt


def _score(video):
    return PhysicalPlausibility().score_clip(ClipFeatures("c", video))


def _square_clip(xs, ys, side=6, size=32, color=(220, 40, 40)):
    """A red square whose top-left corner is at (xs[t], ys[t]) (None: not drawn), on grey."""
    f = np.full((len(xs), size, size, 3), 60, np.uint8)
    for t, (x, y) in enumerate(zip(xs, ys)):
        if x is not None:
            f[t, y:y + side, x:x + side] = color
    return Video(f)


def test_tracker_reads_the_world_masks_exactly():
    for seed in range(40):
        c = sample_clip(seed, WorldSpec(pan_probability=0.3, height=36, width=40))
        tracks = {t.color: t for t in track_objects(c.video.frames)}
        top = c.scene.objects[-1]  # drawn last: never hidden
        m = c.masks[:, -1]
        keep = m.reshape(len(m), -1).sum(1) >= min_area(36, 40)
        assert np.array_equal(tracks[top.color].masks[keep], m[keep])


def test_exactly_zero_on_clean_world_clips():
    for spec in (WorldSpec(pan_probability=0.3), WorldSpec(height=40, width=48, frames=10, pan_probability=0.5)):
        for seed in range(40):
            counts, n = violations(sample_clip(seed, spec).video.frames)
            assert n >= 1 and sum(counts.values()) == 0, (seed, counts)


def test_known_answers_on_hand_made_motion():
    steady = _score(_square_clip([2, 4, 6, 8, 10, 12], [10] * 6))
    assert steady.value == 0.0 and steady.extras["objects"] == 1.0
    jump = _score(_square_clip([2, 4, 6, 20, 22, 24], [10] * 6))  # one teleport of +12 px
    assert jump.extras["teleports"] == 2.0 and jump.value == 2.0  # seen on entering and leaving the jump pair
    back = _score(_square_clip([2, 4, 6, 8, 6, 4], [10] * 6))
    assert back.extras["reversals"] == 1.0 and back.value == 1.0
    gone = _score(_square_clip([2, 4, None, None, 10, 12], [10] * 6))
    assert gone.extras["vanishings"] == 1.0 and gone.value == 1.0
    exits = _score(_square_clip([16, 20, 24, 28, None, None], [10] * 6))  # leaves through the right edge
    assert exits.value == 0.0
    late = _score(_square_clip([None, None, 10, 12, 14, 16], [10] * 6))
    assert late.extras["appearances"] == 1.0


def test_size_change_is_counted_per_frame():
    f = _square_clip([4] * 5, [4] * 5).frames.copy()
    f[3:, 4:14, 4:14] = (220, 40, 40)  # grows from 6 to 10 px wide at frame 3
    s = _score(Video(f))
    assert s.extras["size_changes"] == 2.0 and s.extras["shape_changes"] == 2.0


@pytest.mark.parametrize("name,kind", [("teleport", "teleports"), ("reverse", "reversals"), ("vanish", "vanishings"),
                                       ("resize", "size_changes"), ("geometry_collapse", "shape_changes")])
def test_each_corruption_is_seen_as_its_own_violation(name, kind):
    c = sample_clip(1, WorldSpec(max_objects=1))
    assert _score(c.video).value == 0.0
    s = _score(corrupt(c, name, 0.5, 0))
    assert s.extras[kind] >= 1.0 and s.value >= 1.0


def test_nan_cases_and_batch_invariance():
    one = _score(Video(sample_clip(0).video.frames[:1]))
    assert np.isnan(one.value) and "one-frame" in one.note
    empty = _score(Video(np.full((4, 16, 16, 3), 90, np.uint8)))
    assert np.isnan(empty.value) and "no world objects" in empty.note
    assert [(r.kind, r.backbone) for r in PhysicalPlausibility().requests()] == [("frames", "pixels")]
    v = sample_clip(3).video
    assert _score(v).value == _score(Video(v.frames.copy())).value  # reads only its own clip


def test_audit_floor():
    r = run_audit(n=16, severities=(0.5,), metrics=["physical_plausibility"],
                  corruptions=["teleport", "vanish", "reverse", "resize", "geometry_collapse"])
    t = r.table
    for c in ("teleport", "vanish", "reverse", "resize", "geometry_collapse"):
        row = t[(t["score"] == "physical_plausibility") & (t["corruption"] == c)]
        assert float(row["auroc"].iloc[0]) >= 0.9, c
        assert float(row["spearman"].iloc[0]) > 0.5, c


def test_extras_are_audited_against_their_own_corruptions():
    r = run_audit(n=4, severities=(0.5,), metrics=["physical_plausibility"], corruptions=["reverse", "vanish"])
    own = r.own_failure(0.5)
    assert set(zip(own["score"], own["corruption"])) == {
        ("physical_plausibility.reversals", "reverse"), ("physical_plausibility.vanishings", "vanish")}
