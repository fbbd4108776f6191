"""Execute a suite: the orchestrator of the stages in vdeval/run/.

    prompts -> clip requests (prompts.py)
    -> clips, stored and reused on resume (clips.py: ClipStore)
    -> features, once per clip and backbone, cached (featurizing.py: FeatureStage)
    -> per-clip scores (scoring.py) -> summaries (summary.py)
    -> results.json + clips.csv, written atomically (vdeval/results.py)

The Runner adds what ties the stages together: requests in chunks, the next chunk generated on a
background thread while the current one is featurized and scored; groups of clips whose features
fit in memory; under torchrun, each rank's shard of clips and the gathers that bring rows and
set-level features to rank 0, which writes the results.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vdeval import registry
from vdeval.features import ClipFeatures
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, allow_remote_code, remote_code_allowed
from vdeval.metrics.base import Metric
from vdeval.results import (
    BackboneRecord,
    ClipRecord,
    Failure,
    MetricRecord,
    Provenance,
    RealRecord,
    Results,
    SummaryRow,
    write_results,
)
from vdeval.run import distributed
from vdeval.run.clips import REAL, ClipStore, make_generator
from vdeval.run.domains import load_metric_backbones, metric_backbone, suite_domain
from vdeval.run.featurize import BackbonePool, FeatureCache
from vdeval.run.featurizing import FeatureStage, bind_backbones
from vdeval.run.progress import progress_bar
from vdeval.run.prompts import build_prompts, build_requests
from vdeval.run.scoring import empty_scores, score_clips
from vdeval.run.summary import metric_backbone_label, provenance, summarise
from vdeval.store import RunDir, sha256_json
from vdeval.suite import Suite, resolved_dict


@dataclass
class RunOutcome:
    run_dir: Path
    results: Results
    n_clips: int
    n_failed: int
    seconds: float
    timings: dict = field(default_factory=dict)


class Timings(dict):
    """Seconds spent per stage, summed over chunks."""

    def add(self, stage: str, since: float) -> None:
        self[stage] = self.get(stage, 0.0) + time.perf_counter() - since


class Runner:
    def __init__(self, suite: Suite, out: str | Path | None = None, device: str = "cpu", limit: int | None = None,
                 cache_dir: str | Path | None = None, progress: bool = True, log=print,
                 ranks: distributed.Ranks | None = None, chunk_size: int = 64, allow_remote_code: bool = False):
        self.suite = suite
        # code shipped with a model runs only when a person allowed it (never a suite key)
        self.allow_remote_code = allow_remote_code or remote_code_allowed()
        self.ranks = ranks or distributed.Ranks()
        self.device = distributed.device_for(self.ranks, device)
        self.chunk_size = chunk_size
        self.limit = limit
        self.run = RunDir(out or suite.output_dir())
        # the rank's own GPU under torchrun; one network held at a time: each is built when its
        # first request comes and freed when another is needed (peak: the largest, not the sum)
        self.pool = BackbonePool(self.device, hold=1)
        self.progress = progress and self.ranks.is_main
        self.log = log
        self.labels = suite.metric_labels()
        self.domain = suite_domain([g["kind"] for g in suite.generators], suite.real.kind if suite.real else None)
        self.metrics: dict[str, Metric] = {}
        for label, entry in zip(self.labels, suite.metrics):
            cls = registry.resolve("metric", entry.name)
            self.metrics[label] = cls(backbone=metric_backbone(cls, entry.backbone, self.domain), **entry.params)
        self.store = ClipStore(self.run, suite, self.device, self.progress)
        self._bar = progress_bar(0, "", False)  # the clips bar of the generator being processed
        self.real_failures: list[Failure] = []  # real-set clips whose features failed
        out_cfg = suite.output
        self.features = FeatureStage(self.metrics, self.pool, FeatureCache(cache_dir or self.run.features),
                                     out_cfg.batch_size, out_cfg.cache_max_mb, out_cfg.memory_gb, self.progress)

    def backbone_records(self) -> dict[str, BackboneRecord]:
        """Loads every backbone now, so missing weights stop the run before any work, naming the
        metric that needs them."""
        named = {label: entry.backbone for label, entry in zip(self.labels, self.suite.metrics)}
        return {bb.label(): BackboneRecord(**bb.identity(), identity_hash=bb.identity_hash(), domain=bb.domain)
                for bb in load_metric_backbones(self.metrics, self.pool, named)}

    # -- one generator ---------------------------------------------------------------------
    def _process(self, gen: Generator, requests: list[ClipRequest], timings: Timings):
        """Generate, featurize and score `requests` in chunks, generating the next chunk in a
        background thread while the current one is featurized. Memory holds one chunk of clips
        and flow at a time, plus the small features set-level metrics need."""
        size = self.chunk_size
        chunks = [requests[i:i + size] for i in range(0, len(requests), size)]
        rows, failures = [], []
        slim: list[ClipFeatures] = []
        # the run's clip count for this generator, with rate and time left; the feature stage's
        # bar below it names the feature, backbone and metric being computed
        self._bar = progress_bar(len(requests), f"{gen.name}: clips scored", self.progress, unit="clip")
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.store.clips_for, gen, chunks[0]) if chunks else None
            for i in range(len(chunks)):
                t = time.perf_counter()
                assert pending is not None  # submitted before the loop or by the previous chunk
                generated = pending.result()
                timings.add("generate", t)
                pending = pool.submit(self.store.clips_for, gen, chunks[i + 1]) if i + 1 < len(chunks) else None
                failures += [Failure(generator=gen.name, clip_id=g.request.clip_id, stage="generate", error=g.error)
                             for g in generated if g.error]
                last = gen is getattr(self, "_generators", [gen])[-1] and i == len(chunks) - 1  # nothing featurized after
                scored, failed = self._featurize_and_score(gen.name, generated, slim, timings, last)
                failures += [Failure(generator=gen.name, clip_id=cid, stage="featurize", error=e,
                                     **self.features.details.get(cid, {})) for cid, e in failed.items()]
                rows += [_clip_record(gen.name, g, scored.get(g.request.clip_id), failed.get(g.request.clip_id))
                         for g in generated]
                self._bar.update(sum(1 for g in generated if g.video is None))  # failed to generate
        self._bar.close()
        return rows, slim, failures

    def _featurize_and_score(self, gen_name: str, generated: list[GeneratedClip], slim: list,
                             timings: Timings, last: bool = False) -> tuple[dict[str, dict], dict[str, str]]:
        """Scores of one chunk's clips, one memory group at a time, and {clip_id: error} of clips
        whose features failed; `slim` receives what the set-level metrics will read."""
        feats = [ClipFeatures(g.request.clip_id, g.video, g.request.prompt, g.request.reference_image,
                              clip_hash=g.meta["clip_hash"]) for g in generated if g.video is not None]
        scored, failed = {}, {}
        groups = self.features.groups(feats)
        for k, group in enumerate(groups):  # features of one group in memory at a time
            t = time.perf_counter()
            group_all = list(group)
            failed.update(self.features.run(group, gen_name, more=not (last and k == len(groups) - 1)))
            group = [c for c in group if c.clip_id not in failed]
            timings.add("features", t)
            t = time.perf_counter()
            scored.update(score_clips(self.metrics, group))
            slim += [self.features.slim(c) for c in group]
            for c in group:
                c.drop_features()
            timings.add("metrics", t)
            self._bar.update(len(group_all))
        return scored, failed

    def _real_set(self, timings: Timings) -> list[ClipFeatures]:
        """The real set's set-level features, every rank's shard gathered (empty without set-level metrics)."""
        if not any(m.level == "set" for m in self.metrics.values()):
            return []
        t = time.perf_counter()
        real = [g for g in self.ranks.shard(self.store.real_clips()) if g.video is not None]
        mine = [ClipFeatures(g.request.clip_id, g.video, g.request.prompt) for g in real]
        failed = self.features.run(mine, "real set", self.features.set_requests)  # set-level features only
        self.real_failures = [Failure(generator=REAL, clip_id=cid, stage="featurize", error=e,
                                      **self.features.details.get(cid, {})) for cid, e in failed.items()]
        mine = [c for c in mine if c.clip_id not in failed]
        out = _merge_ranks(distributed.gather(self.ranks, [self.features.slim(c) for c in mine]))
        timings.add("real_set", t)
        return out

    # -- the run -----------------------------------------------------------------------------
    def _prepare(self) -> tuple[list[ClipRequest], list[Generator], dict[str, BackboneRecord]]:
        """Requests, generators and backbones, each checked before any work: missing models, wrong
        classes, bad arguments and missing weights stop the run here."""
        suite = self.suite
        distributed.agree(self.ranks, "suite", sha256_json({"suite": resolved_dict(suite), "limit": self.limit}))
        requests = build_requests(suite, build_prompts(suite, self.limit))
        with allow_remote_code(self.allow_remote_code):
            generators = [make_generator(c, suite) for c in suite.generator_configs()]
        for gen in generators:
            gen.prepare(self.device)
        backbones = self.backbone_records()
        bind_backbones(self.metrics.values(), self.pool)  # e.g. FVD records the exact backbone it used
        return requests, generators, backbones

    def execute(self) -> RunOutcome:
        t0 = time.perf_counter()
        requests, generators, backbones = self._prepare()
        self._generators = generators
        timings = Timings()
        real_feats = self._real_set(timings)
        order = {r.clip_id: i for i, r in enumerate(requests)}
        labels = {label: metric_backbone_label(m, self.pool, self.domain) for label, m in self.metrics.items()}
        clips: list[ClipRecord] = []
        summary: list[SummaryRow] = []
        failures = _merge_ranks(distributed.gather(self.ranks, self.real_failures))
        for gen in generators:
            rows, slim, failed = self._process(gen, self.ranks.shard(requests), timings)
            rows = sorted(_merge_ranks(distributed.gather(self.ranks, rows)), key=lambda r: order[r.clip_id])
            slim = sorted(_merge_ranks(distributed.gather(self.ranks, slim)), key=lambda c: order[c.clip_id])
            failed = sorted(_merge_ranks(distributed.gather(self.ranks, failed)), key=lambda f: order[f.clip_id])
            clips += rows
            failures += failed
            if self.ranks.is_main:
                t = time.perf_counter()
                summary += summarise(self.metrics, labels, gen.name, rows, slim, real_feats)
                timings.add("metrics", t)
        results = self._results(requests, generators, backbones, labels, summary, clips, failures, len(real_feats))
        if self.ranks.is_main:
            write_results(self.run, results)
        distributed.barrier(self.ranks)
        return RunOutcome(self.run.root, results, len(clips), len(failures), time.perf_counter() - t0, dict(timings))

    def _results(self, requests, generators, backbones, labels, summary, clips, failures, n_real: int) -> Results:
        suite = self.suite
        return Results(
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            suite=resolved_dict(suite), suite_hash=sha256_json(resolved_dict(suite)), suite_path=suite.source_path,
            provenance=Provenance(**provenance(self.device), seeds=sorted({r.seed for r in requests}),
                                  limit=self.limit, world_size=self.ranks.world_size),
            generators={gen.name: gen.info() for gen in generators}, backbones=backbones,
            metrics={label: MetricRecord(**m.describe(), backbone_label=labels[label])
                     for label, m in self.metrics.items()},
            summary=summary, clips=clips, failures=failures,
            real=None if suite.real is None else RealRecord(**suite.real.model_dump(), n=n_real),
        )


def _clip_record(gen_name: str, g: GeneratedClip, scored: dict | None, feature_error: str | None) -> ClipRecord:
    """A clip's row: its request, content hash, the error that stopped it (generation or
    features) and its scores."""
    r = g.request
    return ClipRecord(generator=gen_name, clip_id=r.clip_id, prompt=r.prompt, seed=r.seed,
                      clip_hash=g.meta.get("clip_hash"), error=g.error or feature_error,
                      **(scored or empty_scores()))


def _merge_ranks(parts: list[list]) -> list:
    return [x for part in parts for x in part]
