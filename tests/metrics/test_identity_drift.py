import numpy as np
import pytest

from vdeval.backbones.embedded import WEIGHTS_DIR, WEIGHTS_FILE
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.identity_drift import IdentityDrift, ReferenceFidelity, cosine_to, slope, subject_consistency
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import identity_swap

has_embedded = pytest.mark.skipif(not (WEIGHTS_DIR / WEIGHTS_FILE).is_file(),
                                  reason=f"embedded weights not found at {WEIGHTS_DIR / WEIGHTS_FILE}")


def _clip(e, video=None, ref=None, backbone="embedded"):
    video = video or Video(np.zeros((len(e), 4, 4, 3), np.uint8))
    cf = ClipFeatures("c", video)
    cf.features[("frame_embedding", backbone)] = {"value": np.asarray(e, np.float32)}
    if ref is not None:
        cf.features[("reference_embedding", backbone)] = {"value": np.asarray(ref, np.float32)}
    return cf


def test_vbench_subject_consistency_by_hand():
    e = np.array([[1, 0], [1, 1], [0, 1], [-1, 0]], np.float64)
    r = np.sqrt(0.5)
    # t=1: first r, prev r; t=2: first 0, prev r; t=3: first -1 -> 0, prev 0
    expected = ((r + r) / 2 + (0 + r) / 2 + 0) / 3
    assert subject_consistency(e) == pytest.approx(expected)
    s = IdentityDrift().score_clip(_clip(e))
    assert s.value == pytest.approx(expected)
    assert s.curve == pytest.approx([1.0, r, 0.0, -1.0])
    assert s.extras["last_to_first"] == pytest.approx(-1.0)
    assert s.extras["drift_slope"] == pytest.approx(slope([1.0, r, 0.0, -1.0]))
    assert slope([0, 1, 2, 3]) == pytest.approx(1.0)


def test_constant_embeddings_are_perfectly_consistent():
    e = np.tile([[0.3, -2.0, 1.0]], (5, 1))
    s = IdentityDrift().score_clip(_clip(e))
    assert s.value == pytest.approx(1.0) and s.extras["drift_slope"] == pytest.approx(0.0)


def test_bad_inputs_defined():
    one = IdentityDrift().score_clip(_clip(np.ones((1, 3))))
    assert np.isnan(one.value) and one.note
    e = np.ones((3, 3))
    e[1] = np.nan
    s = IdentityDrift().score_clip(_clip(e))
    assert np.isnan(s.value) and s.note
    z = np.ones((3, 3))
    z[2] = 0.0  # a zero embedding has no direction
    assert np.isnan(subject_consistency(z))
    assert np.isnan(cosine_to(z, z[0])[2])


def test_reference_fidelity():
    ref = np.array([1.0, 0.0])
    e = np.array([[1, 0], [0, 1], [1, 1]], np.float64)
    s = ReferenceFidelity().score_clip(_clip(e, ref=ref))
    assert s.value == pytest.approx((1 + 0 + np.sqrt(0.5)) / 3)
    assert ReferenceFidelity().requests()[1].kind == "reference_embedding"


def test_pixels_backbone_sees_a_colour_swap_and_is_batch_invariant():
    m = IdentityDrift(backbone="pixels")
    c = sample_clip(4, WorldSpec())
    clips = [ClipFeatures("a", c.video), ClipFeatures("b", identity_swap(c, 0.5, 0)),
             ClipFeatures("c", sample_clip(9, WorldSpec()).video)]
    featurize(clips, m.requests(), BackbonePool())
    clean, swapped = m.score_clip(clips[0]), m.score_clip(clips[1])
    assert swapped.value < clean.value and swapped.extras["last_to_first"] < clean.extras["last_to_first"]
    alone = ClipFeatures("x", clips[1].video)
    featurize([alone], m.requests(), BackbonePool())
    assert m.score_clip(alone).value == swapped.value


@has_embedded
def test_embedded_identity_swap_and_reference():
    clips = []
    for s in range(6):
        c = sample_clip(s, WorldSpec())
        clips += [ClipFeatures(f"{s}", c.video, c.caption, c.reference_image),
                  ClipFeatures(f"{s}x", identity_swap(c, 1.0, s), c.caption, c.reference_image)]
    for m in (IdentityDrift(), ReferenceFidelity()):
        featurize(clips, m.requests(), BackbonePool())
        v = np.array([m.score_clip(c).value for c in clips])
        assert np.all(np.isfinite(v))
        assert np.mean(v[0::2] > v[1::2]) >= 5 / 6  # clean beats its swapped twin


def test_pair_weighted_aggregation_is_vbench_pooling():
    """VBench's subject_consistency pools every frame pair of every clip: sim / cnt over all pairs.
    aggregate: pairs reproduces it through the runner's summary; the plain mean of clips does not."""
    from vdeval.run.summary import summarise
    from vdeval.results import ClipRecord

    rng = np.random.default_rng(3)
    clips = [rng.normal(size=(t, 6)) for t in (2, 5, 9)]
    sim, cnt = 0.0, 0  # VBench's loop, written out
    for e in clips:
        u = e / np.linalg.norm(e, axis=1, keepdims=True)
        for i in range(1, len(u)):
            sim += (max(0.0, float(u[i] @ u[i - 1])) + max(0.0, float(u[i] @ u[0]))) / 2
            cnt += 1
    metric = IdentityDrift(aggregate="pairs")
    scored = []
    for k, e in enumerate(clips):
        cf = ClipFeatures(f"c{k}", Video(np.zeros((len(e), 4, 4, 3), np.uint8)))
        cf.features[("frame_embedding", "embedded")] = {"value": e}
        s = metric.score_clip(cf)
        scored.append(ClipRecord(generator="g", clip_id=f"c{k}", seed=k, scores={"identity_drift": s.value},
                                 extras={"identity_drift": s.extras}))
    label = {"identity_drift": "embedded@1"}
    row = summarise({"identity_drift": metric}, label, "g", scored, [], [])[0]
    assert row.value == pytest.approx(sim / cnt) and row.aggregate == "weighted by n_pairs"
    assert row.ci_low <= row.value <= row.ci_high
    plain = summarise({"identity_drift": IdentityDrift()}, label, "g", scored, [], [])[0]
    assert plain.value == pytest.approx(np.mean([c.scores["identity_drift"] for c in scored]))
    assert abs(plain.value - sim / cnt) > 1e-3 and plain.aggregate is None
