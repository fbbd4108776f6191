"""A small frame-wise VAE for the latent reference model: 32x32x3 frames <-> 8x8x4 latents.

Latent video diffusion (the primer's central architecture) denoises in a VAE's latent space and
decodes every frame on its own. This VAE is deliberately frame-wise, like the image VAEs most
latent video models reuse: nothing ties the decoding of frame t to frame t+1, so small latent
differences become pixel flicker and texture that swims — the failure the latent suite measures.

Train:  python -m reference_models.train_vae --out reference_models/runs/vae
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from reference_models.network import JsonConfig
from vdeval.errors import CheckpointError


@dataclass
class VAEConfig(JsonConfig):
    latent_channels: int = 4
    channels: tuple[int, int] = (24, 48)  # width at full and at 1/2, 1/4 resolution
    downsample: int = 4  # spatial factor: 32x32 frames -> 8x8 latents
    scale: float = 1.0  # multiplies the latent mean so diffusion sees unit variance (set after training)


class _Res(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)
        self.n2, self.c2 = nn.GroupNorm(8, c), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.silu(self.n2(self.c1(F.silu(self.n1(x))))))


class FrameVAE(nn.Module):
    """encode(frames (N, 3, H, W) in [-1, 1]) -> (mean, logvar) (N, z, H/4, W/4); decode(z) -> frames."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        if cfg.downsample != 4:
            raise CheckpointError(f"VAE downsample {cfg.downsample} is not supported", "use downsample 4")
        self.cfg = cfg
        c1, c2 = cfg.channels
        z = cfg.latent_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), _Res(c1),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), _Res(c2),
            nn.Conv2d(c2, c2, 3, stride=2, padding=1), _Res(c2), _Res(c2),
            nn.GroupNorm(8, c2), nn.SiLU(), nn.Conv2d(c2, 2 * z, 3, padding=1))
        self.decoder = nn.Sequential(
            nn.Conv2d(z, c2, 3, padding=1), _Res(c2), _Res(c2),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c2, 3, padding=1), _Res(c2),
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c2, c1, 3, padding=1), _Res(c1),
            nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, 3, 3, padding=1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        return mean, logvar.clamp(-30, 20)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    # ---- clip helpers for diffusion: (B, T, C, H, W) in and out, latents scaled to unit variance
    def clip_to_latents(self, clip: torch.Tensor) -> torch.Tensor:
        b, t = clip.shape[:2]
        mean, _ = self.encode(clip.reshape(b * t, *clip.shape[2:]))
        return (mean * self.cfg.scale).reshape(b, t, *mean.shape[1:])

    def latents_to_clip(self, z: torch.Tensor) -> torch.Tensor:
        b, t = z.shape[:2]
        frames = self.decode(z.reshape(b * t, *z.shape[2:]) / self.cfg.scale)  # each frame on its own
        return frames.reshape(b, t, *frames.shape[1:])


def vae_loss(vae: FrameVAE, x: torch.Tensor, generator: torch.Generator, kl_weight: float) -> tuple[torch.Tensor, dict]:
    """L1 + MSE reconstruction of a sampled latent, plus a small KL to N(0, 1) that keeps latents tame."""
    mean, logvar = vae.encode(x)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=generator)
    rec = vae.decode(z)
    l1, mse = (rec - x).abs().mean(), ((rec - x) ** 2).mean()
    kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).mean()
    return l1 + mse + kl_weight * kl, {"l1": l1.item(), "mse": mse.item(), "kl": kl.item()}
