"""The generator contract: given requests (prompt, seed, optional reference image), yield clips.

A clip depends only on its own request (one random generator per sample), never on what else
is in the batch. Each generator kind has a pydantic Config validated by the suite loader.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from vdeval.errors import VdevalError
from vdeval.video import Video

# Whether generators may run code that comes with a model (diffusers' custom_pipeline /
# trust_remote_code). Only a person decides this, on the command line (`--allow-remote-code`)
# or in Python (`with allow_remote_code(): ...`); a suite file is data and never can.
_REMOTE_CODE = contextvars.ContextVar("vdeval_allow_remote_code", default=False)


def remote_code_allowed() -> bool:
    return _REMOTE_CODE.get()


@contextlib.contextmanager
def allow_remote_code(allowed: bool = True):
    """Within this block, suites may name generators that run code shipped with a model."""
    token = _REMOTE_CODE.set(bool(allowed))
    try:
        yield
    finally:
        _REMOTE_CODE.reset(token)


class GeneratorSetupError(VdevalError):
    """A generator that cannot work at all (missing model, wrong class, bad arguments): the run
    stops before any clip, instead of failing every clip one by one."""


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


C = TypeVar("C", bound=GeneratorConfig)


class Generator(Generic[C]):
    """Base class. Subclasses set `kind` and `Config` and implement `generate`; generic over their
    Config (`class FolderGenerator(Generator[FolderConfig])`), so `self.config` is typed."""

    kind: ClassVar[str]
    Config: ClassVar[type[GeneratorConfig]] = GeneratorConfig
    # the constructor takes `world=` (the suite's WorldSettings: size, frames, fps of world clips)
    takes_world: ClassVar[bool] = False
    # clips are stored in the run directory; False: referenced by path and content hash (folders)
    stores_frames: ClassVar[bool] = True

    def __init__(self, config: C, suite_dir: str | None = None):
        self.config: C = config
        self.suite_dir = suite_dir

    @property
    def name(self) -> str:
        return self.config.name

    def info(self) -> dict:
        """Provenance for results: the config plus anything identifying (checkpoint hash, step)."""
        return {"kind": self.kind, **self.config.model_dump(exclude_none=True)}

    def prepare(self, device: str = "cpu") -> None:
        """Check what can be checked before any work (files, device, arguments); raise
        GeneratorSetupError. The runner calls it once per run, before generating."""

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        raise NotImplementedError
