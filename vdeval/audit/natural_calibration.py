"""Frozen motion on natural footage: the calibration `vdeval audit --natural` reports.

Each file is cut into windows of `window` frames every `step` frames (decoded at the flow
backbone's input size). Every window is scored as it is ("moving": natural footage moves) and as a
held frame (its first frame repeated: frozen by construction). Targets: moving windows called
frozen at most 10% of the time, held windows at least 95%.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vdeval.features import ClipFeatures
from vdeval.metrics.frozen_motion import FrozenMotion
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video.core import Video
from vdeval.video.source import FileSource

MOVING_TARGET, HELD_TARGET = 0.10, 0.95


def _score(metric: FrozenMotion, video: Video, pool: BackbonePool) -> float:
    clip = ClipFeatures("w", video)
    featurize([clip], metric.requests(), pool)
    return metric.score_clip(clip).value


def frozen_motion_natural(paths: list[Path], window: int = 32, step: int = 6, backbone: str = "dis",
                          **params) -> list[dict]:
    """One row per file: windows, fraction of moving windows called frozen, of held ones."""
    metric, pool = FrozenMotion(backbone=backbone, **params), BackbonePool()
    rows = []
    for path in paths:
        spec = pool.get(backbone).input_spec("flow")
        full = FileSource(path).decode(spec)
        moving, held = [], []
        for start in range(0, max(1, full.num_frames - window + 1), step):
            v = Video(full.frames[start:start + window], full.fps)
            moving.append(_score(metric, v, pool))
            held.append(_score(metric, Video(np.repeat(v.frames[:1], v.num_frames, 0), v.fps), pool))
        rows.append({"file": Path(path).name, "windows": len(moving), "moving_frozen": float(np.nanmean(moving)),
                     "held_frozen": float(np.nanmean(held))})
    return rows


def summary(rows: list[dict]) -> dict:
    n = sum(r["windows"] for r in rows)
    moving = sum(r["moving_frozen"] * r["windows"] for r in rows) / max(n, 1)
    held = sum(r["held_frozen"] * r["windows"] for r in rows) / max(n, 1)
    return {"windows": n, "moving_frozen": moving, "held_frozen": held,
            "ok": moving <= MOVING_TARGET and held >= HELD_TARGET}
