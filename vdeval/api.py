"""One call from Python: score videos in a notebook or a training loop, no suite file needed.

    import vdeval
    df = vdeval.evaluate("my_videos/", metrics=["warping_error", "frozen_motion"])
    fvd = vdeval.evaluate_set(real="real_clips/", generated=videos, metrics=["fvd"], backbones={"fvd": "i3d"})

`videos` may be a folder, a list of paths, a list of arrays or tensors ((T, H, W, 3) uint8 or
(T, 3, H, W) float in [0, 1], or in the range declared by `value_range`, e.g. (-1, 1)), or one
(B, T, C, H, W) tensor. The value range is the caller's declaration, never guessed per clip:
floats outside it are refused for that clip (see vdeval.video.as_video). Files are decoded on demand
straight to each backbone's input size; the same featurize path, cache and metrics as `vdeval run`.
Clips are not shapes-world clips unless `domain="world"`: a metric whose default backbone is the
shapes-world `embedded` then uses its published backbone (see vdeval/run/domains.py).

What a caller can rely on: the keyword arguments are checked first, all at once, by the suite's
rules (vdeval.limits, vdeval.suite.metric_problems); anything wrong with them, and anything that
stops every clip (missing weights, an unwritable cache_dir), is one VdevalError. Anything wrong
with one clip (an unreadable or damaged file, a bad array, a backbone that cannot take its size)
is that clip's row: `error` when no metric could run, NaN and `<metric>.note` for each metric
that could not. Nothing else escapes.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator

from vdeval import registry
from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures, merge_requests
from vdeval.limits import BatchSize, FiniteFloat, Fps, MemoryGB, device_problem
from vdeval.run.domains import load_metric_backbones, metric_backbone
from vdeval.run.featurize import BackbonePool, FeatureCache, keep_budget, memory_groups
from vdeval.run.featurizing import featurize_clips
from vdeval.run.memory import clip_need, group_need
from vdeval.run.progress import one_line, progress_bar
from vdeval.run.scoring import empty_scores, score_clip
from vdeval.suite import MetricEntry, _pydantic_problems, metric_labels, metric_problems
from vdeval.video.core import Video, as_video
from vdeval.video.ingest import prompt_from_name
from vdeval.video.io import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from vdeval.metrics.base import Metric
    from vdeval.video.source import VideoSource


def resolve_device(device: str = "auto") -> str:
    """"auto": the first CUDA device when torch sees one, else the CPU. A device torch cannot
    use here (cuda without CUDA, mps without Metal) is refused before any work."""
    problem = device_problem(device)
    if problem:
        raise VdevalError(f"device {problem}, got {device!r}")
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VdevalError(f"device {device!r} was asked for but torch sees no CUDA device", "use device='cpu'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise VdevalError("device 'mps' was asked for but torch sees no Metal device", "use device='cpu'")
    return device


class CallArgs(BaseModel):
    """The keyword arguments of evaluate / evaluate_set, judged by the rules suite files follow."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
    metrics: list[MetricEntry] = Field(min_length=1)
    prompts: list[str] | None = None
    prompts_from_names: bool = False  # prompts="from_names": VBench-style file names
    backbones: dict[str, str] | None = None
    device: str = "auto"
    cache_dir: Any = None
    fps: Fps = 8.0
    domain: Literal["natural", "world"] = "natural"
    memory_gb: MemoryGB = 2.0
    batch_size: BatchSize = 8
    value_range: tuple[FiniteFloat, FiniteFloat] | None = None
    progress: StrictBool = True

    @model_validator(mode="before")
    @classmethod
    def _from_names(cls, data):
        if isinstance(data, dict) and isinstance(data.get("prompts"), str) and data["prompts"] == "from_names":
            data = {**data, "prompts": None, "prompts_from_names": True}
        return data

    @field_validator("metrics", mode="before")
    @classmethod
    def _entries(cls, v):
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise ValueError("must be a list of metric names, e.g. ['warping_error']")
        return [{"name": e} if isinstance(e, str) else e for e in v]

    @field_validator("device")
    @classmethod
    def _device(cls, v):
        problem = device_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("cache_dir")
    @classmethod
    def _cache_dir(cls, v):
        if v is not None and not isinstance(v, (str, os.PathLike)):
            raise ValueError(f"must be a folder path or None, got {type(v).__name__}")
        if v is not None and "\0" in os.fspath(v):
            raise ValueError("contains a NUL byte")
        return v

    @model_validator(mode="after")
    def _checks(self):
        if self.value_range is not None and not self.value_range[0] < self.value_range[1]:
            raise ValueError(f"value_range must be (low, high) with low < high, got {self.value_range}")
        for name, bb in (self.backbones or {}).items():  # backbones={"metric": "name"} joins its entry
            matching = [m for m in self.metrics if m.name == name]
            if not matching:
                raise ValueError(f"backbones names {name!r}, which is not one of the metrics")
            for m in matching:
                m.backbone = m.backbone or bb
        return self


def check_call(where: str, **kwargs) -> CallArgs:
    """The arguments validated, or one VdevalError listing every problem."""
    try:
        args = CallArgs.model_validate(kwargs)
    except ValidationError as e:
        problems = _pydantic_problems(e)
    else:
        problems = metric_problems(args.metrics)
    if problems:
        raise VdevalError(f"vdeval.{where}: " + "; ".join(problems), "see help(vdeval.api) for the arguments")
    return args


def _as_clips(videos, fps: float, value_range=None) -> list[tuple[str, Video | VideoSource | VdevalError]]:
    """[(clip id, Video, source or the VdevalError that clip met)]: ids are file names for files
    (the path as given where two names clash), clip indices otherwise."""
    from vdeval.generators.folder import list_videos, open_clip

    if isinstance(videos, (str, os.PathLike)):
        folder = Path(videos)
        try:
            is_dir = folder.is_dir()
        except (OSError, ValueError):
            is_dir = False
        if not is_dir:
            raise VdevalError(f"{folder}: not a folder of videos", "give a folder, a list of paths or arrays")
        try:
            videos = list_videos(folder)
        except OSError as e:
            raise VdevalError(f"{folder}: cannot list the folder ({e.strerror or e})") from None
    elif hasattr(videos, "ndim") and hasattr(videos, "shape"):
        if videos.ndim != 5:
            raise VdevalError(f"videos: one array of shape {tuple(videos.shape)}",
                              "give a list of videos ([video] for one) or one (B, T, C, H, W) batch")
        videos = list(videos)
    elif isinstance(videos, (list, tuple)):
        videos = list(videos)
    else:
        raise VdevalError(f"videos: expected a folder, a list of paths or arrays, or a (B, T, C, H, W) batch; "
                          f"got {type(videos).__name__}")
    names = [Path(v).name if isinstance(v, (str, os.PathLike)) else None for v in videos]
    out: list[tuple[str, Video | VideoSource | VdevalError]] = []
    for i, v in enumerate(videos):
        name = names[i]
        if name is not None:
            cid = name if names.count(name) == 1 else str(os.fspath(v))
            if cid in {c for c, _ in out}:  # the same path twice: each occurrence keeps its own row
                cid = f"{cid}#{i}"
            out.append((cid, _open_or_error(Path(v), open_clip)))
        else:
            out.append((f"clip{i:04d}", _array_or_error(v, fps, i, value_range)))
    return out


def _open_or_error(path: Path, open_clip):
    try:
        if path.suffix.lower() not in VIDEO_SUFFIXES and not path.is_dir():
            return VdevalError(f"{path}: not a video file")
        return open_clip(path)
    except VdevalError as e:
        return e
    except MemoryError:
        raise
    except Exception as e:  # one file's trouble (permissions, a name the OS refuses) is its row
        return VdevalError(f"{path}: {one_line(e)}")


def _array_or_error(array, fps: float, index: int, value_range=None):
    try:
        return as_video(array, fps, source=f"video {index}", value_range=value_range)
    except VdevalError as e:
        return e
    except MemoryError:
        raise
    except Exception as e:  # ragged lists, objects that are no array: that clip's row
        return VdevalError(f"video {index}: not a video array ({one_line(e)})")


def _metrics(entries: list[MetricEntry], domain: str) -> dict[str, Metric]:
    out = {}
    for label, e in zip(metric_labels(entries), entries):
        cls = registry.resolve("metric", e.name)
        out[label] = cls(backbone=metric_backbone(cls, e.backbone, domain), **e.params)
    return out


def _setup(args: CallArgs):
    ms = _metrics(args.metrics, args.domain)
    # one network held at a time within a group: built at its first request, freed when the next
    # is needed (networks kept across groups while the budget allows: featurize.keep_budget)
    pool, cache = BackbonePool(resolve_device(args.device), hold=1), FeatureCache(args.cache_dir)
    load_metric_backbones(ms, pool)
    return ms, pool, cache


def evaluate(videos, prompts: Sequence[str] | str | None = None, metrics: Sequence = ("warping_error", "frozen_motion"),
             backbones: dict[str, str] | None = None, device: str = "auto", cache_dir: str | os.PathLike | None = None,
             fps: float = 8.0, domain: str = "natural", memory_gb: float = 2.0, batch_size: int = 8,
             value_range: tuple[float, float] | None = None, progress: bool = True):
    """A pandas DataFrame, one row per clip: `clip`, `prompt`, `error`, one column per metric, and
    `<metric>.<extra>` columns. A clip that cannot be read or scored keeps its row, with the reason
    in `error` (unreadable, or out of memory: with what to change) or NaN and `<metric>.note` (a
    metric that has no value for it). `prompts`: one per video, or "from_names" for VBench-style
    file names (`a red car-3.mp4` is "a red car"). `progress`: bars with clip counts, rate and
    time left (tqdm.auto: a widget in a notebook); False silences them."""
    args = check_call("evaluate", metrics=metrics, prompts=prompts, backbones=backbones, device=device,
                      cache_dir=cache_dir, fps=fps, domain=domain, memory_gb=memory_gb, batch_size=batch_size,
                      value_range=value_range, progress=progress)
    sets = [e.name for e in args.metrics if registry.resolve("metric", e.name).level == "set"]
    if sets:
        raise VdevalError(f"vdeval.evaluate: {', '.join(sets)}: set-level metrics", "score them with vdeval.evaluate_set")
    clips = _as_clips(videos, args.fps, args.value_range)
    if args.prompts_from_names:  # VBench's naming, as suites read it: `a red car-3.mp4` is "a red car"
        prompts_of = ["" if isinstance(v, Video) else prompt_from_name(Path(cid)) for cid, v in clips]
    elif args.prompts is not None and len(args.prompts) != len(clips):
        raise VdevalError(f"{len(args.prompts)} prompts for {len(clips)} videos", "give one prompt per video")
    else:
        prompts_of = args.prompts or [""] * len(clips)
    ms, pool, cache = _setup(args)
    requests = merge_requests(r for m in ms.values() for r in m.requests())
    rows: list[dict[str, Any]] = [{"clip": cid, "prompt": prompts_of[i], "error": None}
                                  for i, (cid, _) in enumerate(clips)]
    feats, where = [], {}
    for i, (cid, v) in enumerate(clips):
        if isinstance(v, VdevalError):
            rows[i]["error"] = str(v)
        else:
            where[cid] = i
            feats.append(ClipFeatures(cid, v, prompts_of[i]))
    bar = progress_bar(len(feats), f"scoring {', '.join(ms)}", args.progress, unit="clip")
    groups = memory_groups(feats, requests, pool, args.memory_gb)
    for i, group in enumerate(groups):
        more = i < len(groups) - 1  # networks kept for the next group while the budget allows, else freed
        pool.keep_bytes = keep_budget(pool, group_need([clip_need(c, requests, pool) for c in group]),
                                      args.memory_gb) if more else 0
        failed = featurize_clips(group, requests, pool, cache, progress=args.progress, what="videos",
                                 batch_size=args.batch_size, release=not more)
        for c in group:
            row = rows[where[c.clip_id]]
            if c.clip_id in failed:
                row["error"] = failed[c.clip_id]
            else:
                row.update(_score(c, ms))
            c.drop_features()
        bar.update(len(group))
    bar.close()
    import pandas as pd  # after the networks: its 60 MB are not part of the featurizing peak

    return pd.DataFrame(rows, columns=None if rows else ["clip", "prompt", "error", *ms])


def _score(clip: ClipFeatures, metrics: dict) -> dict:
    """One clip's columns: the runner's score stage (a metric that raises gives NaN and a note),
    flattened to `<metric>`, `<metric>.<extra>` and `<metric>.note`."""
    rec = empty_scores()
    row = {}
    for name, m in metrics.items():
        score_clip(m, clip, name, rec)
        row[name] = rec["scores"][name]
        for k, v in rec["extras"].get(name, {}).items():
            row[f"{name}.{k}"] = v
        if name in rec["notes"]:
            row[f"{name}.note"] = rec["notes"][name]
    return row


def evaluate_set(real, generated, metrics: Sequence[str] = ("fvd", "kvd"), backbones: dict[str, str] | None = None,
                 device: str = "auto", cache_dir: str | os.PathLike | None = None, fps: float = 8.0,
                 domain: str = "natural", batch_size: int = 8, value_range: tuple[float, float] | None = None,
                 progress: bool = True):
    """Set-level metrics (FVD, KVD) of `generated` against `real`: a DataFrame with one row per
    metric: value, 95% interval, n, n_real, the backbone that produced it, and `failures` (the
    clips left out of either set, each with its error). `progress`: as in `evaluate`."""
    import pandas as pd

    args = check_call("evaluate_set", metrics=metrics, backbones=backbones, device=device, cache_dir=cache_dir,
                      fps=fps, domain=domain, batch_size=batch_size, value_range=value_range, progress=progress)
    per_clip = [e.name for e in args.metrics if registry.resolve("metric", e.name).level != "set"]
    if per_clip:
        raise VdevalError(f"{', '.join(per_clip)}: per-clip metrics", "score them with vdeval.evaluate")
    inputs = {"real": _as_clips(real, args.fps, args.value_range),
              "generated": _as_clips(generated, args.fps, args.value_range)}
    ms, pool, cache = _setup(args)
    requests = merge_requests(r for m in ms.values() for r in m.requests())
    sets, failures = {}, []
    for which, clips in inputs.items():
        failures += [f"{which} {cid}: {v}" for cid, v in clips if isinstance(v, VdevalError)]
        feats = [ClipFeatures(cid, v) for cid, v in clips if not isinstance(v, VdevalError)]
        failed = featurize_clips(feats, requests, pool, cache, progress=args.progress, what=which,
                                 batch_size=args.batch_size)
        failed.update({c.clip_id: next(iter(c.feature_errors.values())) for c in feats if c.feature_errors})
        failures += [f"{which} {cid}: {e}" for cid, e in failed.items()]
        sets[which] = [c for c in feats if c.clip_id not in failed]
    rows = []
    for name, m in ms.items():
        bb = ", ".join(pool.card(r.backbone, r.options).label() for r in m.requests())
        m.bind_backbones([pool.get(r.backbone, r.options) for r in m.requests()])
        s = m.score_set(sets["generated"], sets["real"])
        rows.append({"metric": name, "value": float(s.value), "ci_low": s.ci[0] if s.ci else None,
                     "ci_high": s.ci[1] if s.ci else None, "n": s.n, "n_real": s.n_real, "backbone": bb,
                     "failures": "; ".join(failures) or None})
    return pd.DataFrame(rows)
