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
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from vdeval import registry
from vdeval.run.domains import load_metric_backbones, metric_backbone
from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, FeatureCache
from vdeval.run.featurizing import FeatureStage
from vdeval.run.progress import progress_bar
from vdeval.run.scoring import empty_scores, score_clip
from vdeval.video.core import as_video
from vdeval.video.io import VIDEO_SUFFIXES

if TYPE_CHECKING:
    from vdeval.metrics.base import Metric
    from vdeval.video import Video
    from vdeval.video.source import VideoSource


def resolve_device(device: str = "auto") -> str:
    """"auto": the first CUDA device when torch sees one, else the CPU."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _as_clips(videos, fps: float, value_range=None) -> list[tuple[str, Video | VideoSource | VdevalError]]:
    """[(clip id, Video or source)]: ids are file names for files, clip indices otherwise."""
    from vdeval.generators.folder import list_videos, open_clip

    if isinstance(videos, (str, os.PathLike)):
        folder = Path(videos)
        if not folder.is_dir():
            raise VdevalError(f"{folder}: not a folder of videos", "give a folder, a list of paths or arrays")
        videos = list_videos(folder)
    if _is_tensor_batch(videos):
        videos = list(videos)
    out: list[tuple[str, Video | VideoSource | VdevalError]] = []
    for i, v in enumerate(videos):
        if isinstance(v, (str, os.PathLike)):
            p = Path(v)
            out.append((p.name, _open_or_error(p, open_clip)))
        else:
            out.append((f"clip{i:04d}", _array_or_error(v, fps, i, value_range)))
    return out


def _is_tensor_batch(videos) -> bool:
    return hasattr(videos, "ndim") and getattr(videos, "ndim", 0) == 5


def _open_or_error(path: Path, open_clip):
    if path.suffix.lower() not in VIDEO_SUFFIXES and not path.is_dir():
        return VdevalError(f"{path}: not a video file")
    try:
        return open_clip(path)
    except VdevalError as e:
        return e


def _array_or_error(array, fps: float, index: int, value_range=None):
    try:
        return as_video(array, fps, source=f"video {index}", value_range=value_range)
    except VdevalError as e:
        return e


def _metrics(metrics, backbones: dict | None, domain: str) -> dict[str, Metric]:
    out = {}
    for entry in metrics:
        name, params = (entry, {}) if isinstance(entry, str) else (entry["name"], dict(entry.get("params", {})))
        cls = registry.resolve("metric", name)
        named = (backbones or {}).get(name) or (None if isinstance(entry, str) else entry.get("backbone"))
        out[name] = cls(backbone=metric_backbone(cls, named, domain), **params)
    return out


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
    import pandas as pd

    clips = _as_clips(videos, fps, value_range)
    prompts = _prompts(prompts, videos, clips)
    ms = _metrics(metrics, backbones, domain)
    ms = {k: m for k, m in ms.items() if m.level == "clip"}
    pool, cache = BackbonePool(resolve_device(device)), FeatureCache(cache_dir)
    load_metric_backbones(ms, pool)
    rows = {cid: {"clip": cid, "prompt": (prompts[i] if prompts else ""), "error": None} for i, (cid, _) in enumerate(clips)}
    feats = []
    for i, (cid, v) in enumerate(clips):
        if isinstance(v, VdevalError):
            rows[cid]["error"] = str(v)
        else:
            feats.append(ClipFeatures(cid, v, rows[cid]["prompt"]))
    stage = FeatureStage(ms, pool, cache, batch_size, None, memory_gb, progress)
    bar = progress_bar(len(feats), f"scoring {', '.join(ms)}", progress, unit="clip")
    for group in stage.groups(feats):
        failed = stage.run(group, "videos")
        for c in group:
            if c.clip_id in failed:
                rows[c.clip_id]["error"] = failed[c.clip_id]
            else:
                rows[c.clip_id].update(_score(c, ms))
            c.drop_features()
        bar.update(len(group))
    bar.close()
    return pd.DataFrame(list(rows.values()))


def _prompts(prompts, videos, clips) -> list[str] | None:
    """One prompt per clip: as given, or from VBench-style file names with "from_names"."""
    if isinstance(prompts, str):
        if prompts != "from_names":
            raise VdevalError(f"prompts={prompts!r}: give one prompt per video or \"from_names\"")
        from vdeval.video.ingest import prompt_from_name

        from vdeval.video.core import Video

        return ["" if isinstance(v, Video) else prompt_from_name(Path(cid)) for cid, v in clips]
    if prompts is not None and len(prompts) != len(clips):
        raise VdevalError(f"{len(prompts)} prompts for {len(clips)} videos", "give one prompt per video")
    return prompts


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
    metric: value, 95% interval, n, n_real and the backbone that produced it. `progress`: as in
    `evaluate`."""
    import pandas as pd

    ms = _metrics(metrics, backbones, domain)
    per_clip = [n for n, m in ms.items() if m.level != "set"]
    if per_clip:
        raise VdevalError(f"{', '.join(per_clip)}: per-clip metrics", "score them with vdeval.evaluate")
    pool, cache = BackbonePool(resolve_device(device)), FeatureCache(cache_dir)
    load_metric_backbones(ms, pool)
    stage = FeatureStage(ms, pool, cache, batch_size, None, 2.0, progress)
    sets = {}
    for which, videos in (("real", real), ("generated", generated)):
        clips = [ClipFeatures(cid, v) for cid, v in _as_clips(videos, fps, value_range) if not isinstance(v, VdevalError)]
        failed = stage.run(clips, which)
        sets[which] = [c for c in clips if c.clip_id not in failed]
    rows = []
    for name, m in ms.items():
        bb = ", ".join(pool.get(r.backbone, r.options).label() for r in m.requests())
        m.bind_backbones([pool.get(r.backbone, r.options) for r in m.requests()])
        s = m.score_set(sets["generated"], sets["real"])
        rows.append({"metric": name, "value": float(s.value), "ci_low": s.ci[0] if s.ci else None,
                     "ci_high": s.ci[1] if s.ci else None, "n": s.n, "n_real": s.n_real, "backbone": bb})
    return pd.DataFrame(rows)
