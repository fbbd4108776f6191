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
from vdeval.features import ClipFeatures, FeatureRequest
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
    assert runner.pool.hold == 1 and max(most) <= 1 and len(runner.pool.held()) == 1
    # each built at the start (weights checked before any work: dis, embedded), then once in the
    # group's pass, less the one still held from the start
    assert runner.pool.built == 3
    assert {"dis@2", "embedded@1"} <= set(out.results.backbones)
    assert out.results.row("clean", "warping_error").value is not None
