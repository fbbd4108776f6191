"""A small factorized space-time denoiser for video diffusion on the shapes world (pixels or VAE latents).

Input per sample: a noisy clip, a diffusion timestep, caption tokens, and a frame-conditioning
mask with the known frames. No frame known = text-to-video; frame 0 known = image-to-video;
the first k frames known = continuation. Known frames enter clean as extra channels
(noisy clip | known clip | mask), and the model input at known positions is the clean frame too.

Layout inside: frames are folded into the batch for spatial layers, (B*T, C, H, W); temporal
layers unfold them to mix information across frames at each pixel. With `temporal=False`
(the ablation) every temporal layer is absent, so each frame is denoised on its own. With
`motion_aligned=True` each temporal layer works along the caption's velocity (MotionAlignment).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from vdeval.errors import CheckpointError


@dataclass
class JsonConfig:
    """Mixin for architecture dataclasses stored in config.json: `channels` is a JSON list, and
    unknown fields (a checkpoint from another version) are one clear CheckpointError. A dataclass
    without fields of its own, so asdict and fields apply."""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(d["channels"])
        return d

    @classmethod
    def from_dict(cls, d: dict):
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise CheckpointError(f"{cls.__name__} has unknown fields {unknown}",
                                  "the checkpoint was written by another version of reference_models")
        d = dict(d)
        if "channels" in d:
            d["channels"] = tuple(d["channels"])
        return cls(**d)


@dataclass
class NetConfig(JsonConfig):
    vocab_size: int = 41
    max_tokens: int = 32
    channels: tuple[int, int] = (64, 128)  # width at 1/2 and 1/4 of the input resolution
    text_dim: int = 128
    heads: int = 4
    max_frames: int = 32  # longest window temporal attention has a position for
    temporal: bool = True  # False = ablation: no temporal layers at all
    in_channels: int = 3
    # motion conditioning (v2 models; off in the first shipped checkpoints, whose configs lack them):
    space_time: bool = False  # a full space-time attention layer at 1/4 resolution
    frame_film: bool = False  # each frame's FiLM also sees (caption summary, frame index)
    patch: int = 2  # pixel-unshuffle factor at the input (1 for latents, already 4x smaller than frames)
    motion_aligned: bool = False  # temporal layers work along the caption's velocity (see MotionAlignment)


VELOCITY_SCALE = 16.0  # the velocity head predicts frame-fractions per frame x 16, so targets are O(1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(8, c)


class ResBlock(nn.Module):
    """Per-frame 2D residual block; the timestep enters as scale and shift (FiLM)."""

    def __init__(self, cin: int, cout: int, emb_dim: int):
        super().__init__()
        self.n1, self.c1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.n2, self.c2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):  # x (N, C, H, W), emb (N, D)
        h = self.c1(F.silu(self.n1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.n2(h) * (1 + scale) + shift
        h = self.c2(F.silu(h))
        return self.skip(x) + h


def _attend(q, k, v, heads: int, key_mask=None):
    """(N, Lq, C) x (N, Lk, C) multi-head attention; key_mask (N, Lk) bool, True = attend."""
    n, lq, c = q.shape
    lk = k.shape[1]
    q = q.view(n, lq, heads, c // heads).transpose(1, 2)
    k = k.view(n, lk, heads, c // heads).transpose(1, 2)
    v = v.view(n, lk, heads, c // heads).transpose(1, 2)
    mask = key_mask[:, None, None, :] if key_mask is not None else None
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(n, lq, c)


class SpatialAttention(nn.Module):
    """Self-attention among the pixels of one frame."""

    def __init__(self, c: int, heads: int):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = _norm(c), nn.Linear(c, 3 * c), nn.Linear(c, c), heads

    def forward(self, x):
        n, c, h, w = x.shape
        tok = self.norm(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(tok).chunk(3, dim=-1)
        o = self.out(_attend(q, k, v, self.heads))
        return x + o.transpose(1, 2).reshape(n, c, h, w)


class CrossAttention(nn.Module):
    """Pixels of each frame attend to the caption tokens."""

    def __init__(self, c: int, text_dim: int, heads: int):
        super().__init__()
        self.norm, self.q = _norm(c), nn.Linear(c, c)
        self.kv, self.out, self.heads = nn.Linear(text_dim, 2 * c), nn.Linear(c, c), heads

    def forward(self, x, text, text_mask):  # text (N, L, D) already repeated per frame
        n, c, h, w = x.shape
        tok = self.norm(x).flatten(2).transpose(1, 2)
        k, v = self.kv(text).chunk(2, dim=-1)
        o = self.out(_attend(self.q(tok), k, v, self.heads, text_mask))
        return x + o.transpose(1, 2).reshape(n, c, h, w)


class TemporalConv(nn.Module):
    """1D convolution across frames at every pixel (kernel 3, zero padded at clip ends)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.conv = _norm(c), nn.Conv1d(c, c, 3, padding=1)

    def forward(self, x, frames: int):
        nt, c, h, w = x.shape
        b = nt // frames
        y = F.silu(self.norm(x)).view(b, frames, c, h, w).permute(0, 3, 4, 2, 1).reshape(b * h * w, c, frames)
        y = self.conv(y).view(b, h, w, c, frames).permute(0, 4, 3, 1, 2).reshape(nt, c, h, w)
        return x + y


class TemporalAttention(nn.Module):
    """Self-attention across frames at every pixel, with a learned frame-position embedding."""

    def __init__(self, c: int, heads: int, max_frames: int):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = _norm(c), nn.Linear(c, 3 * c), nn.Linear(c, c), heads
        self.pos = nn.Parameter(torch.zeros(max_frames, c))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x, frames: int):
        nt, c, h, w = x.shape
        b = nt // frames
        tok = self.norm(x).view(b, frames, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, frames, c)
        tok = tok + self.pos[:frames]
        q, k, v = self.qkv(tok).chunk(3, dim=-1)
        o = self.out(_attend(q, k, v, self.heads))
        o = o.view(b, h * w, frames, c).permute(0, 2, 3, 1).reshape(nt, c, h, w)
        return x + o


def rope_3d(frames: int, h: int, w: int, dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (L, dim/2) of rotary embeddings over (frame, row, column), a third of dim each.

    Rotary phases make a query-key score depend on the *offset* between two tokens, and the query's
    content picks which offset it prefers: "the object in frame t sits v*t from frame 0" is then one
    attention hop. Frequencies 1, 1/2, 1/4, ... cover offsets up to a 16-cell side.
    """
    per_axis = dim // 6  # rotation pairs per axis
    freqs = 0.5 ** torch.arange(per_axis, device=device, dtype=torch.float32)
    grid = torch.stack(torch.meshgrid(torch.arange(frames, device=device), torch.arange(h, device=device),
                                      torch.arange(w, device=device), indexing="ij"), -1).reshape(-1, 3).float()
    angles = (grid[:, :, None] * freqs).reshape(grid.shape[0], -1)  # (L, 3 * per_axis)
    return torch.cos(angles), torch.sin(angles)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first 2*len(cos) channels of each head (x: N, heads, L, d) in pairs; the rest pass through."""
    n = cos.shape[-1]
    a, b, rest = x[..., :2 * n:2], x[..., 1:2 * n:2], x[..., 2 * n:]
    rot = torch.stack([a * cos - b * sin, a * sin + b * cos], -1).flatten(-2)
    return torch.cat([rot, rest], -1)


class SpaceTimeAttention(nn.Module):
    """Self-attention over every (frame, pixel) of a clip at once, with 3-D rotary positions.

    Per-pixel temporal layers cannot move content across pixels, so on their own they cannot draw an
    object displaced by v*t in frame t; here a token at (t, y, x) can attend to (0, y - vy*t, x - vx*t).
    """

    def __init__(self, c: int, heads: int):
        super().__init__()
        self.norm, self.qkv, self.out, self.heads = _norm(c), nn.Linear(c, 3 * c), nn.Linear(c, c), heads

    def forward(self, x, frames: int):
        nt, c, h, w = x.shape
        b, d = nt // frames, c // self.heads
        tok = self.norm(x).view(b, frames, c, h * w).permute(0, 1, 3, 2).reshape(b, frames * h * w, c)
        q, k, v = (z.view(b, -1, self.heads, d).transpose(1, 2) for z in self.qkv(tok).chunk(3, dim=-1))
        cos, sin = rope_3d(frames, h, w, d, x.device)
        q, k = _rotate(q, cos.to(q.dtype), sin.to(q.dtype)), _rotate(k, cos.to(k.dtype), sin.to(k.dtype))
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, frames * h * w, c)
        o = self.out(o).view(b, frames, h * w, c).permute(0, 1, 3, 2).reshape(nt, c, h, w)
        return x + o


def translate(x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """out(p) = x(p + offset) per image, bilinear, zero outside; x (N, C, H, W), offset (N, 2) as
    (dx, dy) in normalised units (2 = the frame's width / height), so it holds at every resolution."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = offset.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class MotionAlignment:
    """Runs a residual temporal layer in the frame that moves with velocity v.

    Per-pixel temporal layers tie pixel p of frame t to pixel p of every other frame, which is what
    a still object needs: the shipped v1 models keep still objects still on 100% of captions and
    pick a direction at chance. Here frame t is first translated by -v*t (an object moving at v
    stands still), the layer's update is computed there and translated back by +v*t, so the same
    layers now tie p in frame 0 to p + v*t in frame t. v is the caption's velocity (frame fractions
    per frame) from the denoiser's velocity head, or the true one during training.
    """

    def __init__(self, velocity: torch.Tensor, frames: int):
        t = torch.arange(frames, device=velocity.device, dtype=velocity.dtype)
        # normalised offset of frame t: 2 units = one frame width, so 2 * v * t
        self.offset = (2 * velocity[:, None, :] * t[None, :, None]).reshape(-1, 2)

    def __call__(self, layer: nn.Module, x: torch.Tensor, frames: int) -> torch.Tensor:
        aligned = translate(x, self.offset)
        return x + translate(layer(aligned, frames) - aligned, -self.offset)


class TextEncoder(nn.Module):
    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.vocab_size, cfg.text_dim)
        self.pos = nn.Parameter(torch.randn(cfg.max_tokens, cfg.text_dim) * 0.02)
        self.layer = nn.TransformerEncoderLayer(cfg.text_dim, cfg.heads, 2 * cfg.text_dim, dropout=0.0,
                                                batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(cfg.text_dim)

    def forward(self, tokens):  # (B, L) -> (B, L, D), key mask (B, L) True = real token
        mask = tokens != 0
        h = self.embed(tokens) + self.pos[: tokens.shape[1]]
        # explicit float mask instead of src_key_padding_mask: the fused fast path changes numerics by batch
        bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device).masked_fill(~mask, float("-inf"))
        bias = bias[:, None, None, :].expand(-1, self.layer.self_attn.num_heads, tokens.shape[1], -1)
        bias = bias.reshape(-1, tokens.shape[1], tokens.shape[1])
        h = self.layer(h, src_mask=bias)
        return self.norm(h), mask


class VideoDenoiser(nn.Module):
    """forward(x_t, t, tokens, known, mask) -> prediction (v or eps), all clips as (B, T, C, H, W) in [-1, 1].

    known: (B, T, C, H, W) clean frames (anything where mask is 0); mask: (B, T) float, 1 = frame known.
    """

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2 = cfg.channels
        emb = 4 * c1
        self.time_mlp = nn.Sequential(nn.Linear(c1, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.text = TextEncoder(cfg)
        self.text_pool = nn.Linear(cfg.text_dim, emb)  # caption summary also modulates every block
        cin = (2 * cfg.in_channels + 1) * cfg.patch ** 2  # pixel-unshuffled noisy | known | mask
        self.inp = nn.Conv2d(cin, c1, 3, padding=1)
        self.d1 = ResBlock(c1, c1, emb)
        self.down = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.m1 = ResBlock(c2, c2, emb)
        self.sa = SpatialAttention(c2, cfg.heads)
        self.ca = CrossAttention(c2, cfg.text_dim, cfg.heads)
        self.m2 = ResBlock(c2, c2, emb)
        self.ca2 = CrossAttention(c2, cfg.text_dim, cfg.heads)
        self.up = nn.Conv2d(c2, c1, 3, padding=1)
        self.u1 = ResBlock(2 * c1, c1, emb)
        self.u2 = ResBlock(c1, c1, emb)
        self.out_norm = _norm(c1)
        self.out = nn.Conv2d(c1, cfg.in_channels * cfg.patch ** 2, 3, padding=1)
        if cfg.temporal:
            self.t_d1 = TemporalConv(c1)
            self.t_m1 = TemporalAttention(c2, cfg.heads, cfg.max_frames)
            self.t_m2 = TemporalAttention(c2, cfg.heads, cfg.max_frames)
            self.t_u1 = TemporalConv(c1)
            self.t_u2 = TemporalConv(c1)
            if cfg.space_time:
                self.st = SpaceTimeAttention(c2, cfg.heads)
        if cfg.frame_film:
            # per-frame modulation from (caption summary, frame index): lets frame t's blocks know
            # both "which way" and "how far along", which a clip-wide embedding cannot say
            self.frame_mlp = nn.Sequential(nn.Linear(cfg.text_dim + c1, emb), nn.SiLU(), nn.Linear(emb, emb))
        if cfg.motion_aligned:
            if not cfg.temporal:
                raise ValueError("motion_aligned needs temporal layers")
            self.velocity_head = nn.Sequential(nn.Linear(cfg.text_dim, cfg.text_dim), nn.SiLU(), nn.Linear(cfg.text_dim, 2))

    def _temporal(self, name: str, x, frames: int, align: MotionAlignment | None = None):
        if not self.cfg.temporal:
            return x
        return align(getattr(self, name), x, frames) if align is not None else getattr(self, name)(x, frames)

    def _encode_text(self, tokens):
        text, text_mask = self.text(tokens)
        pooled = (text * text_mask[..., None]).sum(1) / text_mask.sum(1, keepdim=True).clamp(min=1)
        return text, text_mask, pooled

    def velocity_of(self, tokens) -> torch.Tensor:
        """(B, 2) on-screen velocity the caption asks for, in frame widths/heights per frame."""
        return self._velocity_from(self._encode_text(tokens)[2])

    def _velocity_from(self, pooled) -> torch.Tensor:
        return self.velocity_head(pooled) / VELOCITY_SCALE

    def forward(self, x_t, t, tokens, known=None, mask=None, velocity=None):
        """velocity (B, 2): only for motion-aligned models; None = the velocity head's reading of the caption."""
        b, frames, c, h, w = x_t.shape
        if h % (2 * self.cfg.patch) or w % (2 * self.cfg.patch):
            raise ValueError(f"height and width must be multiples of {2 * self.cfg.patch}, got {h}x{w}")
        if frames > self.cfg.max_frames:
            raise ValueError(f"{frames} frames is more than the model's max_frames={self.cfg.max_frames}")
        if known is None:
            known = torch.zeros_like(x_t)
        if mask is None:
            mask = torch.zeros(b, frames, device=x_t.device, dtype=x_t.dtype)
        m = mask.to(x_t.dtype)[:, :, None, None, None]
        x_in = torch.where(m > 0, known, x_t)  # known frames enter clean
        feats = torch.cat([x_in, known * m, m.expand(b, frames, 1, h, w)], dim=2).reshape(b * frames, -1, h, w)
        feats = F.pixel_unshuffle(feats, self.cfg.patch)

        text, text_mask, pooled = self._encode_text(tokens)
        align = None
        if self.cfg.motion_aligned:
            if velocity is None:
                velocity = self._velocity_from(pooled)
            align = MotionAlignment(velocity.to(x_t.dtype), frames)
        t_emb = timestep_embedding(t.reshape(-1).expand(b) if t.numel() == 1 else t, self.cfg.channels[0])
        emb = self.time_mlp(t_emb.to(x_t.dtype))  # half-precision models take half-precision embeddings
        emb = emb + self.text_pool(pooled)
        emb = emb.repeat_interleave(frames, dim=0)
        if self.cfg.frame_film:
            idx = timestep_embedding(torch.arange(frames, device=x_t.device) * 100, self.cfg.channels[0])
            per_frame = torch.cat([pooled[:, None].expand(b, frames, -1), idx[None].expand(b, -1, -1).to(pooled.dtype)], -1)
            emb = emb + self.frame_mlp(per_frame.reshape(b * frames, -1).to(emb.dtype))
        text_f = text.repeat_interleave(frames, dim=0)
        mask_f = text_mask.repeat_interleave(frames, dim=0)

        h1 = self.inp(feats)
        h1 = self._temporal("t_d1", self.d1(h1, emb), frames, align)
        h2 = self.down(h1)
        h2 = self._temporal("t_m1", self.m1(h2, emb), frames, align)
        h2 = self.ca(self.sa(h2), text_f, mask_f)
        h2 = self._temporal("t_m2", self.m2(h2, emb), frames, align)
        if self.cfg.temporal and self.cfg.space_time:
            h2 = self.st(h2, frames)
        h2 = self.ca2(h2, text_f, mask_f)
        u = self.up(F.interpolate(h2, scale_factor=2, mode="nearest"))
        u = self._temporal("t_u1", self.u1(torch.cat([u, h1], dim=1), emb), frames, align)
        u = self._temporal("t_u2", self.u2(u, emb), frames, align)
        out = self.out(F.silu(self.out_norm(u)))
        return F.pixel_shuffle(out, self.cfg.patch).view(b, frames, c, h, w)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
