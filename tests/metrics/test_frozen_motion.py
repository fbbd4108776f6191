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


# VBench 45e79ec vbench/dynamic_degree.py, DynamicDegree's get_score / set_params / check_move,
# written out here (VBench needs decord, RAFT and its weights to import): per pair the mean of the
# int(h * w * 0.05) largest flow magnitudes; threshold 6.0 * (min(H, W) / 256) of the (unpadded)
# frame; dynamic once round(4 * (T / 16)) pairs score above it. No frame rate enters.
def _vbench_get_score(flow_hw2: np.ndarray) -> float:
    rad = np.sqrt(np.square(flow_hw2[..., 0]) + np.square(flow_hw2[..., 1]))
    h, w = rad.shape
    cut_index = int(h * w * 0.05)
    return float(np.mean(abs(np.sort(-rad.flatten()))[:cut_index]))


def _vbench_is_dynamic(flow: np.ndarray, scale: float = 6.0) -> bool:
    frames = flow.shape[0] + 1
    thres = scale * (min(flow.shape[1:3]) / 256.0)
    count_num = round(4 * (frames / 16.0))
    count = 0
    for score in (_vbench_get_score(f) for f in flow):
        if score > thres:
            count += 1
        if count >= count_num:
            return True
    return False


def _flow_features(flow: np.ndarray, fps: float) -> dict:
    return {"forward": flow, "backward": -flow, "source_fps": np.array([fps]), "input_fps": np.array([fps])}


def test_vbench_threshold_has_no_frame_rate_factor():
    """The issue's case: 4 fps, 128 px, every pair at 4.5 px: VBench calls it dynamic (threshold 3.0)."""
    flow = np.zeros((7, 128, 128, 2), np.float32)
    flow[..., 0] = 4.5
    video = Video(np.zeros((8, 128, 128, 3), np.uint8), fps=4.0)
    m = FrozenMotion(backbone="raft_vbench")
    s = _score(video, metric=m, flow=_flow_features(flow, 4.0))
    assert _vbench_is_dynamic(flow) and s.value == 0.0 and s.extras["threshold"] == pytest.approx(3.0)
    # the fps-aware rule stays available under its own name, and then differs from VBench's
    old = _score(video, metric=FrozenMotion(backbone="raft_vbench", low_fps_scaling=True), flow=_flow_features(flow, 4.0))
    assert old.value == 1.0 and old.extras["threshold"] == pytest.approx(6.0)


def test_frozen_flag_equals_vbench_dynamic_degree_on_random_flow():
    """Parity with VBench's rule on identical flow: sizes, lengths (T >= 3: VBench's count is 0
    below), frame rates 2-30 fps, per-pair magnitudes straddling the threshold."""
    rng = np.random.default_rng(0)
    for _ in range(60):
        h, w = (int(x) for x in rng.choice([32, 48, 64, 96, 128, 200], 2))
        t = int(rng.integers(3, 20))
        fps = float(rng.choice([2.0, 4.0, 6.0, 8.0, 24.0, 30.0]))
        thr = 6.0 * min(h, w) / 256
        flow = rng.normal(0, 0.3, (t - 1, h, w, 2)).astype(np.float32)
        flow[..., 0] += (thr * rng.uniform(0.5, 1.5, t - 1)).astype(np.float32)[:, None, None]
        s = _score(Video(np.zeros((t, h, w, 3), np.uint8), fps=fps), metric=FrozenMotion(backbone="raft_vbench"),
                   flow=_flow_features(flow, fps))
        assert s.value == (0.0 if _vbench_is_dynamic(flow) else 1.0), (h, w, t, fps)
        sc = motion_scores(flow)
        want = [_vbench_get_score(f) for f in flow]
        np.testing.assert_allclose(sc, want, rtol=1e-6)
