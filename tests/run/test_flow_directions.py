"""Flow in the directions the metrics read: a request carries them, requests of one feature merge to
their union, RAFT and DIS compute only those, and the cache never serves a forward-only flow to a
request that reads backward flow."""
import numpy as np
import pytest
import torch

from vdeval import registry
from vdeval.backbones import weights
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest, merge_requests
from vdeval.run.featurize import BackbonePool, FeatureCache, featurize
from vdeval.run.featurizing import feature_requests
from vdeval.video import Video

FWD = ("forward",)


def _moving(t=5, h=48, w=64, seed=0):
    """A textured frame panning right 2 px a frame: flow a detector can follow."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w + 2 * t, 3), dtype=np.uint8)
    base = np.repeat(np.repeat(base[::4, ::4], 4, 0), 4, 1)[:h, : w + 2 * t]
    return Video(np.stack([base[:, 2 * i: 2 * i + w] for i in range(t)]))


def test_requests_merge_to_the_union_of_directions():
    fwd, both = FeatureRequest("flow", "dis", directions=FWD), FeatureRequest("flow", "dis")
    assert FeatureRequest("flow", "dis", directions=("backward", "forward")) == both  # normalised
    assert merge_requests([fwd, fwd]) == [fwd]
    assert merge_requests([fwd, both]) == [both] and merge_requests([both, fwd]) == [both]
    back = FeatureRequest("flow", "dis", directions=("backward",))
    assert merge_requests([fwd, back]) == [both]
    other = FeatureRequest("flow", "dis", (("fps", 8.0),), directions=FWD)  # another key: kept apart
    assert merge_requests([fwd, other, both]) == [both, other]
    with pytest.raises(ValueError, match="flow kind"):
        FeatureRequest("frame_embedding", "clip", directions=FWD)
    with pytest.raises(ValueError, match="subset"):
        FeatureRequest("flow", "dis", directions=("sideways",))
    # the metrics: frozen motion, jitter and blur read forward flow; warping error both
    ms = [registry.resolve("metric", n)() for n in ("frozen_motion", "motion_jitter", "motion_blur")]
    flows = [r for r in feature_requests(ms) if r.kind == "flow"]
    assert len({r.key for r in flows}) == len(flows) and all(r.directions == FWD for r in flows)
    ms.append(registry.resolve("metric", "warping_error")())
    merged = {r.key: r.directions for r in feature_requests(ms) if r.kind == "flow"}
    assert merged[("flow", "dis")] == ()  # jitter and blur share warping error's flow: both directions


def test_dis_forward_only_is_the_forward_of_both_and_half_the_work():
    from vdeval.backbones.dis import dis_flow_video

    frames = _moving().frames
    both = dis_flow_video(frames)
    fwd = dis_flow_video(frames, directions=FWD)
    assert set(fwd) == {"forward"} and np.array_equal(fwd["forward"], both["forward"])
    assert float(np.median(both["forward"][..., 0])) == pytest.approx(-2.0, abs=0.5) or \
        float(np.median(both["forward"][..., 0])) == pytest.approx(2.0, abs=0.5)


def test_requests_meeting_on_one_input_run_each_pass_once(monkeypatch):
    """Frozen motion's 8 fps flow (a key of its own) and warping error's flow meet on a clip made at
    8 fps, where the sampling keeps every frame: whichever request comes first computes both
    directions, so the forward pass runs once per pair whatever the metrics' order."""
    from vdeval.backbones.dis import DISFlow

    asked = []
    compute = DISFlow.compute

    def counted(self, kind, clips, directions=("forward", "backward")):
        asked.append((len(clips), tuple(directions)))
        return compute(self, kind, clips, directions=directions)

    monkeypatch.setattr(DISFlow, "compute", counted)
    fwd8 = FeatureRequest("flow", "dis", (("fps", 8.0),), directions=FWD)  # frozen motion's
    both = FeatureRequest("flow", "dis")  # warping error's
    for order in ([fwd8, both], [both, fwd8]):
        asked.clear()
        a = ClipFeatures("a", _moving(t=6))  # made at 8 fps
        assert featurize([a], order, BackbonePool()) == {("flow", "dis"): 1}
        assert asked == [(1, ("forward", "backward"))]
        assert np.array_equal(a.features[fwd8.key]["forward"], a.features[both.key]["forward"])
    # at 24 fps the 8 fps sample is other frames (every third): two inputs, two computations, the
    # sampled one forward only
    asked.clear()
    v = _moving(t=7)
    b = ClipFeatures("b", Video(v.frames, fps=24.0))
    assert featurize([b], [fwd8, both], BackbonePool()) == {("flow", "dis"): 2}
    assert asked == [(1, ("forward",)), (1, ("forward", "backward"))]
    assert len(b.features[fwd8.key]["forward"]) == 2 and len(b.features[both.key]["forward"]) == 6


def test_metrics_meeting_on_one_input_share_the_pass_through_featurize_clips(monkeypatch):
    """The runner's and vdeval.evaluate's path runs one request at a time: frozen motion listed
    before warping error still costs one DIS computation of an 8 fps clip, in both directions."""
    from vdeval.backbones.dis import DISFlow
    from vdeval.run.featurizing import featurize_clips

    asked = []
    compute = DISFlow.compute

    def counted(self, kind, clips, directions=("forward", "backward")):
        asked.append(tuple(directions))
        return compute(self, kind, clips, directions=directions)

    monkeypatch.setattr(DISFlow, "compute", counted)
    ms = [registry.resolve("metric", n)() for n in ("frozen_motion", "warping_error")]
    reqs = [r for r in feature_requests(ms) if r.kind == "flow"]
    assert len({r.key for r in reqs}) == 2  # two keys: frozen motion samples to 8 fps
    a = ClipFeatures("a", _moving(t=6))
    assert featurize_clips([a], reqs, BackbonePool()) == {}
    assert asked == [("forward", "backward")]
    scores = [m.score_clip(a).value for m in ms]
    assert all(np.isfinite(scores))


def test_cached_forward_only_flow_never_serves_a_request_for_both(tmp_path):
    pool, cache = BackbonePool(), FeatureCache(tmp_path / "cache")
    fwd, both = FeatureRequest("flow", "dis", directions=FWD), FeatureRequest("flow", "dis")
    video = _moving()

    a = ClipFeatures("a", video)
    assert featurize([a], [fwd], pool, cache) == {("flow", "dis"): 1}
    assert set(a.get("flow", "dis")) >= {"forward"} and "backward" not in a.get("flow", "dis")

    b = ClipFeatures("b", video)  # a later run reads the cache: forward-only is served, both is not
    assert featurize([b], [fwd], pool, cache) == {("flow", "dis"): 0}
    assert featurize([b], [both], pool, cache) == {("flow", "dis"): 1}
    got = b.get("flow", "dis")
    assert np.array_equal(got["forward"], a.get("flow", "dis")["forward"]) and got["backward"].shape == got["forward"].shape

    c = ClipFeatures("c", video)  # the cache now holds both directions: it serves both requests
    assert featurize([c], [both, fwd], pool, cache) == {("flow", "dis"): 0}
    assert not cache.rejected

    d = ClipFeatures("d", video)  # within one pass, a forward-only result does not serve both either
    assert featurize([d], [fwd], pool) == {("flow", "dis"): 1}
    assert featurize([d], [both], pool) == {("flow", "dis"): 1} and "backward" in d.get("flow", "dis")


def test_raft_forward_only_runs_one_pass_per_pair_with_the_same_forward_flow(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones.raft import RaftFlow

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    torch.manual_seed(0)
    f = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), f)
    weights.install("raft-small-C_T_V2", f, custom=True)
    b = RaftFlow(model="small", iters=2, batch_size=8)  # all 3 pairs in one forward (the CPU default chunks them)
    seen = []
    net = b.model
    b.model = lambda x, y, num_flow_updates: seen.append(x.shape[0]) or net(x, y, num_flow_updates=num_flow_updates)
    clip = ClipInput(_moving(t=4, h=32, w=40))
    both = b.compute("flow", [clip])[0]
    fwd = b.compute("flow", [clip], directions=FWD)[0]
    back = b.compute("flow", [clip], directions=("backward",))[0]
    assert seen == [6, 3, 3]  # 3 pairs: both directions in one batch of 6, one direction 3
    assert set(fwd) == {"forward"} and set(back) == {"backward"}
    # the same pairs through the network in a smaller batch: equal up to float32 round-off
    np.testing.assert_allclose(fwd["forward"], both["forward"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(back["backward"], both["backward"], rtol=0, atol=1e-4)
