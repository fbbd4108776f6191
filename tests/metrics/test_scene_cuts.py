import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.scene_cuts import SceneCuts, consecutive_distances, detect_cuts, local_baseline
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import flicker, scene_cut


def _score(video, m=None):
    m = m or SceneCuts()
    cf = ClipFeatures("c", video)
    featurize([cf], m.requests(), BackbonePool())
    return m.score_clip(cf)


def test_detector_on_known_distances():
    d = np.array([0.01, 0.02, 0.6, 0.01, 0.02])
    cuts, excess = detect_cuts(d, k=3.0, eps=0.1, window=3)
    assert cuts.tolist() == [False, False, True, False, False]
    assert excess[2] == pytest.approx(0.6 - 3 * np.median([0.01, 0.02, 0.01, 0.02]))
    steady = np.full(6, 0.5)  # uniformly large change (fast motion, flicker) is no cut
    assert not detect_cuts(steady)[0].any()
    assert local_baseline(np.array([0.3]))[0] == 0.0
    assert detect_cuts(np.array([np.nan, 0.5, 0.0]))[0].tolist() == [False, True, False]


def test_consecutive_distances():
    e = np.array([[1.0, 0], [1, 0], [0, 1]])
    assert consecutive_distances(e) == pytest.approx([0.0, 1.0])


def test_world_clip_clean_vs_cut():
    c = sample_clip(11, WorldSpec())
    clean = _score(c.video)
    assert clean.value == 0.0 and len(clean.curve) == 7
    cut = _score(scene_cut(c, 0.5, 0))
    assert cut.value == 1.0 and cut.extras["cut_pairs"] == 3.0  # frames 3 -> 4
    assert _score(flicker(c, 1.0, 0)).value <= 1.0


def test_bad_inputs():
    c = sample_clip(1, WorldSpec(height=19, width=23, frames=3))
    assert np.isfinite(_score(c.video).value)
    one = _score(Video(c.video.frames[:1]))
    assert np.isnan(one.value) and one.note
    still = _score(Video(np.repeat(c.video.frames[:1], 5, axis=0)))
    assert still.value == 0.0
    cf = ClipFeatures("n", Video(np.zeros((3, 4, 4, 3), np.uint8)))
    cf.features[("frame_embedding", "pixels")] = {"value": np.array([[1, 0], [np.nan, 0], [1, 0]], np.float32)}
    s = SceneCuts().score_clip(cf)
    assert s.value == 0.0 and s.note


def test_batch_invariant():
    m = SceneCuts()
    vids = [sample_clip(s, WorldSpec()).video for s in range(3)]
    vids[1] = scene_cut(sample_clip(1, WorldSpec()), 0.5, 0)
    clips = [ClipFeatures(str(i), v) for i, v in enumerate(vids)]
    featurize(clips, m.requests(), BackbonePool())
    alone = ClipFeatures("x", vids[1])
    featurize([alone], m.requests(), BackbonePool())
    a, b = m.score_clip(clips[1]), m.score_clip(alone)
    assert a.value == b.value and a.curve == b.curve


def test_uncalibrated_backbone_needs_an_explicit_eps():
    from vdeval.errors import SuiteError

    for backbone in SceneCuts.allowed_backbones:
        if backbone in ("pixels", "embedded"):
            assert SceneCuts(backbone=backbone).backbone == backbone
            continue
        with pytest.raises(SuiteError, match=rf"no measured eps for backbone '{backbone}' \(measured: pixels, embedded\)"):
            SceneCuts(backbone=backbone)
        assert SceneCuts(backbone=backbone, eps=0.2).params.eps == 0.2  # an explicit floor is taken as given
