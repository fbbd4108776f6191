"""The memory contract in numbers: what one clip needs while its features are computed, how much
memory the machine has free, and the groups of clips that fit both.

A clip in a group holds, until it is scored: its decoded input for every distinct input spec its
backbones ask for (uint8, at the spec's size) and its pixel-sized features (flow, midpoints).
While one request is computed, its backbone's declared working set (Backbone.working_set: its
temporaries and its output) comes on top, for one clip at a time. A group needs the sum of what
its clips hold plus the largest working set among them.

Before a group starts, its need is compared with the memory the machine has free: a group that
does not fit is split to one clip at a time, and a clip that does not fit alone fails with its
metric, backbone and what to change (`MemoryShortage`), never the run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vdeval.backbones.base import Backbone
from vdeval.features import ClipFeatures, FeatureRequest

if TYPE_CHECKING:  # featurize imports this module
    from vdeval.run.featurize import BackboneCard

GIB = 1 << 30
# bytes kept free beyond a group's estimate: the decoder's frames at source size, threads' stacks,
# the allocator's slack (measured: under 100 MB on 1080p clips, tests/run/test_memory_contract.py)
HEADROOM = 256 << 20
_NO_PIXELS = ("text_embedding", "reference_embedding")
HINT = ("lower ingest.max_short_side (or ingest.frames) of the generator or real set to decode less, "
        "or raise output.memory_gb if the machine has the memory")


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable (Linux), lowered to the cgroup's limit
    less its usage when a container sets one; None where neither can be read."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            raw = Path(limit_file).read_text().strip()
            if raw == "max" or int(raw) >= 1 << 60:
                continue
            left = int(raw) - int(Path(usage_file).read_text().strip())
            free = left if free is None else min(free, left)
        except (OSError, ValueError):
            continue
    limit = os.environ.get("VDEVAL_MEMORY_LIMIT_GB")  # tests and shared machines: pretend less is free
    if limit:
        free = min(free if free is not None else 1 << 62, int(float(limit) * GIB))
    return free


@dataclass
class ClipNeed:
    """What one clip needs: `held` bytes until it is scored, `peak` extra bytes while its largest
    request is computed, and which request that is."""

    held: int
    peak: int
    request: FeatureRequest | None


def _geometry(clip: ClipFeatures, backbone: Backbone | BackboneCard, kind: str) -> tuple[int, int, int]:
    return clip.source.output_geometry(backbone.input_spec(kind))


def feature_bytes(kind: str, backbone: Backbone | BackboneCard, t: int, h: int, w: int) -> int:
    """Bytes of the pixel-sized feature `kind` kept per clip until scoring (0 for small ones)."""
    if kind == "flow":
        return max(t - 1, 0) * h * w * 4 * backbone.flow_itemsize
    if kind == "flow_even":
        return max((t + 1) // 2 - 1, 0) * h * w * 4 * backbone.flow_itemsize
    if kind == "midframes_even":
        return max((t + 1) // 2 - 1, 0) * h * w * 3
    return 0


def clip_need(clip: ClipFeatures, requests: list[FeatureRequest], pool, metrics=()) -> ClipNeed:
    """`metrics` (optional): their scoring working sets count towards the peak too."""
    held, peak, worst = 0, 0, None
    specs = {}
    for req in requests:
        if req.kind in _NO_PIXELS:
            continue
        backbone = pool.card(req.backbone, req.options)  # never rebuilds a freed network
        spec = backbone.input_spec(req.kind)
        t, h, w = _geometry(clip, backbone, req.kind)
        specs[spec] = t * h * w * 3  # decoded once per spec and kept for the group's pass
        held += feature_bytes(req.kind, backbone, t, h, w)
        ws = 0 if req.kind == "frames" else backbone.working_set(req.kind, t, h, w)
        if ws > peak:
            peak, worst = ws, req
    for m in metrics:
        peak = max(peak, metric_peak(m, clip, pool))
    return ClipNeed(held + sum(specs.values()), peak, worst)


def group_need(needs: list[ClipNeed]) -> int:
    return sum(n.held for n in needs) + max((n.peak for n in needs), default=0)


def plan_groups(clips: list[ClipFeatures], requests: list[FeatureRequest], pool,
                memory_gb: float, metrics=()) -> list[list[ClipFeatures]]:
    """Consecutive groups of clips whose needs fit `memory_gb` together (at least one clip each):
    32-pixel clips go in one group, 1080p clips of 250 frames one or two at a time."""
    budget = int(memory_gb * GIB)
    groups: list[list[ClipFeatures]] = [[]]
    needs: list[ClipNeed] = []
    for c in clips:
        n = clip_need(c, requests, pool, metrics)
        if groups[-1] and group_need(needs + [n]) > budget:
            groups.append([])
            needs = []
        groups[-1].append(c)
        needs.append(n)
    return [g for g in groups if g]


def shortage(clip: ClipFeatures, requests: list[FeatureRequest], pool, free: int | None,
             metrics_of=None, metrics=()) -> MemoryShortage | None:
    """A MemoryShortage when `clip` alone needs more than `free` bytes (None when it fits or when
    free memory is unknown)."""
    if free is None:
        return None
    n = clip_need(clip, requests, pool, metrics)
    need = n.held + n.peak + HEADROOM
    if need <= free:
        return None
    return MemoryShortage(clip.clip_id, need, free, n.request, metrics_of(n.request) if metrics_of and n.request else "")


class MemoryShortage(Exception):
    """A clip that cannot be featurized in the memory there is: its failure, with what to change."""

    def __init__(self, clip_id: str, need: int | None, free: int | None, request: FeatureRequest | None,
                 metrics: str = "", during: str = "estimated"):
        self.clip_id, self.need, self.free, self.request, self.metrics = clip_id, need, free, request, metrics
        what = f"{request.kind} from backbone {request.backbone}" if request else "its features"
        amount = (f"needs about {need / GIB:.1f} GB, {free / GIB:.1f} GB free" if need is not None and free is not None
                  else "ran out of memory")
        for_ = f" for {metrics}" if metrics else ""
        super().__init__(f"out of memory: {what}{for_} {amount} ({during})")
        self.hint = HINT

    def __str__(self) -> str:
        return f"{self.args[0]}; {self.hint}"


def metric_peak(metric, clip: ClipFeatures, pool) -> int:
    """The declared working set of `metric.score_clip` on `clip` (its first pixel request's geometry)."""
    for req in metric.requests():
        if req.kind in _NO_PIXELS:
            continue
        backbone = pool.card(req.backbone, req.options)  # never rebuilds a freed network
        return metric.working_set(*_geometry(clip, backbone, req.kind))
    return 0
