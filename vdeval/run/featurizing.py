"""Stage 2: features. Every feature the metrics ask for, computed once per clip and backbone
identity by vdeval.run.featurize (the one place backbones run) and cached; clips are taken in groups
whose features fit `memory_gb`, and after scoring a clip keeps only what set-level metrics read.
A batch that raises (a file that stops decoding, a backbone that fails on one input) is retried
clip by clip, so one bad clip fails alone, with its error, and the others go on. A clip that
cannot be read fails whole; a clip that one backbone cannot take (a 3 x 100001 clip is too wide
for OpenCV's warp) keeps every other feature, and only the metrics that need the failed one get
NaN with its error as their note (ClipFeatures.feature_errors). Memory is checked before a group
starts (vdeval/run/memory.py): a group that does not fit in the memory free now runs a clip at a
time, and a clip that does not fit alone, or that runs out of memory all the same, fails with its
metric, backbone and what to change; the run goes on.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

from vdeval.errors import VideoReadError, WeightsError, WriteError
from vdeval.features import ClipFeatures, FeatureRequest, merge_requests
from vdeval.metrics.base import Metric
from vdeval.run.featurize import (
    BackbonePool,
    CacheWriteError,
    FeatureCache,
    directions_per_input,
    featurize,
    keep_budget,
    memory_groups,
)
from vdeval.run.memory import MemoryShortage, available_bytes, clip_need, group_need, shortage
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


# errors about the run, not about one clip: retrying clip by clip would only repeat them. Running
# out of memory is not one of them: a clip that needs too much fails alone (see FeatureStage.run)
RUN_ERRORS = (CacheWriteError, WriteError, WeightsError)


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
    on_done = kwargs.pop("on_done", None)  # counted once per clip here (the failed pass may have counted some)
    for clip in clips:
        counts, bad = _featurize_each([clip], requests, pool, cache, **kwargs)
        if on_done is not None:
            on_done(1)
        for key, n in counts.items():
            computed[key] = computed.get(key, 0) + n
        failed.update(bad)
    return computed, failed


def featurize_clips(clips: list[ClipFeatures], requests: list[FeatureRequest], pool: BackbonePool,
                    cache: FeatureCache | None = None, progress: bool = False, what: str = "",
                    describe: Callable[[FeatureRequest], str] | None = None,
                    on_memory: Callable[[str, FeatureRequest], str] | None = None, release: bool = False,
                    **kwargs) -> dict[str, str]:
    """Every request for every clip, one request at a time, a failing clip never stopping the
    others (the runner's FeatureStage and vdeval.evaluate both come here); {clip_id: error} of
    the clips that cannot be scored at all (see FeatureStage.run). The bar counts clips, and names
    the feature, backbone and (`describe`) the metrics reading it; `on_memory(clip_id, request)`
    turns running out of memory into that clip's failure. `release`: free each network after its
    last request here (no later group needs it), so scoring and the next network never share memory
    with it."""
    failed: dict[str, str] = {}
    if not requests or not clips:
        return failed
    bar = progress_bar(len(clips) * len(requests), f"features {what}", progress, unit="clip")
    ordered = by_backbone(requests, pool.held())  # each network built once per pass
    # requests of other keys that meet on a clip's input compute together (one pass per pair)
    kwargs.setdefault("directions", directions_per_input(clips, requests, pool))
    for i, req in enumerate(ordered):
        live = [c for c in clips if c.clip_id not in failed]
        if describe is not None:
            bar.set_description(f"features {what}: {req.kind} ({req.backbone}) for {describe(req) or 'set'}")
        for cid, e in _featurize_each(live, [req], pool, cache, on_done=bar.update, **kwargs)[1].items():
            clip = next(c for c in live if c.clip_id == cid)
            if isinstance(e, VideoReadError):  # unreadable: every other request would fail the same way
                failed[cid] = one_line(e)
            elif isinstance(e, MemoryError) and on_memory is not None:
                failed[cid] = on_memory(cid, req)
            else:
                clip.feature_errors[req.key] = one_line(e)
        bar.update(len(clips) - len(live))  # clips that failed earlier: skipped
        if release and all((r.backbone, r.options) != (req.backbone, req.options) for r in ordered[i + 1:]):
            pool.release(req.backbone, req.options)
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
        self.details: dict[str, dict] = {}  # clip_id -> {metric, backbone, hint} of memory failures

    def metrics_of(self, req: FeatureRequest) -> str:
        """The labels of the metrics that read `req`, for messages."""
        return ", ".join(label for label, m in self.metrics.items() if req in m.requests())

    def run(self, clips: list[ClipFeatures], what: str, requests: list[FeatureRequest] | None = None,
            more: bool = True) -> dict[str, str]:
        """Fill `clips`' features for `requests` (default: every metric's), one request at a time;
        returns {clip_id: error} of clips that cannot be scored at all: unreadable, out of memory
        (`details` then holds the metric, backbone and hint), or failing every request. A request
        that fails for a clip that is otherwise fine is kept in that clip's `feature_errors`, and
        the metrics that need it say so in their notes. `more`: whether more groups follow; their
        networks are kept while the budget allows (featurize.keep_budget), else each is freed after
        its last request here."""
        reqs = self.requests if requests is None else requests
        failed: dict[str, str] = {}
        if not reqs or not clips:
            return failed
        free = available_bytes()
        metrics = list(self.metrics.values()) if requests is None else []
        need = group_need([clip_need(c, reqs, self.pool, metrics) for c in clips])
        self.pool.keep_bytes = keep_budget(self.pool, need, self.memory_gb) if more else 0
        if free is not None and len(clips) > 1 and need > free:
            parts = [[c] for c in clips]  # the group does not fit in what is free now: a clip at a time
        else:
            parts = [clips]
        for i, part in enumerate(parts):
            if len(part) == 1 and free is not None:
                short = shortage(part[0], reqs, self.pool, available_bytes(), self.metrics_of, metrics)
                if short is not None:
                    self._short(short, failed)
                    continue
            failed.update(self._run_part(part, what, reqs, failed, release=not more and i == len(parts) - 1))
        for c in clips:  # a clip without its set-level features cannot join the set: it fails whole
            bad = [c.feature_errors[r.key] for r in self.set_requests if r.key in c.feature_errors]
            if bad and c.clip_id not in failed:
                failed[c.clip_id] = bad[0]
        return failed

    def _short(self, short: MemoryShortage, failed: dict[str, str]) -> None:
        failed[short.clip_id] = str(short)
        req = short.request
        self.details[short.clip_id] = {"metric": short.metrics or None, "backbone": req.backbone if req else None,
                                       "hint": short.hint}

    def _run_part(self, clips: list[ClipFeatures], what: str, reqs: list[FeatureRequest],
                  failed: dict[str, str], release: bool = False) -> dict[str, str]:
        def out_of_memory(cid: str, req: FeatureRequest) -> str:
            self._short(MemoryShortage(cid, None, None, req, self.metrics_of(req), "while computing"), failed)
            return failed[cid]

        return featurize_clips([c for c in clips if c.clip_id not in failed], reqs, self.pool, self.cache,
                               progress=self.progress, what=what, describe=self.metrics_of,
                               on_memory=out_of_memory, batch_size=self.batch_size,
                               cache_max_bytes=self.cache_max_bytes, release=release)
        return failed

    def groups(self, clips: list[ClipFeatures]) -> list[list[ClipFeatures]]:
        """Clips in groups whose features fit in memory together."""
        return memory_groups(clips, self.requests, self.pool, self.memory_gb, list(self.metrics.values()))

    def slim(self, clip: ClipFeatures) -> ClipFeatures:
        """The clip without its video and without features that no set-level metric reads."""
        keep = {r.key for r in self.set_requests}
        return ClipFeatures(clip.clip_id, None, clip.prompt, None, {k: v for k, v in clip.features.items() if k in keep})
