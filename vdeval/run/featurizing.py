"""Stage 2: features. Every feature the metrics ask for, computed once per clip and backbone
identity by vdeval.run.featurize (the one place backbones run) and cached; clips are taken in groups
whose features fit `memory_gb`, and after scoring a clip keeps only what set-level metrics read.
A batch that raises (a file that stops decoding, a backbone that fails on one input) is retried
clip by clip, so one bad clip fails alone, with its error, and the others go on. Memory is checked
before a group starts (vdeval/run/memory.py): a group that does not fit in the memory free now runs a
clip at a time, and a clip that does not fit alone, or that runs out of memory all the same, fails
with its metric, backbone and what to change; the run goes on.
"""
from __future__ import annotations

from vdeval.errors import WeightsError, WriteError
from vdeval.run.featurize import BackbonePool, CacheWriteError, FeatureCache, featurize, memory_groups
from vdeval.run.memory import MemoryShortage, available_bytes, clip_need, group_need, shortage
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


# errors about the run, not about one clip: retrying clip by clip would only repeat them. Running
# out of memory is not one of them: a clip that needs too much fails alone (see FeatureStage.run)
RUN_ERRORS = (CacheWriteError, WriteError, WeightsError)


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
    on_done = kwargs.pop("on_done", None)  # counted once per clip here (the failed pass may have counted some)
    for clip in clips:
        counts, bad = featurize_safely([clip], requests, pool, cache, **kwargs)
        if on_done is not None:
            on_done(1)
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
        self.details: dict[str, dict] = {}  # clip_id -> {metric, backbone, hint} of memory failures

    def metrics_of(self, req: FeatureRequest) -> str:
        """The labels of the metrics that read `req`, for messages."""
        return ", ".join(label for label, m in self.metrics.items() if req in m.requests())

    def run(self, clips: list[ClipFeatures], what: str, requests: list[FeatureRequest] | None = None) -> dict[str, str]:
        """Fill `clips`' features for `requests` (default: every metric's), one request at a time;
        returns {clip_id: error} of clips whose features could not be computed (`details` then
        holds the metric, backbone and hint of those that ran out of memory)."""
        reqs = self.requests if requests is None else requests
        failed: dict[str, str] = {}
        if not reqs or not clips:
            return failed
        free = available_bytes()
        metrics = list(self.metrics.values()) if requests is None else []
        if free is not None and len(clips) > 1 and group_need([clip_need(c, reqs, self.pool, metrics) for c in clips]) > free:
            parts = [[c] for c in clips]  # the group does not fit in what is free now: a clip at a time
        else:
            parts = [clips]
        for part in parts:
            if len(part) == 1 and free is not None:
                short = shortage(part[0], reqs, self.pool, available_bytes(), self.metrics_of, metrics)
                if short is not None:
                    self._short(short, failed)
                    continue
            failed.update(self._run_part(part, what, reqs, failed))
        return failed

    def _short(self, short: MemoryShortage, failed: dict[str, str]) -> None:
        failed[short.clip_id] = str(short)
        req = short.request
        self.details[short.clip_id] = {"metric": short.metrics or None, "backbone": req.backbone if req else None,
                                       "hint": short.hint}

    def _run_part(self, clips: list[ClipFeatures], what: str, reqs: list[FeatureRequest],
                  failed: dict[str, str]) -> dict[str, str]:
        bar = progress_bar(len(clips) * len(reqs), f"features {what}", self.progress, unit="clip")
        for req in reqs:
            live = [c for c in clips if c.clip_id not in failed]
            bar.set_description(f"features {what}: {req.kind} ({req.backbone}) for {self.metrics_of(req) or 'set'}")
            _, bad = featurize_safely(live, [req], self.pool, self.cache, batch_size=self.batch_size,
                                      cache_max_bytes=self.cache_max_bytes, on_done=bar.update)
            for cid, err in bad.items():
                if err.startswith("MemoryError"):
                    self._short(MemoryShortage(cid, None, None, req, self.metrics_of(req), "while computing"), failed)
                else:
                    failed[cid] = err
            bar.update(len(clips) - len(live))  # clips that failed earlier: skipped
        bar.close()
        return failed

    def groups(self, clips: list[ClipFeatures]) -> list[list[ClipFeatures]]:
        """Clips in groups whose features fit in memory together."""
        return memory_groups(clips, self.requests, self.pool, self.memory_gb, list(self.metrics.values()))

    def slim(self, clip: ClipFeatures) -> ClipFeatures:
        """The clip without its video and without features that no set-level metric reads."""
        keep = {r.key for r in self.set_requests}
        return ClipFeatures(clip.clip_id, None, clip.prompt, None, {k: v for k, v in clip.features.items() if k in keep})
