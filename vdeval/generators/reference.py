"""Kind `reference`: the toolkit's own small video diffusion models (reference_models/), sampled offline.

    - {name: final, kind: reference, checkpoint: "shipped:final", task: t2v, sampler: dpm, steps: 20}
    - {name: i2v, kind: reference, checkpoint: "shipped:final", task: i2v}
    - {name: long, kind: reference, checkpoint: "shipped:final", task: long, num_frames: 24, overlap: 2}
    - {name: vae, kind: reference, checkpoint: "shipped:latent", task: autoencode}

Task `autoencode` (latent checkpoints only) samples nothing: it renders the world clip the prompt
describes (as kind `world` does, in the checkpoint's world) and passes every frame on its own
through the checkpoint's VAE, encoder mean then decoder. Against kind `world` on the same prompts it
isolates what per-frame decoding does to a clip, with no denoiser error mixed in.

`checkpoint` is `shipped:NAME` (reference_models/checkpoints/NAME), an absolute path, or a path
relative to the suite's directory, then to the repository / package.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field, field_validator

from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig, GeneratorSetupError
from vdeval.generators.world import world_clip_for
from vdeval.video import Video

if TYPE_CHECKING:
    from reference_models.sampling import VideoSampler

SAMPLER_NAMES = ("ddim", "ddpm", "euler", "dpm")


class ReferenceConfig(GeneratorConfig):
    checkpoint: str = "shipped:final"
    task: Literal["t2v", "i2v", "long", "autoencode"] = "t2v"
    sampler: str = "dpm"
    steps: int = Field(20, ge=1, le=1000)
    guidance_scale: float = Field(3.0, ge=0)
    num_frames: int | None = Field(None, ge=1)  # long: total frames (default: two windows' worth)
    window: int | None = Field(None, ge=2)  # long: frames per window (default: the checkpoint's clip length)
    overlap: int = Field(2, ge=1)  # long: frames carried into the next window as known frames
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(8, ge=1)

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, v: str) -> str:
        if v not in SAMPLER_NAMES:
            raise ValueError(f"unknown sampler {v!r}; choose one of {list(SAMPLER_NAMES)}")
        return v


class ReferenceGenerator(Generator[ReferenceConfig]):
    kind = "reference"
    Config = ReferenceConfig

    def __init__(self, config: ReferenceConfig, suite_dir: str | None = None):
        super().__init__(config, suite_dir)
        self._sampler: VideoSampler | None = None
        self._device: str | None = None

    def prepare(self, device: str = "cpu") -> None:
        """The checkpoint is there (found, with its weights and config) before any clip is made."""
        # reference_models imports torch: only a run or `vdeval validate --deep` gets here
        from reference_models.checkpoint import resolve_checkpoint

        path = resolve_checkpoint(self.config.checkpoint, [self.suite_dir] if self.suite_dir else [])
        folder = path if path.is_dir() else path.parent
        missing = [f for f in ("model.safetensors", "config.json") if not (folder / f).is_file()]
        if missing:
            raise GeneratorSetupError(f"generator {self.config.name}: checkpoint {folder} has no {' or '.join(missing)}",
                                      "give a checkpoint directory with model.safetensors and config.json")
        if self.config.task == "autoencode" and not (folder / "vae.safetensors").is_file():
            raise GeneratorSetupError(f"generator {self.config.name}: task autoencode needs a latent checkpoint and "
                                      f"{folder} has no vae.safetensors", "use a latent checkpoint, e.g. shipped:latent")

    def _load(self, device: str) -> VideoSampler:
        if self._sampler is None or self._device != device:
            from reference_models.checkpoint import load_checkpoint
            from reference_models.sampling import SamplerSettings, VideoSampler

            c = self.config
            loaded = load_checkpoint(c.checkpoint, [self.suite_dir] if self.suite_dir else [], device="cpu")
            self._sampler = VideoSampler(loaded, SamplerSettings(c.sampler, c.steps, c.guidance_scale, c.dtype), device)
            self._device = device
        return self._sampler

    def info(self) -> dict:
        s = self._load(self._device or "cpu")
        lm = s.loaded
        return {**super().info(), "checkpoint_path": str(lm.path), "checkpoint_sha256": lm.sha256,
                "training_step": lm.step, "architecture": lm.config["architecture"],
                "model_name": lm.config.get("name"),
                **({"latent": True, "vae_sha256": lm.vae_sha256} if lm.vae is not None else {})}

    def _check(self, s, r: ClipRequest) -> None:
        s.tokenizer.encode(r.prompt)
        if self.config.task == "i2v":
            if r.reference_image is None:
                raise VdevalError("image-to-video needs a reference image and this request has none",
                                  "use prompts with images (prompts: {source: world}) or task: t2v")
            s.check_image(r.reference_image)

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        s = self._load(device)
        c = self.config
        meta = {"training_step": s.loaded.step, "sampler": c.sampler, "steps": c.steps,
                "guidance_scale": c.guidance_scale, "task": c.task}
        for start in range(0, len(requests), c.batch_size):
            chunk = requests[start:start + c.batch_size]
            errors: dict[int, str] = {}
            for i, r in enumerate(chunk):
                try:
                    self._check(s, r)
                except VdevalError as e:
                    errors[i] = str(e)
            ok = [r for i, r in enumerate(chunk) if i not in errors]
            videos = iter(self._sample(s, ok) if ok else [])
            for i, r in enumerate(chunk):
                if i in errors:
                    yield GeneratedClip(r, None, error=errors[i])
                else:
                    yield GeneratedClip(r, Video(next(videos), s.fps), meta=dict(meta))

    def _sample(self, s, reqs: list[ClipRequest]):
        c = self.config
        prompts, seeds = [r.prompt for r in reqs], [r.seed for r in reqs]
        if c.task == "t2v":
            return list(s.text_to_video(prompts, seeds))
        if c.task == "i2v":
            return list(s.image_to_video(prompts, [r.reference_image for r in reqs], seeds))
        if c.task == "autoencode":
            return list(s.autoencode(np.stack([world_clip_for(r, s.loaded.world).video.frames for r in reqs])))
        window = c.window or s.frames
        return list(s.long_video(prompts, seeds, c.num_frames or 2 * window, window, c.overlap))
