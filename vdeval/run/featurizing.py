"""Stage 2: features. Every feature the metrics ask for, computed once per clip and backbone
identity by vdeval.run.featurize (the one place backbones run) and cached; clips are taken in groups
whose features fit `memory_gb`, and after scoring a clip keeps only what set-level metrics read.
A batch that raises (a file that stops decoding, a backbone that fails on one input) is retried
clip by clip, so one bad clip fails alone, with its error, and the others go on.
"""
from __future__ import annotations

from vdeval.errors import WeightsError, WriteError
from vdeval.run.featurize import BackbonePool, CacheWriteError, FeatureCache, featurize, memory_groups
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import Metric
from vdeval.run.progress import one_line, progress_bar


def feature_requests(metrics, level: str | None = None) -> list[FeatureRequest]:
    """The distinct requests of `metrics` (only those of one level when given), in order."""
    reqs = [r for m in metrics if level is None or m.level == level for r in m.requests()]
    return list(dict.fromkeys(reqs))


def bind_backbones(metrics, pool: BackbonePool) -> None:
    """Hand each metric the backbones serving its requests (see Metric.bind_backbones)."""
    for m in metrics:
        m.bind_backbones([pool.get(r.backbone, r.options) for r in m.requests()])


# errors about the run, not about one clip: retrying clip by clip would only repeat them
RUN_ERRORS = (CacheWriteError, WriteError, WeightsError, MemoryError)


def featurize_safely(clips: list[ClipFeatures], requests: list[FeatureRequest], pool: BackbonePool,
                     cache: FeatureCache | None = None, **kwargs) -> tuple[dict, dict[str, str]]:
    """featurize(), and where it raises, each clip alone: (computed counts as featurize returns
    them, {clip_id: one-line error} of the clips that fail)."""
    try:
        return featurize(clips, requests, pool, cache, **kwargs), {}
    except RUN_ERRORS:  # the run cannot work at all (cache folder unwritable, weights gone): stop
        raise
    except Exception as e:
        if len(clips) <= 1:
            return {}, {c.clip_id: one_line(e) for c in clips}
    computed: dict = {}
    failed: dict[str, str] = {}
    for clip in clips:
        counts, bad = featurize_safely([clip], requests, pool, cache, **kwargs)
        for key, n in counts.items():
            computed[key] = computed.get(key, 0) + n
        failed.update(bad)
    return computed, failed


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
        returns {clip_id: error} of clips whose features could not be computed."""
        reqs = self.requests if requests is None else requests
        failed: dict[str, str] = {}
        if not reqs or not clips:
            return failed
        bar = progress_bar(len(reqs), f"features {what}", self.progress)
        for req in reqs:
            live = [c for c in clips if c.clip_id not in failed]
            failed.update(featurize_safely(live, [req], self.pool, self.cache, batch_size=self.batch_size,
                                           cache_max_bytes=self.cache_max_bytes)[1])
            bar.update(1)
        bar.close()
        return failed

    def groups(self, clips: list[ClipFeatures]) -> list[list[ClipFeatures]]:
        """Clips in groups whose features fit in memory together."""
        return memory_groups(clips, self.requests, self.pool, self.memory_gb)

    def slim(self, clip: ClipFeatures) -> ClipFeatures:
        """The clip without its video and without features that no set-level metric reads."""
        keep = {r.key for r in self.set_requests}
        return ClipFeatures(clip.clip_id, None, clip.prompt, None, {k: v for k, v in clip.features.items() if k in keep})
