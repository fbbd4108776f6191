"""A run's numbers in VBench's results layout, for the dimensions where vdeval runs VBench's protocol.

VBench (vbench/__init__.py, VBench.evaluate) writes `{name}_eval_results.json`:
    {dimension: [aggregate, [{"video_path": path, "video_results": per-video value}, ...]]}
and `{name}_full_info.json`: [{"prompt_en", "dimension": [...], "video_list": [paths]}].
Here one pair of files per generator (name = the generator's name), plus `vdeval_export.json`
saying, per dimension, which vdeval metric and backbone produced it and, for every dimension
left out, why.

Per-video values and aggregates on VBench's scales (vbench/<dimension>.py):
  subject_consistency   identity_drift on dino_vbench; per video its value; aggregate pooled over
                        every frame pair of every clip (VBench's sim / cnt)
  dynamic_degree        frozen_motion on raft_vbench; per video true/false (dynamic); aggregate the
                        fraction of dynamic videos
  temporal_flickering   frame_difference; per video (255 - mean |diff|) / 255 (extras.vbench);
                        aggregate the mean
  motion_smoothness     motion_smoothness on amt (AMT-S); per video (255 - mean d) / 255; mean
  aesthetic_quality     aesthetic_quality on laion_aesthetic (linear head); per video mean score / 10; mean
  imaging_quality       imaging_quality on musiq (SPAQ checkpoint); per video the mean MUSIQ score
                        (0-100, as VBench stores it); aggregate the mean / 100
A dimension is exported only when every clip of the generator ran VBench's protocol on VBench's
input: the metric on that backbone with VBench's options, each clip scored (a clip without a
value has no VBench number either), and the input conditions each protocol has here (frames of
at most 256 px short side for temporal_flickering, which vdeval decodes at most at 256; raft at
the clip's own size, sides multiples of 8 and more than two frames after 8 fps sampling for
dynamic_degree; frames of at most 512 px short side for imaging_quality unless decoded at full
size). Anything else is listed under "not_exported" with the reason; nothing is called VBench's
that is not. Video paths: the file a folder generator read, else the run's stored clip
(clips/<generator>/<clip>.npy: exact frames, not a video VBench can read).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vdeval.results import BackboneRecord, ClipRecord, MetricRecord, Results, load_results, results_path

VBENCH_URL = "https://github.com/Vchitect/VBench"


@dataclass(frozen=True)
class Dimension:
    """How one VBench dimension is read from a vdeval metric."""

    name: str
    metric: str
    backbone: str
    per_video: Callable[[ClipRecord, str], object]  # (clip, metric label) -> VBench's per-video value
    aggregate: str  # "mean", "mean/100" or "pairs"
    # (metric label, record, backbone, clip, the clip's stored meta) -> why it is not VBench's, or None
    check: Callable[[str, MetricRecord, BackboneRecord | None, ClipRecord, dict], str | None]


def _score(clip: ClipRecord, label: str):
    return clip.scores.get(label)


def _extra(name: str):
    def get(clip: ClipRecord, label: str):
        return (clip.extras.get(label) or {}).get(name)
    return get


def _dynamic(clip: ClipRecord, label: str):
    v = clip.scores.get(label)
    return None if v is None else bool(v == 0.0)  # frozen_motion: 1 frozen, 0 dynamic


def _times_100(clip: ClipRecord, label: str):
    v = clip.scores.get(label)
    return None if v is None else v * 100.0


def _short_side(meta: dict) -> int | None:
    shape = meta.get("shape")
    return min(shape[1], shape[2]) if shape and len(shape) == 4 else None


def _flicker_input(label, metric, backbone, clip, meta):
    side = _short_side(meta)
    if side is None:
        return "the clip's size is not recorded"
    if side > 256:
        return f"frames of {side} px short side are decoded at 256 here, VBench differences them at full size"
    return None


def _dynamic_input(label, metric, backbone, clip, meta):
    opts = backbone.options if backbone else {}
    if opts.get("max_short_side"):
        return "RAFT ran on resized frames (max_short_side); VBench runs it at the clip's own size"
    if metric.params.get("threshold_scale") not in (None, 6.0) or metric.params.get("top_fraction", 0.05) != 0.05 \
            or metric.params.get("sample_fps", 8.0) != 8.0:
        return "frozen_motion ran with params other than VBench's (threshold_scale 6, top_fraction 0.05, sample_fps 8)"
    shape = meta.get("shape")
    if not shape or len(shape) != 4:
        return "the clip's size is not recorded"
    if shape[1] % 8 or shape[2] % 8:
        return f"{shape[1]}x{shape[2]} frames: VBench takes the top 5% over the frame padded to multiples of 8, vdeval over its own pixels"
    kept = (clip.extras.get(label) or {}).get("sampled_frames")
    if kept is not None and kept <= 2:
        return "two frames or fewer after 8 fps sampling: VBench calls such a clip dynamic whatever it scores"
    return None


def _imaging_input(label, metric, backbone, clip, meta):
    opts = backbone.options if backbone else {}
    if opts.get("checkpoint", "spaq") != "spaq":
        return f"MUSIQ checkpoint {opts.get('checkpoint')!r}: VBench's is spaq"
    side = _short_side(meta)
    if side is None:
        return "the clip's size is not recorded"
    cap = opts.get("max_short_side", 512)
    if cap and side > cap:
        return f"frames of {side} px short side were decoded at {cap} (VBench reads them at full size; use max_short_side: 0)"
    return None


def _aesthetic_input(label, metric, backbone, clip, meta):
    opts = backbone.options if backbone else {}
    head = opts.get("head", "laion-aesthetic-linear")
    if head != "laion-aesthetic-linear":
        return f"aesthetic head {head!r}: VBench's is the linear one (sa_0_4_vit_l_14_linear.pth)"
    if (opts.get("model", "ViT-L-14"), opts.get("pretrained", "openai")) != ("ViT-L-14", "openai"):
        return "CLIP other than ViT-L/14 (OpenAI): VBench's aesthetic predictor reads that embedding"
    return None


def _smoothness_input(label, metric, backbone, clip, meta):
    interp = metric.params.get("interpolator")
    return None if interp in (None, "amt-s") else f"interpolator {interp!r}: VBench's is AMT-S"


def _subject_input(label, metric, backbone, clip, meta):
    return None if "n_pairs" in (clip.extras.get(label) or {}) else "the clip's number of frame pairs is not recorded"


DIMENSIONS = (
    Dimension("subject_consistency", "identity_drift", "dino_vbench", _score, "pairs", _subject_input),
    Dimension("dynamic_degree", "frozen_motion", "raft_vbench", _dynamic, "mean", _dynamic_input),
    Dimension("temporal_flickering", "frame_difference", "pixels", _extra("vbench"), "mean", _flicker_input),
    Dimension("motion_smoothness", "motion_smoothness", "amt", _score, "mean", _smoothness_input),
    Dimension("aesthetic_quality", "aesthetic_quality", "laion_aesthetic", _score, "mean", _aesthetic_input),
    Dimension("imaging_quality", "imaging_quality", "musiq", _times_100, "mean/100", _imaging_input),
)


def _clip_meta(run_dir: Path | None, clip: ClipRecord) -> dict:
    if run_dir is None:
        return {}
    p = run_dir / "clips" / clip.generator / f"{clip.clip_id}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _video_path(run_dir: Path | None, clip: ClipRecord, meta: dict) -> str:
    if meta.get("file"):
        return str(meta["file"])
    base = run_dir if run_dir is not None else Path(".")
    return str(base / "clips" / clip.generator / f"{clip.clip_id}.npy")


def _aggregate(kind: str, values: list, clips: list[ClipRecord], label: str) -> float:
    if kind == "pairs":
        w = [float((c.extras.get(label) or {}).get("n_pairs") or 0.0) for c in clips]
        return float(sum(float(v) * n for v, n in zip(values, w)) / sum(w))
    mean = sum(float(v) for v in values) / len(values)
    return mean / 100.0 if kind == "mean/100" else mean


def _metric_for(res: Results, dim: Dimension) -> tuple[str | None, MetricRecord | None, str]:
    """(label, record, "") of the run's metric that runs this dimension's protocol, or (None, None, why)."""
    seen = []
    for label, rec in res.metrics.items():
        if rec.name != dim.metric:
            continue
        if rec.backbone == dim.backbone:
            return label, rec, ""
        seen.append(f"{label} ran on {rec.backbone!r}")
    if seen:
        return None, None, f"{dim.metric} is VBench's protocol on {dim.backbone!r} only; " + "; ".join(seen)
    return None, None, f"the run has no {dim.metric} metric (on {dim.backbone!r})"


def export_vbench(run: str | Path, out: str | Path) -> dict:
    """Write VBench's results files for every generator of `run` into `out`; returns the summary
    written to vdeval_export.json ({generator: {"exported": {...}, "not_exported": {...}}})."""
    from vdeval.store import atomic_write_json, make_dir

    res = load_results(run)
    rpath = results_path(run)
    run_dir = rpath.parent
    out = Path(out)
    make_dir(out, "export directory")
    summary: dict = {"format": "vbench", "vbench": VBENCH_URL, "run": str(run_dir), "suite": res.suite_name,
                     "generators": {}}
    for gen in res.generator_names():
        clips = [c for c in res.clips if c.generator == gen and c.error is None]
        failed = sum(1 for c in res.clips if c.generator == gen and c.error is not None) \
            + sum(1 for f in res.failures if f.generator == gen)
        done: dict[str, dict] = {}
        skipped: dict[str, str] = {}
        eval_results: dict[str, list] = {}
        prompts: dict[str, dict] = {}
        for dim in DIMENSIONS:
            label, rec, absent = _metric_for(res, dim)
            if label is None or rec is None:
                skipped[dim.name] = absent
                continue
            why = _why_not(res, dim, label, rec, clips, failed, run_dir)
            if why:
                skipped[dim.name] = why
                continue
            metas = [_clip_meta(run_dir, c) for c in clips]
            values = [dim.per_video(c, label) for c in clips]
            paths = [_video_path(run_dir, c, m) for c, m in zip(clips, metas)]
            agg = _aggregate(dim.aggregate, values, clips, label)
            eval_results[dim.name] = [agg, [{"video_path": p, "video_results": v} for p, v in zip(paths, values)]]
            for c, p in zip(clips, paths):
                entry = prompts.setdefault(c.prompt, {"prompt_en": c.prompt, "dimension": [], "video_list": []})
                if dim.name not in entry["dimension"]:
                    entry["dimension"].append(dim.name)
                if p not in entry["video_list"]:
                    entry["video_list"].append(p)
            bb = res.backbones.get(rec.backbone_label or "")
            done[dim.name] = {"aggregate": agg, "videos": len(values), "metric": label, "vdeval_metric": rec.name,
                              "backbone": rec.backbone_label or rec.backbone,
                              "weights": dict(bb.weights) if bb else {}, "aggregate_rule": dim.aggregate}
        if eval_results:
            atomic_write_json(out / f"{gen}_eval_results.json", eval_results)
            atomic_write_json(out / f"{gen}_full_info.json", list(prompts.values()))
        summary["generators"][gen] = {"exported": done, "not_exported": skipped}
    atomic_write_json(out / "vdeval_export.json", summary)
    return summary


def _no_value(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _why_not(res: Results, dim: Dimension, label: str, rec: MetricRecord, clips: list[ClipRecord], failed: int,
             run_dir: Path) -> str | None:
    if not clips:
        return "no clips"
    if failed:
        return f"{failed} clips could not be made: VBench scores every sampled video"
    missing = [c.clip_id for c in clips if _no_value(dim.per_video(c, label))]
    if missing:
        return f"{len(missing)} clips have no {label} value (e.g. {missing[0]}): VBench scores every video"
    bb = res.backbones.get(rec.backbone_label or "")
    for c in clips:
        why = dim.check(label, rec, bb, c, _clip_meta(run_dir, c))
        if why:
            return f"clip {c.clip_id}: {why}"
    return None

