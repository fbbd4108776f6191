"""The generalization audit (`vdeval audit --grid`): each metric's default tier on conditions and
failure forms it was not tuned on, with a calibration split and a disjoint evaluation split.

Conditions: world clips of several sizes (32-128 px, square and not), lengths (8-48 frames), object
speeds (slow / fast), backgrounds (plain / textured) and object counts (1 / 2); and windows of natural
footage (the files given, e.g. ../shared/data/natural) at several short sides and frame rates
(every frame, every 2nd). Failure families, each in two forms written apart from the world's own
corruptions (vdeval/audit/forms.py): motion blur (smear, frame blending), compression (per-frame
JPEG, H.264), stutter (exact holds, near-duplicates with noise), skip-ahead (a jump, a stall then a
jump), partial freezes (tail, middle), flicker (global gain, a local colour region) and camera shake
(sub-pixel translation, rotation).

Splits: calibration = world seeds from CALIBRATION_SEED, even-numbered natural windows, severities
CALIBRATION_SEVERITIES; evaluation = world seeds from EVALUATION_SEED, odd-numbered windows,
severities EVALUATION_SEVERITIES. Nothing here is tuned: the calibration split is where settings
(new tiers, thresholds) are chosen, the evaluation split is what is reported. A cell is (condition,
split, family, form, severity); its AUROC is clean vs corrupted clips of that condition and split
(oriented by the score's higher_is_better). The table that matters is each score's worst cell on
the evaluation split, per family (`worst`), not the mean.

Which score answers which family (the metric's default tier in the condition's domain: world
clips keep world defaults, natural footage gets the metric's natural backbone): FAMILY_SCORES.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vdeval import registry
from vdeval.audit.core import MemoryCache, auroc
from vdeval.audit.forms import FAMILIES, SKIP_SPARE, apply
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool
from vdeval.run.featurizing import featurize_safely
from vdeval.run.progress import one_line
from vdeval.run.scoring import empty_scores, score_clip
from vdeval.video.core import Video

CALIBRATION_SEED, EVALUATION_SEED = 10_000, 20_000
CALIBRATION_SEVERITIES = (0.35, 0.7)
EVALUATION_SEVERITIES = (0.5, 1.0)

# family -> [(metric, score)]: score is the metric's value ("") or one of its extras
FAMILY_SCORES: dict[str, list[tuple[str, str]]] = {
    "motion_blur": [("motion_blur", ""), ("frame_blending", "")],
    "compression": [("imaging_quality", "")],
    "stutter": [("motion_smoothness", ""), ("frame_repeats", "")],
    "skip": [("physical_plausibility", ""), ("motion_smoothness", ""), ("frame_skips", "")],
    "freeze": [("frozen_motion", "frozen_fraction")],
    "flicker": [("warping_error", ""), ("frame_difference", "")],
    "shake": [("motion_jitter", "")],
}
WORLD_ONLY = {"physical_plausibility"}  # reads the world caption's objects


@dataclass(frozen=True)
class Condition:
    name: str
    domain: str  # "world" or "natural"
    frames: int
    height: int = 0  # world
    width: int = 0
    speed: str = "slowly"
    backgrounds: tuple = ("plain",)
    objects: int = 1
    short_side: int = 0  # natural
    stride: int = 1


TEXTURED = ("striped", "checkered", "dotted")
WORLD_SMALL = (
    Condition("world 32x32 8f slow plain 1obj", "world", 8, 32, 32, "slowly", ("plain",), 1),
    Condition("world 64x64 16f fast textured 2obj", "world", 16, 64, 64, "quickly", TEXTURED, 2),
    Condition("world 48x80 24f slow textured 2obj", "world", 24, 48, 80, "slowly", TEXTURED, 2),
    Condition("world 128x128 12f fast plain 1obj", "world", 12, 128, 128, "quickly", ("plain",), 1),
)
WORLD_LARGE = WORLD_SMALL + (
    Condition("world 32x32 48f fast textured 2obj", "world", 48, 32, 32, "quickly", TEXTURED, 2),
    Condition("world 96x64 32f slow plain 2obj", "world", 32, 96, 64, "slowly", ("plain",), 2),
    Condition("world 128x96 16f slow textured 1obj", "world", 16, 128, 96, "slowly", TEXTURED, 1),
)
NATURAL_SMALL = (
    Condition("natural short 64 every frame 16f", "natural", 16, short_side=64, stride=1),
    Condition("natural short 128 every 2nd 12f", "natural", 12, short_side=128, stride=2),
)
NATURAL_LARGE = NATURAL_SMALL + (
    Condition("natural short 96 every frame 24f", "natural", 24, short_side=96, stride=1),
    Condition("natural short 160 every 2nd 8f", "natural", 8, short_side=160, stride=2),
)


@dataclass
class GridResult:
    cells: Any  # pandas DataFrame: one row per (score, condition, split, family, form, severity)
    worst: Any  # pandas DataFrame: per (score, family, domain), the worst evaluation cell
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    n_clips: int = 0


def world_sources(cond: Condition, n: int, first_seed: int) -> list[tuple[np.ndarray, str, float]]:
    """(frames + SKIP_SPARE frames, caption, fps) of n world clips from first_seed: moving objects only."""
    from vdeval.world import DIRECTIONS, WorldSpec, sample_clip

    spec = WorldSpec(height=cond.height, width=cond.width, frames=cond.frames + SKIP_SPARE, min_objects=cond.objects,
                     max_objects=cond.objects, motions=tuple(DIRECTIONS), speeds=(cond.speed,),
                     backgrounds=tuple(cond.backgrounds))
    out = []
    for i in range(n):
        c = sample_clip(first_seed + i, spec)
        out.append((c.video.frames, c.caption, float(c.video.fps)))
    return out


def natural_windows(cond: Condition, files: list[Path], split: str, n: int) -> list[tuple[np.ndarray, str, float]]:
    """Non-overlapping windows of frames + SKIP_SPARE frames of each file (short side and frame
    stride of the condition, the footage's own repeated frames dropped first: drop_source_repeats);
    even-numbered windows are the calibration split, odd ones evaluation."""
    from vdeval.video.protocol import InputSpec
    from vdeval.video.source import FileSource

    length = cond.frames + SKIP_SPARE
    out = []
    for path in files:
        # repeats dropped at the footage's own rate, then the condition's stride
        full = FileSource(path).decode(InputSpec(short_side=cond.short_side))
        v = Video(drop_source_repeats(full.frames)[::cond.stride], full.fps / cond.stride)
        starts = list(range(0, v.num_frames - length + 1, length))
        for k, s in enumerate(starts):
            if (k % 2 == 0) == (split == "calibration"):
                out.append((v.frames[s:s + length], "", float(v.fps)))
    return out[:n]


REPEAT_FRACTION = 0.1  # a frame whose change from its predecessor is under 10% of the footage's median change


def drop_source_repeats(frames: np.ndarray) -> np.ndarray:
    """The frames without those that repeat their predecessor (mean |difference| under REPEAT_FRACTION
    of the footage's median over all pairs). Footage converted between frame rates carries such
    repeats (bigbuckbunny.mp4 repeats one frame a second: 24 fps shown at 25), and a clean window
    that already stutters cannot be the clean side of a stutter cell. Footage that barely moves
    (median change 0) keeps every frame."""
    if len(frames) < 3:
        return frames
    d = np.array([np.abs(frames[t + 1].astype(np.int16) - frames[t]).mean() for t in range(len(frames) - 1)])
    med = float(np.median(d))
    if med <= 0:
        return frames
    keep = np.r_[True, d >= REPEAT_FRACTION * med]
    return frames[keep]


def _metric(name: str, domain: str, backbone: str | None = None):
    from vdeval.run.domains import metric_backbone

    cls = registry.resolve("metric", name)
    return cls(backbone=metric_backbone(cls, backbone, domain))


def run_grid(natural: list[Path] | None = None, n: int = 8, large: bool = False, families=None,
             pool: BackbonePool | None = None, progress=None, conditions: list[Condition] | None = None,
             metrics: list[str] | None = None, backbones: dict[str, str] | None = None) -> GridResult:
    """The grid (see module docstring); `conditions` replaces the built-in ones (tests, studies);
    `metrics` keeps only those of FAMILY_SCORES' metrics, and `backbones` ({metric: backbone})
    audits a tier other than the domain's default (both domains).
    Runs torch and OpenCV on one thread: the grid is many small clips, and on a busy 2-core machine
    more threads only contend (world_interpolator features of 10 clips: 1.5 s on one thread, 31 s
    on two, at load average 14)."""
    import cv2
    import torch

    threads = (torch.get_num_threads(), cv2.getNumThreads())
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        return _run_grid(natural, n, large, families, pool, progress, conditions, metrics, backbones)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


def _run_grid(natural, n, large, families, pool, progress, conditions, only=None, backbones=None) -> GridResult:
    import pandas as pd

    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    pool = pool or BackbonePool()
    cache = MemoryCache()
    fams = list(families or FAMILIES)
    from vdeval.errors import VdevalError

    for f in fams:
        if f not in FAMILIES:
            raise VdevalError(f"unknown failure family {f!r}", f"one of {', '.join(FAMILIES)}")
    audited = {m for f in fams for m, _ in FAMILY_SCORES[f]}
    for m in list(only or []) + list(backbones or {}):
        if m not in audited:
            raise VdevalError(f"metric {m!r} is not audited on the grid's families {', '.join(fams)}",
                              f"one of {', '.join(sorted(audited))}")
    files = [Path(p) for p in natural or []]
    if conditions is not None:
        conds = list(conditions)
    else:
        conds = list(WORLD_LARGE if large else WORLD_SMALL)
        if files:
            conds += list(NATURAL_LARGE if large else NATURAL_SMALL)
    rows, failures, n_clips = [], [], 0
    splits = (("calibration", CALIBRATION_SEED, CALIBRATION_SEVERITIES), ("evaluation", EVALUATION_SEED, EVALUATION_SEVERITIES))
    for cond in conds:
        metrics = {m: _metric(m, cond.domain, (backbones or {}).get(m)) for f in fams for m, _ in FAMILY_SCORES[f]
                   if not (cond.domain == "natural" and m in WORLD_ONLY) and (not only or m in only)}
        for split, seed0, sevs in splits:
            sources = (world_sources(cond, n, seed0) if cond.domain == "world"
                       else natural_windows(cond, files, split, n))
            if len(sources) < 2:
                failures.append(f"{cond.name} / {split}: {len(sources)} clips, too few for AUROC")
                continue
            say(f"{cond.name} / {split}: {len(sources)} clips x {sum(len(FAMILIES[f]) for f in fams)} forms x {len(sevs)} severities")
            clean = [ClipFeatures(f"{i}/clean", Video(src[:cond.frames], fps), cap) for i, (src, cap, fps) in enumerate(sources)]
            corrupted: dict[tuple, list[ClipFeatures]] = {}
            for f in fams:
                for form in FAMILIES[f]:
                    for v in sevs:
                        group = []
                        for i, (src, cap, fps) in enumerate(sources):
                            try:
                                frames = apply(f, form, src, cond.frames, v, seed0 + i)
                            except Exception as e:
                                failures.append(f"{cond.name}/{split}/{i}/{f}.{form}@{v:g}: {one_line(e)}")
                                continue
                            if np.array_equal(frames, src[:cond.frames]):
                                continue  # nothing to catch (a still clip frozen)
                            group.append(ClipFeatures(f"{i}/{f}.{form}@{v:g}", Video(frames, fps), cap))
                        corrupted[(f, form, v)] = group
            # features: clean clips for every metric, corrupted ones for their family's metrics
            values: dict[tuple, dict[str, float]] = {}
            for mname, metric in metrics.items():
                fam_of = [f for f in fams if any(m == mname for m, _ in FAMILY_SCORES[f])]
                todo = clean + [c for (f, _, _), g in corrupted.items() if f in fam_of for c in g]
                _, bad = featurize_safely(todo, metric.requests(), pool, cache)
                failures += [f"{cond.name}/{split}/{cid}: features [{mname}]: {e}" for cid, e in bad.items()]
                for c in todo:
                    if c.clip_id in bad:
                        continue
                    rec = empty_scores()
                    score_clip(metric, c, mname, rec)
                    values[(mname, c.clip_id)] = {"": rec["scores"][mname], **rec["extras"].get(mname, {})}
                n_clips += len(todo)
            for f in fams:
                for mname, score in FAMILY_SCORES[f]:
                    if mname not in metrics:
                        continue
                    metric = metrics[mname]
                    hib = metric.higher_is_better if not score else dict(getattr(metric, "audit_extras", {})).get(score, False)
                    label = mname + (f".{score}" if score else "")
                    a = [values.get((mname, c.clip_id), {}).get(score, np.nan) for c in clean]
                    for (ff, form, v), group in corrupted.items():
                        if ff != f:
                            continue
                        b = [values.get((mname, c.clip_id), {}).get(score, np.nan) for c in group]
                        rows.append({"score": label, "backbone": metric.backbone or "-", "family": f, "form": form,
                                     "condition": cond.name, "domain": cond.domain, "split": split, "severity": v,
                                     "auroc": auroc(a, b, hib), "n_clean": int(np.isfinite(a).sum()),
                                     "n_corrupted": int(np.isfinite(b).sum())})
            for c in clean + [c for g in corrupted.values() for c in g]:
                c.drop_features()
    cells = pd.DataFrame(rows)
    return GridResult(cells, worst_cells(cells), failures, time.perf_counter() - t0, n_clips)


def worst_cells(cells) -> Any:
    """Per (score, backbone, family, domain): the evaluation split's worst cell, its mean, and the
    calibration split's worst for comparison."""
    import pandas as pd

    if cells is None or len(cells) == 0:
        return pd.DataFrame()
    out = []
    for (score, backbone, family, domain), g in cells.groupby(["score", "backbone", "family", "domain"], sort=False):
        ev = g[(g["split"] == "evaluation") & g["auroc"].notna()].reset_index(drop=True)
        cal = g[(g["split"] == "calibration") & g["auroc"].notna()]
        if len(ev) == 0:
            continue
        w = ev.loc[ev["auroc"].idxmin()]
        out.append({"score": score, "backbone": backbone, "family": family, "domain": domain,
                    "worst_auroc": float(w["auroc"]), "worst_cell": f"{w['form']}@{w['severity']:g}, {w['condition']}",
                    "mean_auroc": float(ev["auroc"].mean()), "cells": len(ev),
                    "calibration_worst": float(cal["auroc"].min()) if len(cal) else float("nan")})
    return pd.DataFrame(out)


def grid_markdown(result: GridResult) -> str:
    w = result.worst
    lines = ["| score | backbone | family | domain | worst AUROC (evaluation) | worst cell | mean | calibration worst |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for _, r in w.iterrows():
        lines.append(f"| {r['score']} | {r['backbone']} | {r['family']} | {r['domain']} | {r['worst_auroc']:.2f} | "
                     f"{r['worst_cell']} | {r['mean_auroc']:.2f} | {r['calibration_worst']:.2f} |")
    if result.failures:
        lines += ["", f"{len(result.failures)} clips or cells left out:"] + [f"- {f}" for f in result.failures[:20]]
    return "\n".join(lines)


def write_grid(result: GridResult, out: Path) -> dict[str, Path]:
    from vdeval.store import atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    paths = {"cells": out / "grid_cells.csv", "worst": out / "grid_worst.csv", "markdown": out / "grid.md"}
    atomic_write_text(paths["cells"], result.cells.to_csv(index=False))
    atomic_write_text(paths["worst"], result.worst.to_csv(index=False))
    atomic_write_text(paths["markdown"], grid_markdown(result) + "\n")
    return paths
