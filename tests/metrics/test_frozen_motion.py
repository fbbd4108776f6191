import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.frozen_motion import FrozenMotion, dynamic_rule, is_dynamic, motion_scores
from vdeval.video import Video
from vdeval.world import DIRECTIONS, WorldSpec, sample_clip
from vdeval.world.corruptions import freeze


def _score(video, metric=None, flow=None):
    m = metric or FrozenMotion()
    cf = ClipFeatures("c", video)
    if flow is None:
        featurize([cf], m.requests(), BackbonePool())
    else:
        cf.features[m.requests()[0].key] = flow
    return m.score_clip(cf)


def test_motion_score_is_top_five_percent_mean():
    flow = np.zeros((1, 20, 20, 2), np.float32)  # 400 px: top 5% = 20 px
    flow[0, 0, :, 0] = 3.0  # exactly 20 pixels move 3 px
    assert motion_scores(flow)[0] == pytest.approx(3.0)
    flow[0, 1, :10, 0] = 100.0  # 10 faster pixels: top 20 = 10 x 100 + 10 x 3
    assert motion_scores(flow)[0] == pytest.approx(51.5)


def test_vbench_rule():
    assert dynamic_rule(256, 256, 16, 6.0) == (6.0, 4)
    assert dynamic_rule(32, 48, 8, 6.0) == (0.75, 2)
    assert dynamic_rule(32, 32, 2, 2.0)[1] == 1
    assert is_dynamic(np.array([0.0, 1.0, 1.0]), 0.5, 2) and not is_dynamic(np.array([0.0, 1.0, 0.0]), 0.5, 2)


def test_ground_truth_flow_static_vs_moving():
    still = sample_clip(0, WorldSpec(motions=("still",)))
    moving = sample_clip(0, WorldSpec(motions=tuple(DIRECTIONS)))
    fl = lambda c: {"forward": c.flow, "backward": -c.flow}
    assert _score(still.video, flow=fl(still)).value == 1.0
    assert _score(moving.video, flow=fl(moving)).value == 0.0


def test_dis_static_and_moving_and_full_freeze():
    moving = sample_clip(5, WorldSpec(motions=tuple(DIRECTIONS)))
    s = _score(moving.video)
    assert s.value == 0.0 and s.extras["motion_score"] > s.extras["threshold"]
    assert s.extras["frozen_fraction"] == 0.0
    frozen = _score(freeze(moving, 1.0, 0))
    assert frozen.value == 1.0 and frozen.extras["motion_score"] == 0.0
    half = _score(freeze(moving, 0.5, 0))  # moves for half the clip: dynamic by VBench's rule
    assert half.value == 0.0 and half.extras["frozen_fraction"] == pytest.approx(3 / 7)


def test_still_first_frame_only_and_one_frame():
    c = sample_clip(1, WorldSpec())
    still = Video(np.repeat(c.video.frames[:1], 6, axis=0))
    assert _score(still).value == 1.0
    one = _score(Video(c.video.frames[:1]))
    assert np.isnan(one.value) and one.note


def test_nan_flow_pairs_are_defined():
    flow = np.zeros((2, 8, 8, 2), np.float32)
    flow[0] = np.nan
    flow[1, :2, :, 0] = 5.0
    sc = motion_scores(flow)
    assert np.isnan(sc[0]) and sc[1] == pytest.approx(5.0)
    video = Video(np.zeros((3, 8, 8, 3), np.uint8))
    s = _score(video, flow={"forward": np.full((2, 8, 8, 2), np.nan, np.float32), "backward": np.zeros((2, 8, 8, 2))})
    assert np.isnan(s.value) and s.note


def test_batch_invariant():
    clips = [ClipFeatures(str(s), sample_clip(s, WorldSpec()).video) for s in range(4)]
    m = FrozenMotion()
    featurize(clips, m.requests(), BackbonePool())
    alone = ClipFeatures("x", clips[2].video)
    featurize([alone], m.requests(), BackbonePool())
    assert m.score_clip(clips[2]).extras == m.score_clip(alone).extras


def test_every_allowed_backbone_is_calibrated_and_others_need_a_scale():
    from vdeval.errors import SuiteError

    for backbone in FrozenMotion.allowed_backbones:
        FrozenMotion(backbone=backbone)  # calibrated: no error
    with pytest.raises(SuiteError, match=r"no calibrated threshold for backbone 'my_flow' \(calibrated: raft, raft_vbench, dis\)"):
        FrozenMotion(backbone="my_flow")  # e.g. a plugin's flow through the Python API
    assert FrozenMotion(backbone="my_flow", threshold_scale=3.0).params.threshold_scale == 3.0
