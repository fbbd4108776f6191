"""One contract, every registered metric (in the spirit of torchmetrics' MetricTester).

For each metric, on small world clips and an offline backbone (its default, or the first shipped
one it allows): scoring clips together or one at a time gives the same numbers (batch
invariance); a one-frame clip gives a finite value or NaN with a note, never NaN without one, and
NaN exactly when the metric declares it needs more frames (`min_frames`); scoring twice gives the
same numbers (determinism); the description is JSON; the metric names the audit corruption it is
built to catch, or says why it has none. Set-level metrics: the value does not depend on the order
of the clips. A metric added to the registry (or installed as a plugin) is tested here by default.
"""
import json
import math

import numpy as np
import pytest

from vdeval import registry
from vdeval.audit import TEXT_CORRUPTIONS, own_failure
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import CORRUPTIONS

METRICS = registry.names("metric")
SPEC = WorldSpec(height=32, width=32, frames=6)
POOL = BackbonePool()  # one per module: backbones load once for all metrics
# batch invariance holds to float32 precision: the metrics' maths is per clip, but torch's CPU
# matmuls in the embedded backbone round differently by batch size (measured: up to 1e-8 relative,
# 3e-9 absolute on prompt_drift's difference of cosines)
BATCH_REL = 1e-6
# one frame that a frame-wise metric can score: NIQE pools 96 px patches and needs two
ONE_FRAME = WorldSpec(height=96, width=192, frames=1)


def offline_backbone(cls) -> str | None:
    """The metric's default backbone when it is shipped (tier embedded), else the first shipped one
    it allows; None when it has none (published weights only)."""
    options = [cls.default_backbone] + list(cls.allowed_backbones or ())
    for name in dict.fromkeys(b for b in options if b):
        if registry.resolve("backbone", name).tier == "embedded":
            return name
    return None


def make(name):
    cls = registry.resolve("metric", name)
    backbone = offline_backbone(cls)
    if backbone is None:
        pytest.skip(f"{name}: no shipped backbone (published weights only); its own tests use stand-in weights")
    return cls(backbone=backbone)


def clip(seed: int, frames: np.ndarray | None = None) -> ClipFeatures:
    c = sample_clip(seed, SPEC)
    video = c.video if frames is None else Video(frames, c.video.fps)
    return ClipFeatures(f"c{seed}", video, prompt=c.caption, reference_image=c.reference_image)


def scored(metric, clips: list[ClipFeatures]) -> list:
    featurize(clips, metric.requests(), POOL)
    return [metric.score_clip(c) for c in clips]


def same(a, b, rel: float = 0.0) -> bool:
    """Two ClipScores with equal value, curve and extras (NaN equal to NaN), to `rel`."""
    def eq(x, y):
        if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
            return True
        return x == y or (rel > 0 and x == pytest.approx(y, rel=rel, abs=rel / 10))
    return (eq(a.value, b.value) and a.note == b.note and len(a.curve or []) == len(b.curve or [])
            and all(eq(x, y) for x, y in zip(a.curve or [], b.curve or []))
            and a.extras.keys() == b.extras.keys() and all(eq(a.extras[k], b.extras[k]) for k in a.extras))


@pytest.mark.parametrize("name", METRICS)
def test_description_is_json_and_declares_its_contract(name):
    cls = registry.resolve("metric", name)
    metric = cls()
    desc = json.loads(json.dumps(metric.describe(), allow_nan=False))  # plain JSON, no NaN, no objects
    assert desc["name"] == name == cls.name and desc["version"] and isinstance(desc["higher_is_better"], bool)
    assert cls.level in ("clip", "set") and cls.failure_mode
    assert isinstance(cls.min_frames, int) and cls.min_frames >= 1
    corruption, reason = own_failure(cls), getattr(cls, "audit_exempt", None)
    assert (corruption in CORRUPTIONS or corruption in TEXT_CORRUPTIONS) or (corruption is None and reason), \
        f"{name}: declare audit_corruption (one of the world's corruptions) or audit_exempt (why there is none)"


@pytest.mark.parametrize("name", [m for m in METRICS if registry.resolve("metric", m).level == "clip"])
def test_per_clip_metric_contract(name):
    metric = make(name)
    together = scored(metric, [clip(s) for s in (1, 2, 3)])
    alone = [scored(metric, [clip(s)])[0] for s in (1, 2, 3)]
    for a, b in zip(together, alone):  # a float32 backbone's batched matmuls may round differently
        assert same(a, b, rel=BATCH_REL), f"{name}: a clip scores differently alone ({b}) and in a batch ({a})"
    again = scored(metric, [clip(s) for s in (1, 2, 3)])
    assert all(same(a, b) for a, b in zip(together, again)), f"{name}: not deterministic"
    assert all(math.isfinite(s.value) for s in together), f"{name}: NaN on ordinary world clips: {together}"
    for s in together:
        json.dumps({"value": s.value, "curve": s.curve, "extras": s.extras, "note": s.note})
    frames = sample_clip(4, ONE_FRAME if metric.min_frames == 1 else SPEC).video.frames
    enough = scored(metric, [clip(4, frames[:metric.min_frames])])[0]
    assert math.isfinite(enough.value), f"{name}: declares min_frames {metric.min_frames}, but that many give {enough}"
    for n in range(1, metric.min_frames):  # a one-frame clip, and any clip too short for the metric
        short = scored(metric, [clip(4, frames[:n])])[0]
        assert math.isnan(short.value) and short.note, f"{name}: a {n}-frame clip should be NaN with a note, got {short}"


@pytest.mark.parametrize("name", [m for m in METRICS if registry.resolve("metric", m).level == "set"])
def test_set_level_metric_contract(name):
    metric = make(name)
    fake, real = [clip(s) for s in range(10, 16)], [clip(s) for s in range(20, 26)]
    featurize(fake + real, metric.requests(), POOL)
    first = metric.score_set(fake, real)
    assert math.isfinite(first.value) and first.n == 6 and first.n_real == 6
    again = metric.score_set(fake, real)
    assert again.value == first.value and again.ci == first.ci, f"{name}: not deterministic"
    shuffled = metric.score_set(fake[::-1], real[3:] + real[:3])
    assert shuffled.value == pytest.approx(first.value, rel=1e-9, abs=1e-12), f"{name}: depends on clip order"
    json.dumps({"value": first.value, "ci": first.ci, "extras": first.extras}, allow_nan=False)


def test_the_base_applies_min_frames_before_the_metric_runs():
    # a plugin-style metric with no guard of its own: the base answers for clips too short for it,
    # counting the frames its backbone's input spec delivers (flow: pairs + 1)
    from vdeval.features import FeatureRequest
    from vdeval.metrics.base import ClipScore, Metric, NoParams

    calls = []

    class NeedsFour(Metric[NoParams]):
        name, version, higher_is_better, level, default_backbone = "needs_four", "1", True, "clip", "dis"
        min_frames = 4

        def requests(self):
            return [FeatureRequest("flow", "dis")]

        def score_clip(self, clip):
            calls.append(clip.clip_id)
            return ClipScore(1.0)

    metric = NeedsFour()
    frames = sample_clip(1, SPEC).video.frames
    short, enough = clip(1, frames[:3]), clip(2, frames[:4])
    featurize([short, enough], metric.requests(), POOL)
    got = metric.score_clip(short)
    assert math.isnan(got.value) and got.note.startswith("3-frame clip (as dis decodes it): needs_four needs at least 4")
    assert metric.score_clip(enough).value == 1.0 and calls == ["c2"]
