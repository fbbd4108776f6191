"""The `world:` section of a suite (and of a world generator): the shapes world's size, length and
vocabulary as validated data, turned into a WorldSpec for rendering.

It lives with the world, not in suite.py, so that generators and the suite both read it from below.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vdeval.limits import Fps
from vdeval.world.scene import WorldSpec

# Limits: a typo (an extra zero) must be refused in `validate`, not found by the OOM killer.
MAX_SIDE = 1024
MAX_FRAMES = 1024


class WorldSettings(BaseModel):
    """The shapes world used for world prompts, world generators and world real sets."""

    model_config = ConfigDict(extra="forbid")

    height: int = Field(32, ge=8, le=MAX_SIDE)
    width: int = Field(32, ge=8, le=MAX_SIDE)
    frames: int = Field(8, ge=1, le=MAX_FRAMES)
    fps: Fps = 8.0
    min_objects: int = Field(1, ge=1, le=2)
    max_objects: int = Field(1, ge=1, le=2)
    shapes: list[str] | None = None
    colors: list[str] | None = None
    sizes: list[str] | None = None
    motions: list[str] | None = None
    speeds: list[str] | None = None
    backgrounds: list[str] | None = None
    pan_probability: float = Field(0.0, ge=0, le=1)

    def spec(self) -> WorldSpec:
        d: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in self.model_dump().items() if v is not None}
        return WorldSpec(**d)
