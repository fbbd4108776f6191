"""Stage 2: features. Every feature the metrics ask for, computed once per clip and backbone
identity by vdeval.run.featurize (the one place backbones run) and cached; clips are taken in groups
whose features fit `memory_gb`, and after scoring a clip keeps only what set-level metrics read.
A batch that raises (a file that stops decoding, a backbone that fails on one input) is retried
clip by clip, so one bad clip fails alone, with its error, and the others go on. A clip that
cannot be read fails whole; a clip that one backbone cannot take (a 3 x 100001 clip is too wide
for OpenCV's warp) keeps every other feature, and only the metrics that need the failed one get
NaN with its error as their note (ClipFeatures.feature_errors).
"""
from __future__ import annotations

from collections.abc import Sequence

from vdeval.errors import VideoReadError, WeightsError, WriteError
from vdeval.features import ClipFeatures, FeatureRequest, merge_requests
from vdeval.metrics.base import Metric
from vdeval.run.featurize import BackbonePool, CacheWriteError, FeatureCache, featurize, memory_groups
from vdeval.run.progress import one_line, progress_bar


def feature_requests(metrics, level: str | None = None) -> list[FeatureRequest]:
    """The distinct requests of `metrics` (only those of one level when given), in order; flow
    requests of one feature merged to the directions their readers need together."""
    return merge_requests(r for m in metrics if level is None or m.level == level for r in m.requests())


def bind_backbones(metrics, pool: BackbonePool) -> None:
    """Hand each metric that keeps something of them (see Metric.bind_backbones) the backbones
    serving its requests; the others keep nothing, so no network is built for them here."""
    for m in metrics:
        if type(m).bind_backbones is not Metric.bind_backbones:
            m.bind_backbones([pool.get(r.backbone, r.options) for r in m.requests()])


def by_backbone(requests: list[FeatureRequest], first: Sequence[tuple] = ()) -> list[FeatureRequest]:
    """`requests` with each backbone's together (in order of their first request; backbones in
    `first`, e.g. the one a pool still holds, first): a pool holding one network at a time then
    builds each once per pass."""
    order = list(dict.fromkeys([k for k in first if any((r.backbone, r.options) == k for r in requests)]
                               + [(r.backbone, r.options) for r in requests]))
    return sorted(requests, key=lambda r: order.index((r.backbone, r.options)))


# errors about the run, not about one clip: retrying clip by clip would only repeat them
RUN_ERRORS = (CacheWriteError, WriteError, WeightsError, MemoryError)


def featurize_safely(clips: list[ClipFeatures], requests: list[FeatureRequest], pool: BackbonePool,
                     cache: FeatureCache | None = None, **kwargs) -> tuple[dict, dict[str, str]]:
    """featurize(), and where it raises, each clip alone: (computed counts as featurize returns
    them, {clip_id: one-line error} of the clips that fail)."""
    computed, failed = _featurize_each(clips, requests, pool, cache, **kwargs)
    return computed, {cid: one_line(e) for cid, e in failed.items()}


def _featurize_each(clips, requests, pool, cache, **kwargs) -> tuple[dict, dict[str, Exception]]:
    try:
        return featurize(clips, requests, pool, cache, **kwargs), {}
    except RUN_ERRORS:  # the run cannot work at all (cache folder unwritable, weights gone): stop
        raise
    except Exception as e:
        if len(clips) <= 1:
            return {}, {c.clip_id: e for c in clips}
    computed: dict = {}
    failed: dict[str, Exception] = {}
    for clip in clips:
        counts, bad = _featurize_each([clip], requests, pool, cache, **kwargs)
        for key, n in counts.items():
            computed[key] = computed.get(key, 0) + n
        failed.update(bad)
    return computed, failed


def featurize_clips(clips: list[ClipFeatures], requests: list[FeatureRequest], pool: BackbonePool,
                    cache: FeatureCache | None = None, progress: bool = False, what: str = "",
                    **kwargs) -> dict[str, str]:
    """Every request for every clip, one request at a time, a failing clip never stopping the
    others (the runner's FeatureStage and vdeval.evaluate both come here); {clip_id: error} of
    the clips that cannot be scored at all (see FeatureStage.run)."""
    failed: dict[str, str] = {}
    if not requests or not clips:
        return failed
    bar = progress_bar(len(requests), f"features {what}", progress)
    for req in by_backbone(requests, pool.held()):  # each network built once per pass
        live = [c for c in clips if c.clip_id not in failed]
        for cid, e in _featurize_each(live, [req], pool, cache, **kwargs)[1].items():
            clip = next(c for c in live if c.clip_id == cid)
            if isinstance(e, VideoReadError):  # unreadable: every other request would fail the same way
                failed[cid] = one_line(e)
            else:
                clip.feature_errors[req.key] = one_line(e)
        bar.update(1)
    bar.close()
    for c in clips:
        if c.clip_id not in failed and c.feature_errors and all(r.key in c.feature_errors for r in requests):
            failed[c.clip_id] = next(iter(c.feature_errors.values()))
    return failed


class FeatureStage:
    """Features of one run's metrics: `run` fills clips, `groups` bounds memory, `slim` keeps the
    set-level ones."""

    def __init__(self, metrics: dict[str, Metric], pool: BackbonePool, cache: FeatureCache, batch_size: int = 16,
                 cache_max_mb: float | None = None, memory_gb: float = 2.0, progress: bool = False):
        self.metrics, self.pool, self.cache = metrics, pool, cache
        self.batch_size, self.memory_gb, self.progress = batch_size, memory_gb, progress
        self.cache_max_bytes = None if cache_max_mb is None else int(cache_max_mb * (1 << 20))
        self.requests = feature_requests(metrics.values())
        self.set_requests = feature_requests(metrics.values(), "set")  # all that is kept after scoring

    def run(self, clips: list[ClipFeatures], what: str, requests: list[FeatureRequest] | None = None) -> dict[str, str]:
        """Fill `clips`' features for `requests` (default: every metric's), one request at a time;
        returns {clip_id: error} of clips that cannot be scored at all: unreadable, or failing
        every request. A request that fails for a clip that is otherwise fine is kept in that
        clip's `feature_errors`, and the metrics that need it say so in their notes."""
        failed = featurize_clips(clips, self.requests if requests is None else requests, self.pool, self.cache,
                                 progress=self.progress, what=what, batch_size=self.batch_size,
                                 cache_max_bytes=self.cache_max_bytes)
        for c in clips:  # a clip without its set-level features cannot join the set: it fails whole
            bad = [c.feature_errors[r.key] for r in self.set_requests if r.key in c.feature_errors]
            if bad and c.clip_id not in failed:
                failed[c.clip_id] = bad[0]
        return failed

    def groups(self, clips: list[ClipFeatures]) -> list[list[ClipFeatures]]:
        """Clips in groups whose features fit in memory together."""
        return memory_groups(clips, self.requests, self.pool, self.memory_gb)

    def slim(self, clip: ClipFeatures) -> ClipFeatures:
        """The clip without its video and without features that no set-level metric reads."""
        keep = {r.key for r in self.set_requests}
        return ClipFeatures(clip.clip_id, None, clip.prompt, None, {k: v for k, v in clip.features.items() if k in keep})
