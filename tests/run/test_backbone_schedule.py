"""Backbones built when their first request comes and freed when another is needed: a pool with
hold=1 (the runner's) never holds two networks at once, builds each once per pass over a group,
keeps a card (label, identity, specs) that never rebuilds a network, and gives the same scores as
a pool that holds every backbone."""
import gc
import weakref

import numpy as np
import pytest

from vdeval import registry
from vdeval.backbones.base import Backbone
from vdeval.errors import WeightsError
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.run.featurizing import by_backbone
from vdeval.world import sample_clip

ALIVE: "weakref.WeakSet[Backbone]" = weakref.WeakSet()


class Emb(Backbone):
    """A stand-in frame embedder whose live instances are counted."""

    name, version, provides, protocol = "emb_a", "1", ("frame_embedding",), "mean colour"

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        ALIVE.add(self)
        self.peak = len(ALIVE)

    def compute(self, kind, clips):
        gc.collect()
        self.peak = max(self.peak, len(ALIVE))
        return [{"value": c.video.frames.reshape(c.video.num_frames, -1, 3).mean(1).astype(np.float32)} for c in clips]


class EmbB(Emb):
    name = "emb_b"


@pytest.fixture
def stand_ins(monkeypatch):
    monkeypatch.setitem(registry.BACKBONES, "emb_a", "test_backbone_schedule:Emb")
    monkeypatch.setitem(registry.BACKBONES, "emb_b", "test_backbone_schedule:EmbB")


def _clips():
    return [ClipFeatures(f"c{i}", sample_clip(i).video) for i in range(3)]


def test_one_network_held_at_a_time_and_each_built_once_per_pass(stand_ins):
    reqs = [FeatureRequest("frame_embedding", "emb_a"), FeatureRequest("frame_embedding", "emb_b"),
            FeatureRequest("frames", "emb_a")]
    pool = BackbonePool(hold=1)
    cs = _clips()
    assert by_backbone(reqs) == [reqs[0], reqs[2], reqs[1]]
    assert by_backbone(reqs, [("emb_b", ())]) == [reqs[1], reqs[0], reqs[2]]  # the held one first
    for r in by_backbone(reqs):
        featurize(cs, [r], pool)
    gc.collect()
    assert pool.built == 2 and pool.held() == [("emb_b", ())] and len(ALIVE) == 1
    assert pool.card("emb_a").label() == "emb_a@1" and pool.built == 2  # a card does not rebuild
    held_all = BackbonePool()
    ref = _clips()
    featurize(ref, reqs, held_all)
    for a, b in zip(cs, ref):
        assert np.array_equal(a.value("frame_embedding", "emb_a"), b.value("frame_embedding", "emb_a"))
        assert np.array_equal(a.value("frame_embedding", "emb_b"), b.value("frame_embedding", "emb_b"))
    assert len(held_all.held()) == 2


def test_the_runner_holds_one_network_at_a_time(tmp_path):
    from helpers import make_suite

    from vdeval.run.runner import Runner

    suite = make_suite(tmp_path, """
    name: s
    world: {height: 24, width: 24, frames: 6}
    prompts: {source: world, count: 3}
    generators:
      - {name: clean, kind: world}
    metrics:
      - {name: motion_jitter, backbone: dis}
      - {name: scene_cuts, backbone: embedded}
      - {name: warping_error, backbone: dis}
    """)
    runner = Runner(suite, out=tmp_path / "run", progress=False)
    most = []
    get = runner.pool.get
    runner.pool.get = lambda *a: (most.append(len(runner.pool.held())), get(*a))[1]
    out = runner.execute()
    assert runner.pool.hold == 1 and max(most) <= 1
    # dis and embedded build no network lazily (nothing to defer: DIS has none, embedded's takes
    # 0.1 s): each built at the start, then once in the group's pass less the one still held from
    # the start; the last group frees each after its last request
    assert runner.pool.built == 3 and runner.pool.held() == []
    assert {"dis@2", "embedded@1"} <= set(out.results.backbones)
    assert out.results.row("clean", "warping_error").value is not None


class Lazy(Backbone):
    """A stand-in published backbone: options and weights checked in __init__, network in build()."""

    name, version, provides, protocol = "lazy_a", "1", ("frame_embedding",), "mean colour through a linear map"
    network = ("net",)
    builds = 0

    def __init__(self, device="cpu", **options):
        super().__init__(device, **options)
        if options.get("missing"):
            raise WeightsError("lazy_a weights missing: w.pt expected at /nowhere/w.pt", "install with `x`")

    def build(self):
        import torch

        Lazy.builds += 1
        torch.manual_seed(0)
        self.net = torch.nn.Linear(3, 4)

    def compute(self, kind, clips):
        import torch

        with torch.no_grad():
            return [{"value": self.net(torch.from_numpy(c.video.frames.reshape(c.video.num_frames, -1, 3).mean(1)
                                                        .astype(np.float32))).numpy()} for c in clips]


class LazyB(Lazy):
    name = "lazy_b"


@pytest.fixture
def lazy_ones(monkeypatch):
    monkeypatch.setitem(registry.BACKBONES, "lazy_a", "test_backbone_schedule:Lazy")
    monkeypatch.setitem(registry.BACKBONES, "lazy_b", "test_backbone_schedule:LazyB")
    monkeypatch.setattr(Lazy, "builds", 0)


def test_a_card_checks_weights_without_building_the_network(lazy_ones):
    pool = BackbonePool(hold=1)
    card = pool.card("lazy_a")
    assert card.label() == "lazy_a@1" and Lazy.builds == 0 and pool.built == 0 and pool.held() == []
    cs = _clips()
    featurize(cs, [FeatureRequest("frame_embedding", "lazy_a")], pool)
    assert Lazy.builds == 1 and pool.built == 1  # built once, at its first use
    assert Lazy().built and Lazy.builds == 2  # constructing one directly still builds it whole
    ref = Lazy()
    for c in cs:
        want = ref.compute("frame_embedding", [ClipInput(c.video)])[0]["value"]
        assert np.array_equal(c.value("frame_embedding", "lazy_a"), want)
    # missing weights: the same one-line error from the card as from constructing it, before any work
    with pytest.raises(WeightsError) as direct:
        Lazy(missing=True)
    with pytest.raises(WeightsError) as carded:
        BackbonePool(hold=1).card("lazy_a", (("missing", True),))
    assert str(carded.value) == str(direct.value)


def _groups_run(budget_gb: float, n_groups: int = 3):
    """vdeval.evaluate's loop: memory groups of one clip each, two lazy backbones."""
    from vdeval.run.featurize import keep_budget
    from vdeval.run.featurizing import featurize_clips

    reqs = [FeatureRequest("frame_embedding", "lazy_a"), FeatureRequest("frame_embedding", "lazy_b")]
    pool, cs, most = BackbonePool(hold=1), _clips()[:n_groups], []
    for i, c in enumerate(cs):
        more = i < len(cs) - 1
        pool.keep_bytes = keep_budget(pool, 0, budget_gb) if more else 0
        featurize_clips([c], reqs, pool, release=not more)
        most.append(len(pool.held()))
    return pool, cs, most


def test_networks_kept_across_memory_groups_while_the_budget_allows(lazy_ones):
    pool, kept, most = _groups_run(2.0)
    assert pool.built == 2 and Lazy.builds == 2  # each network once for the three groups
    assert most == [2, 2, 0]  # both kept between groups; the last group frees each after its last request
    pool, rebuilt, most = _groups_run(0.0)
    # no budget: one network at a time; each later group starts with the one still held, rebuilds the other
    assert pool.built == 2 + 1 + 1 and most == [1, 1, 0]
    for a, b in zip(kept, rebuilt):
        for name in ("lazy_a", "lazy_b"):
            assert np.array_equal(a.value("frame_embedding", name), b.value("frame_embedding", name))


def test_raft_card_does_not_build_and_features_match_an_eager_build(tmp_path, monkeypatch):
    import torch
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones import weights
    from vdeval.backbones.raft import RaftFlow

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    opts = (("iters", 2), ("model", "small"))
    with pytest.raises(WeightsError) as direct:
        RaftFlow(model="small", iters=2)
    with pytest.raises(WeightsError) as carded:
        BackbonePool(hold=1).card("raft", opts)
    assert str(carded.value) == str(direct.value) and "vdeval weights install raft-small-C_T_V2" in str(direct.value)
    torch.manual_seed(0)
    f = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), f)
    weights.install("raft-small-C_T_V2", f, custom=True)
    pool = BackbonePool(hold=1)
    card = pool.card("raft", opts)
    assert pool.built == 0 and pool._checked[("raft", opts)].__dict__.get("model") is None  # no network yet
    assert card.identity_hash() == RaftFlow(model="small", iters=2).identity_hash()
    clip = ClipFeatures("c", sample_clip(0).video)
    featurize([clip], [FeatureRequest("flow", "raft", opts)], pool)
    assert pool.built == 1
    eager = RaftFlow(model="small", iters=2).compute("flow", [ClipInput(sample_clip(0).video)])[0]
    for d in ("forward", "backward"):
        assert np.array_equal(clip.get("flow", "raft", opts)[d], eager[d])
    # a truncated file fails the card's cheap format check, as loading it would
    f.write_bytes(f.read_bytes()[:100])
    weights.install("raft-small-C_T_V2", f, custom=True)
    with pytest.raises(WeightsError, match="not a PyTorch checkpoint"):
        BackbonePool(hold=1).card("raft", opts)


class LazyBroken(Lazy):
    """Weights present and hashed, but their tensors do not fit the network: found when it is built."""

    name = "lazy_broken"

    def build(self):
        raise WeightsError("lazy_broken: w.pt does not load into the network: size mismatch", "reinstall it")


def test_weights_that_do_not_load_stop_the_run_at_first_use_not_one_clip(lazy_ones, monkeypatch):
    from vdeval.run.featurizing import featurize_clips

    monkeypatch.setitem(registry.BACKBONES, "lazy_broken", "test_backbone_schedule:LazyBroken")
    pool = BackbonePool(hold=1)
    pool.card("lazy_broken")  # the cheap check passes
    with pytest.raises(WeightsError, match="does not load into the network"):
        featurize_clips(_clips(), [FeatureRequest("frame_embedding", "lazy_broken")], pool)
