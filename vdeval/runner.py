"""Execute a suite: prompts -> clips (stored, resumable) -> features (once per clip and backbone,
cached) -> per-clip and set-level scores -> results.json + clips.csv (atomic)."""
from __future__ import annotations

import inspect
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from vdeval import distributed, registry
from vdeval.domains import load_metric_backbones, metric_backbone, suite_domain
from vdeval.errors import VdevalError
from vdeval.featurize import BackbonePool, FeatureCache, featurize, memory_groups
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.generators.base import (ClipRequest, GeneratedClip, Generator, GeneratorSetupError, allow_remote_code,
                                    remote_code_allowed)
from vdeval.metrics.base import Metric
from vdeval.stats import bootstrap_mean_ci, weighted_mean_ci
from vdeval.results import MetricRecord, Provenance, RealRecord, Results, write_results
from vdeval.store import RunDir, atomic_write_json, load_array, save_array, sha256_json
from vdeval.suite import Suite, resolved_dict
from vdeval.video import Video
from vdeval.world import sample_clip

REAL = "_real"


@dataclass
class PromptItem:
    prompt: str
    reference_image: np.ndarray | None = None
    world_seed: int | None = None


@dataclass
class RunOutcome:
    run_dir: Path
    results: Results
    n_clips: int
    n_failed: int
    seconds: float
    timings: dict = field(default_factory=dict)


def build_prompts(suite: Suite, limit: int | None = None) -> list[PromptItem]:
    p = suite.prompts
    if p.source == "world":
        spec = suite.world.spec()
        items = []
        for i in range(p.count if limit is None else min(p.count, limit)):
            clip = sample_clip(p.seed + i, spec)
            items.append(PromptItem(clip.caption, clip.reference_image, p.seed + i))
        return items
    if p.source == "images":  # the user's own conditioning images, with a prompt each
        from vdeval.video.conditioning import read_conditioning

        path = Path(p.file) if Path(p.file).is_absolute() else suite.suite_dir / p.file
        items = [PromptItem(t, img) for t, img in read_conditioning(path)]
        return items if limit is None else items[:limit]
    if p.source in ("sidecar", "folder"):
        lines = _file_prompts(suite)
    elif p.source == "file":
        path = Path(p.file)
        if not path.is_absolute():
            path = suite.suite_dir / path
        if not path.exists():
            raise VdevalError(f"prompts.file: {path} does not exist")
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise VdevalError(f"prompts.file: {path} holds no prompts")
    else:
        lines = list(p.items)
    return [PromptItem(t) for t in (lines if limit is None else lines[:limit])]


def _file_prompts(suite: Suite) -> list[str]:
    """Prompts of a sidecar (in its order) or the file names of a folder (sorted)."""
    from vdeval.generators.folder import list_videos
    from vdeval.video.ingest import prompt_from_name, read_sidecar

    p = suite.prompts
    where = Path(p.file if p.source == "sidecar" else p.path)
    where = where if where.is_absolute() else suite.suite_dir / where
    if p.source == "sidecar":
        return [prompt for _, prompt in read_sidecar(where)]
    if not where.is_dir():
        raise VdevalError(f"prompts.path: {where} is not a folder")
    files = list_videos(where)
    if not files:
        raise VdevalError(f"prompts.path: {where} holds no videos")
    return [prompt_from_name(f) for f in files]


def build_requests(suite: Suite, prompts: list[PromptItem]) -> list[ClipRequest]:
    out = []
    n = suite.samples_per_prompt
    for i, item in enumerate(prompts):
        for j in range(n):
            meta = {"prompt_index": i, "sample": j, "index": i * n + j}
            if item.world_seed is not None:
                meta["world_seed"] = item.world_seed
            out.append(ClipRequest(f"p{i:03d}_s{j}", item.prompt, suite.seed + i * n + j, item.reference_image, meta))
    return out


def make_generator(config, suite: Suite) -> Generator:
    cls = registry.resolve("generator", config.kind)
    kwargs = {"suite_dir": str(suite.suite_dir)}
    if "world" in inspect.signature(cls.__init__).parameters:
        kwargs["world"] = suite.world
    return cls(config, **kwargs)


# generator fields that label clips without changing them: editing them keeps stored clips
_LABEL_FIELDS = ("step", "remote_code_allowed")


def _request_key(gen_info: dict, r: ClipRequest) -> str:
    ref = None if r.reference_image is None else sha256_json(r.reference_image.tolist())
    making = {k: v for k, v in gen_info.items() if k not in _LABEL_FIELDS}
    return sha256_json({"generator": making, "prompt": r.prompt, "seed": r.seed, "reference": ref, "meta": r.meta})


def _provenance(device: str) -> dict:
    import torch

    from vdeval import __version__

    return {
        "vdeval": __version__, "torch": torch.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "platform": platform.platform(), "device": device,
        "command": " ".join(["vdeval"] + sys.argv[1:]),
    }


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
        self.cache = FeatureCache(cache_dir or self.run.features)
        self.pool = BackbonePool(self.device)  # the rank's own GPU under torchrun
        self.progress = progress and self.ranks.is_main
        self.log = log
        self.labels = suite.metric_labels()
        self.domain = suite_domain([g["kind"] for g in suite.generators], suite.real.kind if suite.real else None)
        self.metrics: dict[str, Metric] = {}
        for label, entry in zip(self.labels, suite.metrics):
            cls = registry.resolve("metric", entry.name)
            self.metrics[label] = cls(backbone=metric_backbone(cls, entry.backbone, self.domain), **entry.params)

    # -- clips ---------------------------------------------------------------------------
    def _bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, file=sys.stderr)

    def clips_for(self, gen: Generator, requests: list[ClipRequest]) -> list[GeneratedClip]:
        """Stored clips are reused; the rest are generated in batches and stored one by one."""
        if not getattr(gen, "stores_frames", True):
            return self._referenced_clips(gen, requests)
        info = gen.info()
        done: dict[str, GeneratedClip] = {}
        todo = []
        for r in requests:
            meta_path = self.run.clip_meta_path(gen.name, r.clip_id)
            key = _request_key(info, r)
            if meta_path.exists():
                try:
                    meta = json.loads(meta_path.read_text())
                    if meta.get("request_key") == key and not meta.get("error"):
                        frames = load_array(self.run.clip_path(gen.name, r.clip_id))
                        video = Video(frames, meta["fps"])
                        if video.content_hash() == meta["clip_hash"]:
                            done[r.clip_id] = GeneratedClip(r, video, meta={"clip_hash": meta["clip_hash"]})
                            continue
                except Exception:  # a damaged stored clip is regenerated, never trusted
                    pass
            todo.append((r, key))
        bar = self._bar(len(todo), f"generate {gen.name}")
        bs = self.suite.output.batch_size
        for start in range(0, len(todo), bs):
            chunk = todo[start:start + bs]
            keys = {r.clip_id: k for r, k in chunk}
            for g in self._generate_safely(gen, [r for r, _ in chunk]):
                self._store(gen.name, g, keys[g.request.clip_id])
                done[g.request.clip_id] = g
                bar.update(1)
        bar.close()
        return [done[r.clip_id] for r in requests]

    def _referenced_clips(self, gen: Generator, requests: list[ClipRequest]) -> list[GeneratedClip]:
        """Clips read from files: referenced by path and content hash, never copied. A file whose
        fingerprint (size, mtime, head) matches the stored one keeps its stored hash; a changed
        or replaced file is hashed again, so its features are recomputed."""
        for r in requests:
            meta_path = self.run.clip_meta_path(gen.name, r.clip_id)
            try:
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
            except (OSError, ValueError):
                meta = None
            if meta and not meta.get("error") and meta.get("fingerprint"):
                gen.known[r.clip_id] = meta
        out = self._generate_safely(gen, requests)
        for g in out:
            self._store(gen.name, g, key=None)
        return out

    def _generate_safely(self, gen: Generator, requests: list[ClipRequest]):
        """A batch that raises is retried clip by clip, so one bad clip fails alone."""
        try:
            out = list(gen.generate(requests, self.device))
            if len(out) != len(requests):
                raise VdevalError(f"generator {gen.name} returned {len(out)} clips for {len(requests)} requests")
            return out
        except GeneratorSetupError:  # the generator cannot work at all: stop, don't fail clip by clip
            raise
        except Exception as batch_error:
            if len(requests) == 1:
                return [GeneratedClip(requests[0], None, error=_one_line(batch_error))]
            out = []
            for r in requests:
                out += self._generate_safely(gen, [r])
            return out

    def _store(self, gen_name: str, g: GeneratedClip, key: str | None) -> None:
        """Generated clips: exact frames (.npy) and their request. Referenced clips (key None):
        only the file, its fingerprint and content hash."""
        r = g.request
        meta = {"clip_id": r.clip_id, "prompt": r.prompt, "seed": r.seed, "request_key": key, "error": g.error}
        if g.video is not None:
            try:
                g.meta["clip_hash"] = g.video.content_hash()  # computed once: rows and features reuse it
            except VdevalError as e:  # a file that vanished or cannot be read while hashing
                g.video, g.error = None, str(e)
                meta["error"] = g.error
        if g.video is not None:
            v = g.video
            if key is not None:
                save_array(self.run.clip_path(gen_name, r.clip_id), v.frames)
            else:
                meta.update(file=g.meta.get("file"), fingerprint=g.meta.get("fingerprint"))
            meta.update(clip_hash=g.meta["clip_hash"], fps=v.fps, shape=[v.num_frames, v.height, v.width, 3])
        atomic_write_json(self.run.clip_meta_path(gen_name, r.clip_id), meta)

    def real_clips(self) -> list[GeneratedClip]:
        real = self.suite.real
        if real is None:
            return []
        if real.kind == "world":
            spec = self.suite.world.spec()
            out = []
            for i in range(real.count):
                r = ClipRequest(f"r{i:04d}", "", real.seed + i)
                clip = sample_clip(real.seed + i, spec)
                r.prompt = clip.caption
                out.append(GeneratedClip(r, clip.video))
            return out
        from vdeval.generators.folder import FolderConfig, FolderGenerator

        gen = FolderGenerator(FolderConfig(name=REAL, kind="folder", path=real.path, match="order", ingest=real.ingest),
                              suite_dir=str(self.suite.suite_dir))
        reqs = [ClipRequest(f"r{i:04d}", "", i, meta={"index": i}) for i in range(min(real.count, len(gen.files)))]
        if len(reqs) < 2:
            raise VdevalError(f"real.path: {gen.folder} holds {len(gen.files)} videos; distribution metrics need at least 2")
        return list(gen.generate(reqs))  # each source hashes itself once, when its features need the key

    # -- scoring -------------------------------------------------------------------------
    def feature_requests(self) -> list[FeatureRequest]:
        reqs = []
        for m in self.metrics.values():
            reqs += m.requests()
        return list(dict.fromkeys(reqs))

    def backbone_labels(self) -> dict[str, dict]:
        """Loads every backbone now, so missing weights stop the run before any work, naming the
        metric that needs them."""
        named = {label: entry.backbone for label, entry in zip(self.labels, self.suite.metrics)}
        return {bb.label(): {**bb.identity(), "identity_hash": bb.identity_hash(), "domain": bb.domain}
                for bb in load_metric_backbones(self.metrics, self.pool, named)}

    def metric_backbone_label(self, metric: Metric) -> str:
        reqs = metric.requests()
        if not reqs:
            return "none"
        labels = []
        for r in reqs:
            bb = self.pool.get(r.backbone, r.options)
            world_only = bb.domain == "world" and self.domain != "world"
            labels.append(bb.label() + (" (shapes-world backbone)" if world_only else ""))
        return ", ".join(dict.fromkeys(labels))

    def _featurize(self, clips: list[ClipFeatures], what: str, requests: list[FeatureRequest] | None = None) -> None:
        reqs = self.feature_requests() if requests is None else requests
        if not reqs or not clips:
            return
        bar = self._bar(len(reqs), f"features {what}")
        for req in reqs:
            featurize(clips, [req], self.pool, self.cache, batch_size=self.suite.output.batch_size,
                      cache_max_bytes=int(self.suite.output.cache_max_mb * (1 << 20)))
            bar.update(1)
        bar.close()

    def score_clips(self, clips: list[ClipFeatures]) -> dict[str, dict]:
        """Per-clip metrics; a metric that fails on one clip records NaN and the error for it."""
        out: dict[str, dict] = {c.clip_id: {"scores": {}, "extras": {}, "curves": {}, "notes": {}} for c in clips}
        for label, metric in self.metrics.items():
            if metric.level != "clip":
                continue
            for c in clips:
                rec = out[c.clip_id]
                try:
                    s = metric.score_clip(c)
                    rec["scores"][label] = float(s.value)
                    if s.extras:
                        rec["extras"][label] = {k: float(v) for k, v in s.extras.items()}
                    if s.curve is not None:
                        rec["curves"][label] = [float(v) for v in s.curve]
                    if s.note:
                        rec["notes"][label] = s.note
                except Exception as e:
                    rec["scores"][label] = float("nan")
                    rec["notes"][label] = _one_line(e)
        return out

    # -- the run -------------------------------------------------------------------------
    def set_requests(self) -> list[FeatureRequest]:
        """Features that set-level metrics read: the only ones kept after a chunk is scored."""
        reqs = []
        for m in self.metrics.values():
            if m.level == "set":
                reqs += m.requests()
        return list(dict.fromkeys(reqs))

    def _slim(self, clip: ClipFeatures) -> ClipFeatures:
        keep = {r.key for r in self.set_requests()}
        return ClipFeatures(clip.clip_id, None, clip.prompt, None,
                            {k: v for k, v in clip.features.items() if k in keep})

    def _process(self, gen: Generator, requests: list[ClipRequest], timings: dict):
        """Generate, featurize and score `requests` in chunks, generating the next chunk in a
        background thread while the current one is featurized. Memory holds one chunk of clips
        and flow at a time, plus the small features set-level metrics need."""
        from concurrent.futures import ThreadPoolExecutor

        size = self.chunk_size
        chunks = [requests[i:i + size] for i in range(0, len(requests), size)]
        rows, slim = [], []
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self.clips_for, gen, chunks[0]) if chunks else None
            for i in range(len(chunks)):
                t = time.perf_counter()
                generated = pending.result()
                timings["generate"] = timings.get("generate", 0.0) + time.perf_counter() - t
                pending = pool.submit(self.clips_for, gen, chunks[i + 1]) if i + 1 < len(chunks) else None
                ok = [g for g in generated if g.video is not None]
                feats = [ClipFeatures(g.request.clip_id, g.video, g.request.prompt, g.request.reference_image,
                                      clip_hash=g.meta["clip_hash"]) for g in ok]
                scored = {}
                for group in self._memory_groups(feats):  # features of one group in memory at a time
                    t = time.perf_counter()
                    self._featurize(group, gen.name)
                    timings["features"] = timings.get("features", 0.0) + time.perf_counter() - t
                    t = time.perf_counter()
                    scored.update(self.score_clips(group))
                    slim += [self._slim(c) for c in group]
                    for c in group:
                        c.drop_features()
                    timings["metrics"] = timings.get("metrics", 0.0) + time.perf_counter() - t
                for g in generated:
                    r = g.request
                    row = {"generator": gen.name, "clip_id": r.clip_id, "prompt": r.prompt, "seed": r.seed,
                           "clip_hash": g.meta.get("clip_hash"), "error": g.error,
                           "scores": {}, "extras": {}, "curves": {}, "notes": {}}
                    row.update(scored.get(r.clip_id, {}))
                    rows.append(row)
        return rows, slim

    def _memory_groups(self, clips: list[ClipFeatures]) -> list[list[ClipFeatures]]:
        return memory_groups(clips, self.feature_requests(), self.pool, self.suite.output.memory_gb)

    def execute(self) -> RunOutcome:
        t0 = time.perf_counter()
        suite = self.suite
        ranks = self.ranks
        distributed.agree(ranks, "suite", sha256_json({"suite": resolved_dict(suite), "limit": self.limit}))
        prompts = build_prompts(suite, self.limit)
        requests = build_requests(suite, prompts)
        with allow_remote_code(self.allow_remote_code):
            generators = [make_generator(c, suite) for c in suite.generator_configs()]
        for gen in generators:  # missing models, wrong classes, bad arguments: fail before any work
            gen.prepare(self.device)
        backbones = self.backbone_labels()  # loads every backbone now: missing weights fail before any work
        for m in self.metrics.values():
            reqs = m.requests()
            if hasattr(m, "backbone_hash") and reqs:  # set-level metrics record the exact backbone they used
                m.backbone_hash = self.pool.get(reqs[0].backbone, reqs[0].options).identity_hash()
        timings: dict[str, float] = {}

        real_feats: list[ClipFeatures] = []
        if any(m.level == "set" for m in self.metrics.values()):
            t = time.perf_counter()
            real = [g for g in ranks.shard(self.real_clips()) if g.video is not None]
            mine = [ClipFeatures(g.request.clip_id, g.video, g.request.prompt) for g in real]
            self._featurize(mine, "real set", self.set_requests())  # the real set feeds set-level metrics only
            real_feats = _merge_ranks(distributed.gather(ranks, [self._slim(c) for c in mine]))
            timings["real_set"] = time.perf_counter() - t

        clip_rows, summary, gen_infos = [], [], {}
        for gen in generators:
            gen_infos[gen.name] = gen.info()
            rows, slim = self._process(gen, ranks.shard(requests), timings)
            order = {r.clip_id: i for i, r in enumerate(requests)}
            rows = sorted(_merge_ranks(distributed.gather(ranks, rows)), key=lambda r: order[r["clip_id"]])
            slim = sorted(_merge_ranks(distributed.gather(ranks, slim)), key=lambda c: order[c.clip_id])
            clip_rows += rows
            if ranks.is_main:
                t = time.perf_counter()
                summary += self._summarise(gen.name, rows, slim, real_feats,
                                           n_failed=sum(1 for r in rows if r["error"]))
                timings["metrics"] = timings.get("metrics", 0.0) + time.perf_counter() - t

        failures = [{"generator": r["generator"], "clip_id": r["clip_id"], "stage": "generate", "error": r["error"]}
                    for r in clip_rows if r["error"]]
        results = Results(
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            suite=resolved_dict(suite), suite_hash=sha256_json(resolved_dict(suite)), suite_path=suite.source_path,
            provenance=Provenance(**_provenance(self.device), seeds=sorted({r.seed for r in requests}),
                                  limit=self.limit, world_size=ranks.world_size),
            generators=gen_infos, backbones=backbones,
            metrics={label: MetricRecord(**m.describe(), backbone_label=self.metric_backbone_label(m))
                     for label, m in self.metrics.items()},
            summary=summary, clips=clip_rows, failures=failures,
            real=None if suite.real is None else RealRecord(**suite.real.model_dump(), n=len(real_feats)),
        )
        if ranks.is_main:
            write_results(self.run, results)
        distributed.barrier(ranks)
        return RunOutcome(self.run.root, results, len(clip_rows), len(failures), time.perf_counter() - t0, timings)

    def _summarise(self, gen_name, scored, feats, real_feats, n_failed) -> list[dict]:
        """Per-clip metrics: mean and bootstrap CI over `scored` rows; set-level: score_set."""
        rows = []
        for label, m in self.metrics.items():
            base = {"generator": gen_name, "metric": label, "backbone": self.metric_backbone_label(m),
                    "higher_is_better": m.higher_is_better, "level": m.level, "n_failed": n_failed}
            if m.level == "clip":
                ok = [s for s in scored if not s.get("error")]
                vals = np.array([s["scores"].get(label, np.nan) for s in ok], np.float64)
                finite = vals[np.isfinite(vals)]
                ci = bootstrap_mean_ci(finite)
                mean = float(finite.mean()) if finite.size else None
                if (wkey := m.summary_weight()) is not None:  # e.g. VBench's pooling of frame pairs across clips
                    w = [s.get("extras", {}).get(label, {}).get(wkey, np.nan) for s in ok]
                    mean, ci = weighted_mean_ci(vals, w)
                    mean = mean if np.isfinite(mean) else None
                    base["aggregate"] = f"weighted by {wkey}"
                rows.append({**base, "value": mean,
                             "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None,
                             "n": int(finite.size), "n_real": None})
            else:
                try:
                    s = m.score_set(feats, real_feats)
                    rows.append({**base, "value": float(s.value), "ci_low": s.ci[0] if s.ci else None,
                                 "ci_high": s.ci[1] if s.ci else None, "n": s.n, "n_real": s.n_real,
                                 "extras": s.extras})
                except VdevalError as e:
                    rows.append({**base, "value": None, "ci_low": None, "ci_high": None, "n": len(feats),
                                 "n_real": len(real_feats), "error": str(e)})
        return rows


def _merge_ranks(parts: list[list]) -> list:
    return [x for part in parts for x in part]


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()
