"""Samplers for the reference models: text-to-video, image-to-video, continuation and long video.

Update rules come from diffusers' schedulers (no hand-written steps). Batch invariance: each
sample has its own torch.Generator; its initial noise and any per-step noise (DDPM, Euler) are
drawn from it alone, and the network runs on fixed-shape inputs (fixed caption length, no
batch-level statistics), so a clip is the same alone or in any batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

from reference_models.checkpoint import LoadedModel
from reference_models.data import to_tensor, to_uint8
from reference_models.tokenizer import CaptionTokenizer
from vdeval.errors import VdevalError

SAMPLERS = {
    "ddim": DDIMScheduler,
    "ddpm": DDPMScheduler,
    "euler": EulerDiscreteScheduler,
    "dpm": DPMSolverMultistepScheduler,
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def make_scheduler(name: str, diffusion: dict):
    """A fresh diffusers scheduler for the training noise schedule. 'trailing' spacing starts
    sampling at the last training timestep, i.e. from pure noise, whatever the step count."""
    if name not in SAMPLERS:
        raise VdevalError(f"unknown sampler {name!r}", f"choose one of {sorted(SAMPLERS)}")
    kwargs = dict(num_train_timesteps=diffusion["num_train_timesteps"], beta_schedule=diffusion["beta_schedule"],
                  prediction_type=diffusion["prediction_type"], timestep_spacing="trailing")
    if name in ("ddim", "ddpm"):
        kwargs["clip_sample"] = False
    return SAMPLERS[name](**kwargs)


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise VdevalError(f"unknown dtype {dtype!r}", f"choose one of {sorted(DTYPES)}")
    if dtype == "float16" and not str(device).startswith("cuda"):
        raise VdevalError("dtype float16 needs a CUDA device", "use float32 (or bfloat16) on CPU")
    return DTYPES[dtype]


@dataclass
class SamplerSettings:
    sampler: str = "ddim"
    steps: int = 25
    guidance_scale: float = 3.0
    dtype: str = "float32"
    invariant: bool = True  # run the network one sample at a time: bit-identical clips in any batch


class VideoSampler:
    """Runs a loaded reference model with one diffusers scheduler per call."""

    def __init__(self, loaded: LoadedModel, settings: SamplerSettings | None = None, device: str = "cpu"):
        self.loaded = loaded
        self.settings = settings or SamplerSettings()
        self.device = torch.device(device)
        self.dtype = resolve_dtype(self.settings.dtype, str(device))
        make_scheduler(self.settings.sampler, loaded.diffusion)  # fail early on a bad name
        if self.settings.steps < 1:
            raise VdevalError(f"steps must be at least 1, got {self.settings.steps}")
        self.model = loaded.model.to(self.device, self.dtype)
        self.tokenizer = CaptionTokenizer(loaded.model.cfg.max_tokens)
        spec = loaded.world
        self.frames, self.height, self.width = spec.frames, spec.height, spec.width
        self.fps = spec.fps
        # latent models denoise VAE latents and decode every frame on its own at the end
        self.vae = loaded.vae.to(self.device, torch.float32) if loaded.vae is not None else None
        if self.vae is not None:
            f = self.vae.cfg.downsample
            self.sample_shape = (self.vae.cfg.latent_channels, self.height // f, self.width // f)
        else:
            self.sample_shape = (3, self.height, self.width)

    # ---- inputs
    def tokens(self, captions: list[str | None]) -> torch.Tensor:
        return self.tokenizer(captions)

    def check_image(self, image: np.ndarray) -> None:
        a = np.asarray(image)
        if a.dtype != np.uint8 or a.shape != (self.height, self.width, 3):
            raise VdevalError(
                f"reference image is {a.dtype} {tuple(a.shape)}, the model needs uint8 ({self.height}, {self.width}, 3)",
                "resize the image to the checkpoint's world resolution",
            )

    # ---- core loop
    @torch.no_grad()
    def denoise(self, captions: list[str | None], generators: list[torch.Generator], frames: int,
                known: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Sample clips (B, T, 3, H, W) in [-1, 1]; `known`/`mask` fix frames (mask (B, T), 1 = known)."""
        b = len(captions)
        s = self.settings
        sched = make_scheduler(s.sampler, self.loaded.diffusion)
        sched.set_timesteps(s.steps, device=self.device)
        shape = (1, frames, *self.sample_shape)
        x = torch.cat([torch.randn(shape, generator=g, device=g.device).to(self.device) for g in generators])
        x = x * sched.init_noise_sigma
        if known is None:
            known = torch.zeros(b, frames, 3, self.height, self.width, device=self.device)
            mask = torch.zeros(b, frames, device=self.device)
        elif mask is None:
            raise ValueError("denoise: known frames need a mask saying which frames are known")
        known, mask = known.to(self.device, torch.float32), mask.to(self.device, torch.float32)
        pixels_known = known
        if self.vae is not None:
            known = self.vae.clip_to_latents(known)
        cond = self.tokens(captions).to(self.device)
        guided = s.guidance_scale != 1.0
        toks = torch.cat([cond, self.tokens([None] * b).to(self.device)]) if guided else cond
        reps = 2 if guided else 1
        kn, mk = known.repeat(reps, 1, 1, 1, 1).to(self.dtype), mask.repeat(reps, 1).to(self.dtype)
        vel = self._velocity(cond, reps)
        for t in sched.timesteps:
            inp = sched.scale_model_input(x, t).repeat(reps, 1, 1, 1, 1).to(self.dtype)
            tt = t.reshape(1).to(self.device).float().expand(b * reps)
            out = self._forward(inp, tt, toks, kn, mk, b, vel).float()
            if guided:
                c, u = out.chunk(2)
                out = u + s.guidance_scale * (c - u)
            x = sched.step(out, t, x, generator=list(generators)).prev_sample
        if self.vae is not None:
            x = self.vae.latents_to_clip(x)
        m = mask[:, :, None, None, None]
        return torch.where(m > 0, pixels_known, x).clamp(-1, 1)

    def _velocity(self, cond: torch.Tensor, reps: int) -> torch.Tensor | None:
        """Motion-aligned models: the caption's velocity, shared by the unconditional twin so that
        guidance sharpens what the caption says along one motion, not between two motions."""
        if not self.model.cfg.motion_aligned:
            return None
        rows = [self.model.velocity_of(cond[i:i + 1]) for i in range(cond.shape[0])]  # per sample: batch invariant
        return torch.cat(rows).repeat(reps, 1)

    def _forward(self, inp, tt, toks, kn, mk, b: int, vel=None) -> torch.Tensor:
        """The network on rows [i, b + i] (a sample and its unconditional twin) at a time when
        `invariant`: matrix kernels pick different blockings for different batch sizes, so only
        a fixed per-sample shape makes the result bit-identical whatever else is in the batch."""
        if not self.settings.invariant or b == 1:
            return self.model(inp, tt, toks, kn, mk, velocity=vel)
        reps = inp.shape[0] // b
        out = torch.empty_like(inp)
        for i in range(b):
            rows = torch.arange(reps, device=inp.device) * b + i
            out[rows] = self.model(inp[rows], tt[rows], toks[rows], kn[rows], mk[rows],
                                   velocity=vel[rows] if vel is not None else None)
        return out

    def _generators(self, seeds: list[int]) -> list[torch.Generator]:
        # CPU generators: the same seed gives the same clip on CPU and CUDA up to kernel numerics
        return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]

    # ---- tasks
    def text_to_video(self, captions: list[str | None], seeds: list[int]) -> np.ndarray:
        """uint8 (B, T, H, W, 3)."""
        return to_uint8(self.denoise(captions, self._generators(seeds), self.frames))

    def image_to_video(self, captions: list[str | None], images: list[np.ndarray], seeds: list[int]) -> np.ndarray:
        for im in images:
            self.check_image(im)
        known, mask = self._first_frames(images)
        return to_uint8(self.denoise(captions, self._generators(seeds), self.frames, known, mask))

    @torch.no_grad()
    def autoencode(self, clips: np.ndarray) -> np.ndarray:
        """uint8 (B, T, H, W, 3) -> the same clips encoded (posterior mean) and decoded frame by frame
        through the checkpoint's VAE: what per-frame decoding alone does, with no denoiser involved."""
        if self.vae is None:
            raise VdevalError("autoencode needs a latent checkpoint (with a VAE)", "use a latent checkpoint, e.g. shipped:latent")
        x = to_tensor(clips).to(self.device)
        return to_uint8(self.vae.latents_to_clip(self.vae.clip_to_latents(x)).clamp(-1, 1))

    def _first_frames(self, images: list[np.ndarray]):
        b = len(images)
        known = torch.zeros(b, self.frames, 3, self.height, self.width)
        known[:, 0] = to_tensor(np.stack(images)[:, None])[:, 0]
        mask = torch.zeros(b, self.frames)
        mask[:, 0] = 1
        return known, mask

    def long_video(self, captions: list[str | None], seeds: list[int], num_frames: int, window: int | None = None,
                   overlap: int = 2, images: list[np.ndarray] | None = None) -> np.ndarray:
        """Sliding windows: each new window keeps the previous window's last `overlap` frames as its
        first, known frames. The first window is text-to-video, or image-to-video when images are given."""
        window = window or self.frames
        if not 1 <= overlap < window:
            raise VdevalError(f"overlap {overlap} must be at least 1 and less than the window {window}")
        if window > self.loaded.model.cfg.max_frames:
            raise VdevalError(f"window {window} exceeds the model's {self.loaded.model.cfg.max_frames} frames")
        if num_frames < 1:
            raise VdevalError(f"num_frames must be at least 1, got {num_frames}")
        gens = self._generators(seeds)
        b = len(captions)
        known = torch.zeros(b, window, 3, self.height, self.width)
        mask = torch.zeros(b, window)
        if images is not None:
            for im in images:
                self.check_image(im)
            known[:, 0] = to_tensor(np.stack(images)[:, None])[:, 0]
            mask[:, 0] = 1
        clip = self.denoise(captions, gens, window, known, mask)
        while clip.shape[1] < num_frames:
            known = torch.zeros(b, window, 3, self.height, self.width)
            known[:, :overlap] = clip[:, -overlap:]
            mask = torch.zeros(b, window)
            mask[:, :overlap] = 1
            nxt = self.denoise(captions, gens, window, known, mask)
            clip = torch.cat([clip, nxt[:, overlap:]], dim=1)
        return to_uint8(clip[:, :num_frames])
