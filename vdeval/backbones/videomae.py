"""VideoMAE-v2 (Wang et al., CVPR 2023) as content-debiased FVD uses it (Ge, Mahapatra, Liu, Huang
and Zhu, "On the Content Bias in Fréchet Video Distance", CVPR 2024; the `cd-fvd` package): a
published video backbone whose features see motion more and per-frame appearance less than I3D's.

The network is cd-fvd's vit_giant_patch14_224 (cdfvd/third_party/VideoMAEv2/videomaev2_finetune.py),
re-implemented here with the same parameter names so its released checkpoint loads unchanged and
vdeval does not depend on cd-fvd (which downloads its checkpoint by itself, unchecked);
tests/metrics/test_cdfvd.py compares this forward pass and the FVD with cd-fvd's own code path on the
same random weights.

Protocol (cd-fvd's `cdfvd.compute_fvd` on uint8 (B, T, H, W, C) arrays, get_videomae_features):
  the first 16 frames of the clip at their stored size (a clip with fewer frames goes in as it is,
  the temporal position table interpolated as cd-fvd's model does); / 255 in [0, 1], no mean or
  std; each frame resized to 224 x 224 (torch bilinear, align_corners=False, no antialias, aspect
  not kept); layout B x 3 x T x 224 x 224.
Network (vit_g_hybrid_pt_1200e_ssv2_ft.pth: VideoMAE-v2 ViT-g pre-trained on the hybrid set and
fine-tuned on Something-Something v2, cd-fvd's default): tubelets of 2 frames x 14 x 14 pixels by
a Conv3d to 1408 channels (8 x 16 x 16 = 2048 tokens), plus a fixed sinusoid position table;
40 pre-norm blocks (LayerNorm eps 1e-6; 16-head attention, qkv without a k bias; exact GELU MLP
of int(1408 * 48 / 11) = 6144); features: LayerNorm (fc_norm) of the mean of all tokens, 1408-d,
float32 (cd-fvd's default; its half_precision is not part of this protocol). The classifier head
(174 SSv2 classes) is loaded and unused.
The FVD side (population covariance) is the `cd-fvd` protocol of vdeval.metrics.fvd.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdeval.backbones import weights
from vdeval.backbones.base import Backbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec

WEIGHTS = "videomae-v2-g-ssv2"
FRAMES, SIZE = 16, 224
HEAD_WIDTH = 88  # 1408 / 16
GIANT = {"patch": 14, "dim": 1408, "depth": 40, "heads": 16, "mlp_ratio": 48 / 11, "classes": 174, "tubelet": 2}


def sinusoid_table(n: int, dim: int) -> torch.Tensor:
    """(1, n, dim) the fixed position table of VideoMAE (float64 angles, as its numpy code)."""
    pos = np.arange(n, dtype=np.float64)[:, None]
    j = np.arange(dim)
    angles = pos / np.power(10000, 2 * (j // 2) / dim)
    angles[:, 0::2], angles[:, 1::2] = np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float32)[None]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.zeros(dim)), nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])  # no k bias
        q, k, v = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        att = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int, tubelet: int):
        super().__init__()
        self.proj = nn.Conv3d(3, dim, (tubelet, patch, patch), (tubelet, patch, patch))

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VideoMAEv2(nn.Module):
    """cd-fvd's VisionTransformer with use_mean_pooling (the parameter names of its checkpoints)."""

    def __init__(self, patch: int = 14, dim: int = 1408, depth: int = 40, heads: int = 16, mlp_ratio: float = 48 / 11,
                 classes: int = 174, tubelet: int = 2):
        super().__init__()
        self.tubelet, self.grid, self.dim = tubelet, SIZE // patch, dim
        self.patch_embed = PatchEmbed(patch, dim, tubelet)
        self.pos_embed: torch.Tensor
        self.register_buffer("pos_embed", sinusoid_table((FRAMES // tubelet) * self.grid ** 2, dim), persistent=False)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)  # the SSv2 classifier: in the checkpoint, not in the features

    def pos_for(self, frames: int) -> torch.Tensor:
        """The position table for `frames` input frames: cd-fvd's interpolate_pos_encoding (trilinear
        in time by (t + 0.1) / 8 where t = frames // tubelet differs from 8)."""
        t_full, t = FRAMES // self.tubelet, frames // self.tubelet
        if t == t_full:
            return self.pos_embed
        d = self.dim
        grid = self.pos_embed.permute(0, 2, 1).reshape(1, d, t_full, self.grid, self.grid)
        grid = F.interpolate(grid, scale_factor=((t + 0.1) / t_full, 1, 1), mode="trilinear")
        return grid.reshape(1, d, -1).permute(0, 2, 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, T, 224, 224) in [0, 1] -> (B, dim)."""
        tokens = self.patch_embed(x)
        tokens = tokens + self.pos_for(x.shape[2]).to(tokens.dtype)
        for blk in self.blocks:
            tokens = blk(tokens)
        return self.fc_norm(tokens.mean(1))


def preprocess(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, T, 224, 224): cd-fvd's preprocess_videomae, a colour channel
    at a time (its 4-D interpolate resizes each (channel, frame) plane on its own, with the frames as
    the vectorised dimension: so this is bit-identical, at a third of the float copy's memory)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)  # (3, T, H, W) uint8
    out = torch.empty(3, len(frames), SIZE, SIZE)
    for c in range(3):
        plane = x[c:c + 1].to(torch.float32) / 255
        out[c] = F.interpolate(plane, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0]
    return out


def load_state(path) -> dict:
    """The network's state dict from a checkpoint file: a plain state dict, or one under "model" /
    "module" (as cd-fvd reads it), with torch.load(weights_only=True): data, never code."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"videomae: {path} is not a weights-only checkpoint ({str(e).splitlines()[0][:120]})",
                           f"install the published file with `vdeval weights install {WEIGHTS} FILE`") from None
    for key in ("model", "module"):
        if isinstance(ckpt, dict) and key in ckpt:
            ckpt = ckpt[key]
            break
    return ckpt


def config_of(state: dict) -> dict:
    """The architecture of a state dict (the published file is the giant one; test stand-ins are small)."""
    w = state.get("patch_embed.proj.weight")
    if w is None or w.ndim != 5:
        raise WeightsError("videomae: the checkpoint has no patch_embed.proj.weight (Conv3d)",
                           f"install the published file with `vdeval weights install {WEIGHTS} FILE`")
    dim, _, tubelet, patch, _ = w.shape
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    hidden = state["blocks.0.mlp.fc1.weight"].shape[0] if depth else int(dim * 48 / 11)
    # heads are not in the shapes: ViT-g has 16 of width 88, and a smaller network keeps that width
    return {"patch": int(patch), "dim": int(dim), "depth": depth, "heads": max(1, int(dim) // HEAD_WIDTH),
            "mlp_ratio": hidden / dim, "classes": int(state["head.weight"].shape[0]), "tubelet": int(tubelet)}


class VideoMAEBackbone(Backbone):
    name = "videomae"
    version = "v2-g-ssv2"
    tier = "published"
    provides = ("video_embedding",)
    protocol = (
        "cd-fvd: first 16 frames as stored, /255, each resized to 224x224 (bilinear, align_corners=False, no "
        "antialias), B x 3 x T x 224 x 224; VideoMAE-v2 ViT-g/14 (SSv2 fine-tuned), fc_norm of the mean token, 1408-d"
    )

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # the 16 frames as float32 at stored size and at 224 px, and, layer by layer, ViT-g's tokens
        # (8 x 16 x 16 = 2048 of 1408), its MLP (6144 wide) and one layer's attention maps (16 heads).
        # Declared from the architecture, not measured here (needs the weights).
        tokens = (FRAMES // 2) * (SIZE // 14) ** 2
        return 4 * min(frames, FRAMES) * 3 * (height * width + SIZE * SIZE) + 4 * tokens * (4 * 1408 + 6144 + 16 * tokens)

    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(frames=FRAMES)  # stored size: the protocol's resize (no antialias) must see the frames as stored

    def __init__(self, device: str = "cpu", **options):
        super().__init__(device, **options)
        self._path, self._sha = weights.require(WEIGHTS)

    network = ("model", "dim")

    def check_weights(self) -> None:
        weights.check_format(self._path, "videomae", WEIGHTS, ("torch",))

    def build(self) -> None:
        path = self._path
        state = load_state(path)
        cfg = config_of(state)
        model = VideoMAEv2(**cfg)
        try:
            model.load_state_dict(state)
        except Exception as e:
            raise WeightsError(f"videomae: {path} does not load into VideoMAE-v2: {str(e).splitlines()[0][:200]}",
                               f"reinstall with `vdeval weights install {WEIGHTS} FILE`") from None
        self.model = model.eval().to(self.device)
        self.dim = cfg["dim"]

    def weights_sha256(self) -> dict[str, str]:
        return {weights.ENTRIES[WEIGHTS].filename: self._sha}

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:  # one clip a forward: batch invariance, and 2048 tokens of ViT-g are memory enough
            x = preprocess(c.frames[:FRAMES])[None].to(self.device)
            out.append({"value": self.model.forward_features(x)[0].float().cpu().numpy()})
        return out
