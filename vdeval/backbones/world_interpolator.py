"""The world interpolator: a small frame interpolator trained on the shapes world and shipped inside
the package; backbone `world_interpolator` (embedded tier, world domain), motion_smoothness's
default on world clips.

Why: motion_smoothness is VBench's reconstruction of odd frames from even ones, so its power is the
interpolator's. VBench's AMT-S needs weights that cannot be downloaded here and frames over 112 px;
the weightless flow-splat interpolator on DIS misses small fast objects between even frames of
32 px clips (audit AUROC 0.76 on stutter, 0.96 with the world's exact flow). This network plays the
part AMT-S (trained on Vimeo90k) plays for natural video, trained on what it will be shown: clean
world clips. Like every shapes-world backbone, it is the default only when every clip of a suite
comes from the world; on other footage motion_smoothness uses `dis`.

Network (`MidpointNet`, fully convolutional, 0.44 M parameters): a U-Net (levels of 32/32/64/96
channels at 1, 1/2, 1/4, 1/8 size) reads both frames (RGB in [-1, 1]) and their symmetric matching
costs mean |f0(x - d) - f1(x + d)| for every whole-pixel d in [-4, 4]^2, and predicts two backward
flows from the midpoint to each frame and a blending mask (occlusions). Trained by
`python -m vdeval.backbones.train_interpolator` (L1 to the true middle frame through bilinear warps,
plus L1 to the world's exact flows); figures in world_interpolator.json beside the weights and in
the README. At inference the midpoint is built at whole pixels (the world moves by whole pixels at
constant speed): each pixel's displacement d = round((flow_1 - flow_0) / 2) is snapped to the d'
within 1 px with the lowest symmetric cost (`MidpointNet.midpoint`), and the pixel is
mask * f0(x - d') + (1 - mask) * f1(x + d'), copied from a neighbour, never painted.

Protocol: frames at their own size, RGB uint8 / 127.5 - 1, replicate-padded to multiples of 8 (split
evenly, the odd pixel at the end), the network in float32, the whole-pixel midpoint above (offsets
clamped to the frame), cropped back, (x + 1) * 127.5 rounded to uint8. Motion beyond 4 px a frame
on either axis (fast objects in world clips over 64 px) is out of its range. Feature kind
`midframes_even`: {"value": uint8 (n, H, W, 3)}, the midpoints of even frames 2i and 2i+2 (odd
frames never seen), as backbone `amt` gives them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from vdeval.backbones.amt import pad_to_multiple, warp
from vdeval.backbones.base import Backbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.store import sha256_file
from vdeval.video.protocol import InputSpec

WEIGHTS_DIR = Path(__file__).parent / "embedded_weights"
WEIGHTS_FILE = "world_interpolator.safetensors"
CONFIG_FILE = "world_interpolator.json"
DEFAULT_CONFIG = {"widths": [32, 32, 64, 96], "flow_scale": 4.0, "radius": 4}
SNAP_PENALTY = 0.05  # [-1, 1] scale (6.4 grey levels): move off the network's whole-pixel d only for a clearly better match
SNAP_OCCLUDED = 0.1  # above this best cost (12.8 levels) nothing matches: the pixel is seen in one frame only
MULTIPLE = 8  # three halvings


def _block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.PReLU(cout), nn.Conv2d(cout, cout, 3, 1, 1), nn.PReLU(cout))


def displacements(radius: int) -> list[tuple[int, int]]:
    """Every whole-pixel (dx, dy) in [-r, r]^2, dy-major: the order of symmetric_costs' planes."""
    return [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def shifted(f: torch.Tensor, radius: int, sign: int) -> list[torch.Tensor]:
    """f (B, C, H, W) sampled at x + sign * d for every d of displacements(radius) (replicate padding)."""
    h, w = f.shape[-2:]
    r = radius
    p = F.pad(f, (r, r, r, r), mode="replicate")
    return [p[..., r + sign * dy:r + sign * dy + h, r + sign * dx:r + sign * dx + w] for dx, dy in displacements(r)]


def symmetric_costs(f0: torch.Tensor, f1: torch.Tensor, radius: int) -> torch.Tensor:
    """(B, K, H, W): mean |f0(x - d) - f1(x + d)| over channels for every d: how well a midpoint
    pixel x matches when its content moves by d per half step."""
    return torch.stack([(a - b).abs().mean(1) for a, b in zip(shifted(f0, radius, -1), shifted(f1, radius, 1))], 1)


class MidpointNet(nn.Module):
    """(f0, f1) in [-1, 1], (B, 3, H, W) with H, W multiples of 8 -> (flow_0, flow_1, mask): backward
    flows from the midpoint to each frame (pixels, x then y) and the weight of f0 against f1.
    Inputs to the U-Net: both frames and their symmetric matching costs within `radius` px."""

    def __init__(self, widths=(32, 32, 64, 96), flow_scale=4.0, radius=4):
        super().__init__()
        w = list(widths)
        self.flow_scale, self.radius = float(flow_scale), int(radius)
        self.down = nn.ModuleList([_block(6 + (2 * self.radius + 1) ** 2, w[0])] + [_block(w[i - 1], w[i], 2) for i in range(1, len(w))])
        self.up = nn.ModuleList([_block(w[i] + w[i - 1], w[i - 1]) for i in range(len(w) - 1, 0, -1)])
        self.head = nn.Conv2d(w[0], 5, 3, 1, 1)
        nn.init.zeros_(self.head.weight), nn.init.zeros_(self.head.bias)  # starts as the blend (f0 + f1) / 2

    def forward(self, f0, f1):
        x = torch.cat([f0, f1, symmetric_costs(f0, f1, self.radius)], 1)
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        for layer, skip in zip(self.up, reversed(skips[:-1])):
            x = layer(torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1))
        out = self.head(x)
        return out[:, 0:2] * self.flow_scale, out[:, 2:4] * self.flow_scale, torch.sigmoid(out[:, 4:5])

    def soft_midpoint(self, f0, f1):
        """Training's midpoint: both frames warped by the predicted flows (bilinear) and blended."""
        flow0, flow1, mask = self(f0, f1)
        return mask * warp(f0, flow0) + (1.0 - mask) * warp(f1, flow1), flow0, flow1

    def midpoint(self, f0, f1):
        """The midpoint at whole pixels: each pixel's displacement d = round((flow_1 - flow_0) / 2) is
        moved to the whole-pixel d' within 1 px whose symmetric cost |f0(x - d') - f1(x + d')| (mean over
        channels, [-1, 1] scale) plus SNAP_PENALTY for leaving d is lowest; where even that costs over
        SNAP_OCCLUDED (content seen in one frame only), the rounded predicted flows are kept.
        Then mask * f0(x - d') + (1 - mask) * f1(x + d')."""
        flow0, flow1, mask = self(f0, f1)
        d = ((flow1 - flow0) / 2).round().long().permute(0, 2, 3, 1)
        best_cost, best = None, d
        for oy in (-1, 0, 1):
            for ox in (-1, 0, 1):
                dd = d + torch.tensor([ox, oy], device=d.device)
                cost = (gather_at(f0, -dd) - gather_at(f1, dd)).abs().mean(1) + (0.0 if ox == oy == 0 else SNAP_PENALTY)
                if best_cost is None:
                    best_cost, best = cost, dd
                else:
                    better = cost < best_cost
                    best_cost, best = torch.where(better, cost, best_cost), torch.where(better[..., None], dd, best)
        snapped = mask * gather_at(f0, -best) + (1.0 - mask) * gather_at(f1, best)
        rounded = mask * warp(f0, flow0.round()) + (1.0 - mask) * warp(f1, flow1.round())
        return torch.where((best_cost > SNAP_OCCLUDED)[:, None], rounded, snapped)


def gather_at(f: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """f (B, C, H, W) at whole-pixel offsets d (B, H, W, 2: dx, dy), clamped to the frame (= replicate padding)."""
    b, c, h, w = f.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=f.device), torch.arange(w, device=f.device), indexing="ij")
    y = (ys + d[..., 1]).clamp(0, h - 1)
    x = (xs + d[..., 0]).clamp(0, w - 1)
    idx = (y * w + x).view(b, 1, h * w).expand(b, c, h * w)
    return f.reshape(b, c, h * w).gather(2, idx).view(b, c, h, w)


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


@torch.no_grad()
def midframes_even(model: MidpointNet, frames: np.ndarray, device="cpu", batch: int | None = None) -> np.ndarray:
    """uint8 (n, H, W, 3) midpoints of consecutive even frames of uint8 (T, H, W, 3), `batch` pairs
    per forward (default: up to 8 while their matching costs, (2r+1)^2 planes of the frame, about
    0.3 GB a pair at 720p, fit 1 GB: one pair at a time at 720p)."""
    even = frames[::2]
    h, w = frames.shape[1:3]
    n = max(len(even) - 1, 0)
    batch = batch or max(1, min(8, int((1 << 30) // (0.3e9 * h * w / (720 * 1280)))))
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(0, n, batch):
        k = min(batch, n - i)
        x, (left, _, top, _) = pad_to_multiple(to_unit(even[i:i + k + 1]).to(device), MULTIPLE)
        mid = model.midpoint(x[:-1], x[1:])[:, :, top:top + h, left:left + w]
        out[i:i + k] = ((mid + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out


def load_model(weights_dir: Path = WEIGHTS_DIR) -> tuple[MidpointNet, str]:
    path = Path(weights_dir) / WEIGHTS_FILE
    if not path.exists():
        raise WeightsError(f"world_interpolator: weights missing at {path}",
                           "reinstall vdeval, or retrain them with `python -m vdeval.backbones.train_interpolator`")
    cfg_path = Path(weights_dir) / CONFIG_FILE
    cfg = {**DEFAULT_CONFIG, **(json.loads(cfg_path.read_text())["model"] if cfg_path.exists() else {})}
    model = MidpointNet(cfg["widths"], cfg["flow_scale"], cfg["radius"])
    model.load_state_dict(load_file(str(path)))
    return model.eval(), sha256_file(path)


class WorldInterpolator(Backbone):
    name = "world_interpolator"
    version = "1"
    provides = ("midframes_even",)
    tier = "embedded"
    domain = "world"
    protocol = ("RGB uint8 /127.5 - 1 at the clip's size, replicate-padded to multiples of 8; MidpointNet (trained on "
                "the shapes world), float32, displacement snapped to the best whole-pixel match within 1 px; cropped; (x + 1) * 127.5 "
                "rounded to uint8")

    def __init__(self, device: str = "cpu", **options):
        super().__init__(device, **options)
        model, self._sha = load_model()
        self.model = model.to(device)

    def weights_sha256(self) -> dict[str, str]:
        return {WEIGHTS_FILE: self._sha}

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # frames at their own size (the protocol moves whole pixels): the uint8 midpoints of the
        # even pairs it returns, and one pair at a time (the batch is one pair from 720p up), its
        # matching costs over (2r + 1)^2 offsets and the network's float32 feature maps: 350 float32
        # planes of the frame, above the largest of two measurements (2.52 and 2.86 GB for a 1080p
        # pair, tests/run/test_memory_contract.py: the allocator varies run to run)
        pairs = max((frames + 1) // 2 - 1, 0)
        return pairs * height * width * 3 + 350 * height * width * 4

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        return [{"value": midframes_even(self.model, c.frames, self.device)} for c in clips]


TRAINED_SHORT_SIDE = 32  # the world clips MidpointNet was trained on (32 x 32)


class WorldInterpolatorTrainedScale(WorldInterpolator):
    """The same network on frames shrunk (area averaging) to the size it was trained at: short
    side at most TRAINED_SHORT_SIDE. World motion scales with the frame (a fast object crosses a
    128 px clip in as many frames as a 32 px one), and the network matches only within +-4 px a
    frame, so on larger world clips the full-size tier cannot rebuild even clean odd frames
    (128x128 fast clips move 8-11 px a frame). Clips of 32 px and under are decoded as by
    `world_interpolator` (same values)."""

    name = "world_interpolator_32"
    protocol = ("world_interpolator's protocol on frames shrunk by area averaging to a short side of at most "
                f"{TRAINED_SHORT_SIDE} px (the training size)")

    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=TRAINED_SHORT_SIDE)
