"""The metric contract.

A metric declares the features it needs (FeatureRequest list), whether higher is better, a
version, and its level: "clip" (a score per clip, summarised by mean and bootstrap CI) or "set"
(one score per generator, e.g. FVD against the suite's real set). It is generic over its Params
(`class FrozenMotion(Metric[FrozenMotionParams])`), so `self.params` is typed.

What every metric shares is applied here, once: a clip that delivers fewer than `min_frames`
frames (as its backbones' input specs decode it) scores NaN with a note before the metric's own
`score_clip` runs.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel, ConfigDict

from vdeval.features import ClipFeatures, FeatureRequest, frames_seen


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class ClipScore:
    value: float  # may be NaN with `note` saying why (e.g. a one-frame clip has no motion)
    curve: list[float] | None = None  # per-frame or per-pair values along the clip
    extras: dict[str, float] = field(default_factory=dict)  # named side values (e.g. frozen flag)
    note: str | None = None


@dataclass
class SetScore:
    value: float
    n: int  # clips of the generated set used
    n_real: int | None = None
    ci: tuple[float, float] | None = None  # 95% bootstrap interval
    extras: dict = field(default_factory=dict)


P = TypeVar("P", bound=BaseModel)


class Metric(Generic[P]):
    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: bool  # set by each class; a metric whose direction depends on its backbone sets it per instance
    level: ClassVar[str]  # "clip" or "set"
    default_backbone: ClassVar[str]  # every metric has one; a suite entry may name another
    allowed_backbones: ClassVar[tuple[str, ...] | None] = None  # None: any backbone providing the kinds
    # the published backbone used instead of a shapes-world default (embedded) on other footage;
    # None: this metric has no published backbone, so other footage needs a backbone named
    natural_backbone: ClassVar[str | None] = None
    failure_mode: ClassVar[str] = ""  # the generation failure this metric is meant to catch
    needs_real: ClassVar[bool] = False  # set-level metrics that compare with the suite's real set
    # frames a clip needs for a defined value, counted in what the metric's backbones deliver (their
    # input spec may sample frames): fewer give NaN with a note, applied here for every metric
    min_frames: ClassVar[int] = 1
    # the world corruption `vdeval audit` checks this metric against (see vdeval/audit/core.py), or,
    # for a metric no world corruption can test, why not: one of the two is part of the metric contract
    audit_corruption: ClassVar[str | None] = None
    audit_exempt: ClassVar[str | None] = None
    Params: ClassVar[type[BaseModel]] = NoParams  # the metric's `params:` in a suite, validated
    params: P

    def __init__(self, backbone: str | None = None, **params: Any):
        self.backbone: str = backbone or self.default_backbone
        self.params = cast(P, self.Params(**params))  # pydantic ValidationError on a bad suite entry

    def __init_subclass__(cls, **kwargs: Any):
        # every score_clip a subclass defines goes through the too-few-frames rule first, so no
        # metric repeats it (and a plugin's metric gets it too)
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("score_clip")
        if own is not None and not getattr(own, "_checks_frames", False):
            @functools.wraps(own)
            def score_clip(self, clip: ClipFeatures) -> ClipScore:
                short = self.too_few_frames(clip)
                return short if short is not None else own(self, clip)

            score_clip._checks_frames = True  # type: ignore[attr-defined]
            cls.score_clip = score_clip  # type: ignore[method-assign]

    def frames_delivered(self, clip: ClipFeatures) -> int | None:
        """The fewest frames any of this metric's features saw on `clip` (None: none counts frames)."""
        counts = [n for n in (frames_seen(clip, r) for r in self.requests()) if n is not None]
        return min(counts) if counts else None

    def too_few_frames(self, clip: ClipFeatures) -> ClipScore | None:
        """NaN with a note when the clip delivers fewer than min_frames frames; else None."""
        n = self.frames_delivered(clip)
        if n is None or n >= self.min_frames:
            return None
        few = {0: "empty", 1: "one-frame", 2: "two-frame"}.get(n, f"{n}-frame")
        return ClipScore(math.nan, note=f"{few} clip (as {self.backbone} decodes it): {self.name} needs at least "
                                        f"{self.min_frames} frames")

    def requests(self) -> list[FeatureRequest]:
        raise NotImplementedError

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        raise NotImplementedError(f"{self.name} is a set-level metric")

    def score_set(self, fake: list[ClipFeatures], real: list[ClipFeatures]) -> SetScore:
        raise NotImplementedError(f"{self.name} is a per-clip metric")

    def working_set(self, frames: int, height: int, width: int) -> int:
        """Peak bytes `score_clip` takes beyond the features it reads, for a clip whose pixel
        features are `frames` x `height` x `width` (its first request's input). Part of the
        memory contract (tests/run/test_memory_contract.py): the default allows a pair of frames as
        float64 planes at a time; a metric that holds more declares it."""
        return 64 * height * width + 64 * frames

    def bind_backbones(self, backbones: list) -> None:
        """Called once before scoring with the backbone serving each of `requests()`, in order.
        A metric that records the exact backbone it used (FVD: its cached real-set statistics are
        keyed by the backbone's identity hash) keeps what it needs; most need nothing."""

    def summary_weight(self) -> str | None:
        """The extra that weights each clip in the generator's mean (e.g. "n_pairs" for VBench's
        pooling of frame pairs across clips); None: the plain mean of clips."""
        return None

    def describe(self) -> dict:
        return {
            "name": self.name, "version": self.version, "higher_is_better": self.higher_is_better,
            "level": self.level, "backbone": self.backbone, "params": self.params.model_dump(),
            "failure_mode": self.failure_mode,
        }
