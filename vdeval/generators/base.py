"""The generator contract: given requests (prompt, seed, optional reference image), yield clips.

A clip depends only on its own request (one random generator per sample), never on what else
is in the batch. Each generator kind has a pydantic Config validated by the suite loader.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict

from vdeval.video import Video


class GeneratorConfig(BaseModel):
    """Fields every generator entry in a suite has; kinds subclass this with their own fields."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: str
    step: int | None = None  # training step of a checkpoint, for plots of metric against step


@dataclass
class ClipRequest:
    clip_id: str
    prompt: str
    seed: int
    reference_image: np.ndarray | None = None  # uint8 (H, W, 3) for image-to-video
    meta: dict = field(default_factory=dict)


@dataclass
class GeneratedClip:
    request: ClipRequest
    video: Video | None
    error: str | None = None  # one line; set when this clip failed and video is None
    meta: dict = field(default_factory=dict)


class Generator:
    """Base class. Subclasses set `kind` and `Config` and implement `generate`."""

    kind: ClassVar[str]
    Config: ClassVar[type[GeneratorConfig]] = GeneratorConfig

    def __init__(self, config: GeneratorConfig, suite_dir: str | None = None):
        self.config = config
        self.suite_dir = suite_dir

    @property
    def name(self) -> str:
        return self.config.name

    def info(self) -> dict:
        """Provenance for results: the config plus anything identifying (checkpoint hash, step)."""
        return {"kind": self.kind, **self.config.model_dump(exclude_none=True)}

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        raise NotImplementedError
