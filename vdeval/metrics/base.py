"""The metric contract.

A metric declares the features it needs (FeatureRequest list), whether higher is better, a
version, and its level: "clip" (a score per clip, summarised by mean and bootstrap CI) or "set"
(one score per generator, e.g. FVD against the suite's real set).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from vdeval.features import ClipFeatures, FeatureRequest


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


class Metric:
    name: ClassVar[str]
    version: ClassVar[str]
    higher_is_better: ClassVar[bool]
    level: ClassVar[str]  # "clip" or "set"
    default_backbone: ClassVar[str | None]
    allowed_backbones: ClassVar[tuple[str, ...] | None] = None  # None: any backbone providing the kinds
    # the published backbone used instead of a shapes-world default (embedded) on other footage;
    # None: this metric has no published backbone, so other footage needs a backbone named
    natural_backbone: ClassVar[str | None] = None
    failure_mode: ClassVar[str] = ""  # the generation failure this metric is meant to catch
    needs_real: ClassVar[bool] = False  # set-level metrics that compare with the suite's real set
    # frames a clip needs for a defined value: fewer give NaN with a note (2 for anything over time)
    min_frames: ClassVar[int] = 1
    # the world corruption `vdeval audit` checks this metric against (see vdeval/audit.py), or, for a
    # metric no world corruption can test, why not: one of the two is part of the metric contract
    audit_corruption: ClassVar[str | None] = None
    audit_exempt: ClassVar[str | None] = None
    Params: ClassVar[type[BaseModel]] = NoParams  # the metric's `params:` in a suite, validated


    def __init__(self, backbone: str | None = None, **params):
        self.backbone = backbone or self.default_backbone
        self.params = self.Params(**params)  # pydantic ValidationError on a bad suite entry

    def requests(self) -> list[FeatureRequest]:
        raise NotImplementedError

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        raise NotImplementedError(f"{self.name} is a set-level metric")

    def score_set(self, fake: list[ClipFeatures], real: list[ClipFeatures]) -> SetScore:
        raise NotImplementedError(f"{self.name} is a per-clip metric")

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
