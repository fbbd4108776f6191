"""Kind `world`: clips of the shapes world, optionally corrupted — the ground-truth "model"."""
from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict, Field

from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig
from vdeval.world import render_scene, sample_clip, scene_from_caption
from vdeval.world.corruptions import CORRUPTIONS, corrupt
from vdeval.world.settings import WorldSettings


class Corruption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    severity: float = Field(0.5, ge=0, le=1)


class WorldGeneratorConfig(GeneratorConfig):
    corruption: Corruption | None = None
    world: WorldSettings | None = None  # overrides the suite's world section


def world_clip_for(request: ClipRequest, spec):
    """The world clip a request describes: the very clip that made a world prompt (first sample),
    else a clip matching the caption, placed by the request's seed."""
    world_seed = request.meta.get("world_seed")
    if world_seed is not None and request.meta.get("sample", 0) == 0:
        return sample_clip(world_seed, spec)
    return render_scene(scene_from_caption(request.prompt, request.seed, spec), spec, seed=request.seed)


class WorldGenerator(Generator[WorldGeneratorConfig]):
    """Renders the world clip a prompt describes. When the prompt came from the world prompt
    source (the request carries its `world_seed`) and this is the first sample, the very clip that
    made the prompt is rendered; otherwise a clip matching the caption, placed by the seed."""

    kind = "world"
    Config = WorldGeneratorConfig
    takes_world = True  # the suite's world section sets size, frames and fps

    def __init__(self, config: WorldGeneratorConfig, suite_dir=None, world: WorldSettings | None = None):
        super().__init__(config, suite_dir)
        if config.corruption and config.corruption.name not in CORRUPTIONS:
            corrupt(sample_clip(0), config.corruption.name, 0.0)  # raises with "did you mean"
        self.spec = (config.world or world or WorldSettings()).spec()

    def make(self, request: ClipRequest):
        clip = world_clip_for(request, self.spec)
        if self.config.corruption:
            return clip, corrupt(clip, self.config.corruption.name, self.config.corruption.severity, request.seed)
        return clip, clip.video

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        for r in requests:
            try:
                _, video = self.make(r)
            except VdevalError as e:
                yield GeneratedClip(r, None, error=str(e))
                continue
            yield GeneratedClip(r, video)
