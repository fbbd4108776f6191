import numpy as np
import pytest

from vdeval.backbones.base import Backbone
from vdeval.run.featurize import BackbonePool, FeatureCache, featurize
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.world import sample_clip


class CountingFlow(Backbone):
    """A stand-in flow backbone that records every batch it is asked for."""

    name, version, provides, protocol = "counting", "1", ("flow",), "zero flow"

    def __init__(self, device="cpu", fail_above=None, **options):
        super().__init__(device, **options)
        self.batches = []
        self.fail_above = fail_above

    def compute(self, kind, clips):
        if self.fail_above and len(clips) > self.fail_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.batches.append(len(clips))
        out = []
        for c in clips:
            T, H, W, _ = c.video.frames.shape
            z = np.zeros((T - 1, H, W, 2), np.float32) + c.video.frames.mean()
            out.append({"forward": z, "backward": -z})
        return out


@pytest.fixture
def pool(monkeypatch):
    from vdeval import registry

    # pytest imports test files by their base name (tests/ is on sys.path), so this resolves here
    monkeypatch.setitem(registry.BACKBONES, "counting", "test_featurize:CountingFlow")
    return BackbonePool("cpu")


def clips(n):
    return [ClipFeatures(f"c{i}", sample_clip(i).video) for i in range(n)]


def test_each_feature_once_per_clip_and_cached(pool, tmp_path):
    req = FeatureRequest("flow", "counting")
    cs = clips(5)
    done = featurize(cs, [req, req, req], pool, FeatureCache(tmp_path), batch_size=2)
    assert done == {("flow", "counting"): 5}
    assert pool.get("counting").batches == [2, 2, 1]
    fresh = clips(5)
    again = featurize(fresh, [req], pool, FeatureCache(tmp_path))
    assert again == {("flow", "counting"): 0}  # all from the cache, no pickle involved
    for a, b in zip(cs, fresh):
        np.testing.assert_array_equal(a.get("flow", "counting")["forward"], b.get("flow", "counting")["forward"])


def test_corrupt_cache_file_is_recomputed(pool, tmp_path):
    req = FeatureRequest("flow", "counting")
    featurize(clips(1), [req], pool, FeatureCache(tmp_path))
    for f in tmp_path.rglob("*.safetensors"):
        f.write_bytes(b"torn")
    assert featurize(clips(1), [req], pool, FeatureCache(tmp_path)) == {("flow", "counting"): 1}


def test_out_of_memory_halves_the_batch(pool):
    bb = pool.get("counting")
    bb.fail_above = 2
    featurize(clips(5), [FeatureRequest("flow", "counting")], pool, batch_size=8)
    assert bb.batches == [2, 2, 1]


class AmpFlow(CountingFlow):
    """A stand-in whose protocol allows bfloat16 autocast; records the autocast state it ran under."""

    name, amp = "amp", True

    def compute(self, kind, clips):
        import torch

        self.ran_under = {d: (torch.is_autocast_enabled(d), torch.get_autocast_dtype(d)) for d in ("cpu", "cuda")}
        return super().compute(kind, clips)


def test_mixed_precision_decision_per_protocol_and_device():
    import contextlib
    import warnings

    import torch

    from vdeval.backbones.dis import DISFlow
    from vdeval.run.featurize import _autocast

    assert not AmpFlow("cpu").uses_amp() and AmpFlow("cuda:0").uses_amp()
    assert not DISFlow("cuda").uses_amp()  # flow keeps float32
    assert AmpFlow("cuda").identity()["amp"] and not AmpFlow("cpu").identity()["amp"]  # part of the cache key
    # the context featurize would enter, built but not entered (CPU-only torch disables it on entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available": torch warns when it builds it here
        ctx = _autocast(AmpFlow("cuda:0"))
    assert isinstance(ctx, torch.autocast) and (ctx.device, ctx.fast_dtype) == ("cuda", torch.bfloat16)
    assert isinstance(_autocast(AmpFlow("cpu")), contextlib.nullcontext)
    assert isinstance(_autocast(DISFlow("cuda")), contextlib.nullcontext)


def _amp_pool(monkeypatch, device):
    from vdeval import registry

    monkeypatch.setitem(registry.BACKBONES, "amp", "test_featurize:AmpFlow")
    return BackbonePool(device)


def test_featurize_on_cpu_runs_an_amp_backbone_in_float32(monkeypatch):
    import torch

    pool = _amp_pool(monkeypatch, "cpu")
    featurize(clips(2), [FeatureRequest("flow", "amp")], pool)
    ran = pool.get("amp").ran_under
    assert not ran["cpu"][0] and not ran["cuda"][0], ran  # no autocast of either kind on a CPU run
    assert not torch.is_autocast_enabled("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_featurize_on_cuda_runs_an_amp_backbone_under_bfloat16_autocast(monkeypatch):
    import torch

    pool = _amp_pool(monkeypatch, "cuda")
    featurize(clips(2), [FeatureRequest("flow", "amp")], pool)
    assert pool.get("amp").ran_under["cuda"] == (True, torch.bfloat16)


def test_content_hash_once_per_clip_whatever_the_requests(pool, monkeypatch):
    from vdeval.video import Video

    calls = []
    real_hash = Video.content_hash
    monkeypatch.setattr(Video, "content_hash", lambda self: calls.append(1) or real_hash(self))
    pool.get("counting")
    featurize(clips(3), [FeatureRequest("flow", "counting", (("a", 1),)), FeatureRequest("flow", "counting")], pool)
    assert len(calls) == 3
    given = clips(2)
    for c in given:
        c.clip_hash = "known"
    featurize(given, [FeatureRequest("flow", "counting")], pool, FeatureCache(None))
    assert len(calls) == 3  # a hash the caller already has is not recomputed


def test_memory_estimate_counts_flow_at_the_backbones_itemsize(tmp_path):
    from vdeval.run.featurize import clip_bytes

    pool = BackbonePool("cpu")
    c = clips(1)
    for kind in ("flow", "flow_even"):
        req = FeatureRequest(kind, "dis")
        featurize(c, [req], pool, FeatureCache(tmp_path))
        flow = c[0].get(kind, "dis")
        held = flow["forward"].nbytes + flow["backward"].nbytes  # float16 pairs
        assert clip_bytes(c[0], [req], pool) == held
