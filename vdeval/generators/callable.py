"""Kind `callable`: clips made by a Python function of this process (the training-loop Evaluator,
the Python API). The suite names the function by a key that `register` returned, so the suite
stays pure data; the function itself never enters results or hashes.

The function takes (prompts: list[str], seeds: list[int]) and returns one video per pair: a
vdeval Video, or an array / tensor that `vdeval.video.core.as_video` accepts ((T, H, W, C) or
(T, C, H, W), uint8 or floats in [0, 1]). It must make each clip from its own seed alone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from pydantic import Field

from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig
from vdeval.video import Video
from vdeval.video.core import as_video

_FUNCTIONS: dict[str, Callable] = {}


def register(key: str, fn: Callable) -> str:
    """Make `fn` available to suites as {kind: callable, target: key}; returns key."""
    if not callable(fn):
        raise VdevalError(f"callable generator {key!r}: {type(fn).__name__} is not callable",
                          "pass a function taking (prompts, seeds) and returning one video per prompt")
    _FUNCTIONS[key] = fn
    return key


def unregister(key: str) -> None:
    _FUNCTIONS.pop(key, None)


class CallableConfig(GeneratorConfig):
    target: str  # the key `register` was given
    fps: float = Field(8.0, gt=0)  # frame rate of returned arrays (a returned Video keeps its own)


class CallableGenerator(Generator[CallableConfig]):
    kind = "callable"
    Config = CallableConfig

    def info(self) -> dict:
        return {"kind": self.kind, **self.config.model_dump(exclude_none=True, exclude={"target"})}

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        fn = _FUNCTIONS.get(self.config.target)
        if fn is None:
            raise VdevalError(f"generator {self.name!r}: no Python function is registered as {self.config.target!r}",
                              "kind `callable` is for vdeval.Evaluator and the Python API, not suite files")
        import torch

        with torch.no_grad():  # sampling for evaluation never needs gradients (this may run on another thread)
            videos = list(fn([r.prompt for r in requests], [r.seed for r in requests]))
        if len(videos) != len(requests):
            raise VdevalError(f"generator {self.name!r}: the function returned {len(videos)} videos for "
                              f"{len(requests)} prompts", "return one video per (prompt, seed)")
        for r, v in zip(requests, videos):
            video = v if isinstance(v, Video) else as_video(v, self.config.fps, source=f"{self.name} {r.clip_id}")
            yield GeneratedClip(r, video)
