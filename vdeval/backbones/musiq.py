"""MUSIQ (Ke, Wang, Wang, Milanfar and Yang, "MUSIQ: Multi-scale Image Quality Transformer", ICCV 2021)
as VBench's imaging_quality runs it: a published backbone giving one quality score per frame.

The network is the PyTorch port in pyiqa (archs/musiq_arch.py, data/multiscale_trans_util.py),
re-implemented here because pyiqa cannot be a dependency (it imports every model it has and needs
transformers>=5, bitsandbytes, datasets). Parameter names equal pyiqa's, so its released state dicts
load unchanged; tests/backbones/test_musiq.py compares this forward pass with pyiqa's own module on the same
random weights where pyiqa's source is at hand.

Checkpoints (option `checkpoint`, weights manager entries, plain state dicts loaded with
weights_only=True): "spaq" (musiq_spaq_ckpt-358bb6af.pth, the default: VBench's
vbench/utils.py installs this file for imaging_quality) or "koniq" (musiq_koniq_ckpt-e95806b9.pth,
pyiqa's default `musiq` metric). Both have a one-output head, the score on a ~0-100 scale.

Per frame, exactly (VBench imaging_quality with preprocess mode "longer", then pyiqa MUSIQ in eval):
  the decoded frame as VBench's load_video hands it over, float32 0-255 (no rounding, no clamping);
  if its longer side L > 512: torchvision Resize to (int(512/L * H), int(512/L * W)), bilinear,
  antialias=False, in float32; / 255; x = 2x - 1.
  Three scales: bicubic (align_corners=False, no antialias) resizes so the longer side is 224 and
  384 (sides round(side * ratio), Python rounding), and the frame itself. Each is zero-padded TF
  "SAME"-style to whole 32 px patches (padding split between both sides, the odd pixel at the bottom
  / right), cut into 32 x 32
  patches in row-major order; each patch carries a hashed spatial position (row index
  nearest-resized from a 10-row grid to the patch rows, likewise columns; index = 10 row + col),
  its scale id (0, 1, 2) and a mask 1. The 224 and 384 scales are padded with zero tokens
  (position 0, scale 0, mask 0) to 49 and 144 tokens; the frame scale keeps all its patches.
  Each patch: weight-standardised conv 7x7/2 (64; weights minus their mean over (in, kh, kw),
  divided by their unbiased std + 1e-5; SAME zero padding), GroupNorm(32, eps 1e-6), ReLU, SAME
  zero pad + max-pool 3/2, one bottleneck (std-convs 1x1 64, 3x3 64, 1x1 256 with GroupNorm eps
  1e-4, ReLU; projection std-conv 1x1 256 + GroupNorm), flattened channels-last (8 x 8 x 256)
  and embedded by a linear layer to 384. Token + spatial embedding + scale embedding; a zero-
  initialised class token in front (mask 1); 14 pre-norm transformer blocks (LayerNorm eps 1e-6,
  6-head attention with biases whose logits are set to -1000 wherever the query or the key is
  masked, exact GELU MLP of 1152); LayerNorm; linear head on the class token = the score.
Per clip ("frame_score" feature): "value" (T,) the per-frame MUSIQ score (0-100 scale) and "clip"
(1,) their mean, VBench's per-video number before its / 100.

Decoded input: the frame at its full size, as VBench decodes it, a batch at a time as the network
reads it (streams_input: memory holds batch_size full-size frames, not the clip; batch_size left
out: 8 on a GPU, CPU_BATCH on a CPU, measured cheapest per frame there by
benchmarks/cpu_batch_sizes.py). Option
max_short_side=N (not VBench's) area-shrinks larger footage to an N px short side first, which is
faster and differs from VBench's numbers (MUSIQ on a 1280 x 720 clip with N = 512: rel 4.7e-3).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vdeval.backbones import loading, weights
from vdeval.backbones.base import Backbone
from vdeval.backbones.clip import ClipBackbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec

CHECKPOINTS = {"spaq": "musiq-spaq", "koniq": "musiq-koniq"}
PATCH = 32
GRID = 10  # hashed spatial positions: a GRID x GRID table
SCALES = (224, 384)  # longer sides of the resized scales; the frame itself is the last scale
MAX_LONGER = 512  # VBench's "longer" preprocess mode
GPU_BATCH = 8  # frames per forward
# frames per forward on a CPU without a batch_size option: every bigger batch costs more per frame there
# (benchmarks/cpu_batch_sizes.py, README "Scale and performance")
CPU_BATCH = 1


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero padding as TensorFlow's SAME: split between both sides, the odd pixel to the bottom / right."""
    pads = []
    for size in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


class StdConv(nn.Conv2d):
    """Conv with weight standardisation (per output filter) and SAME padding."""

    def forward(self, x):
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(same_pad(x, self.kernel_size[0], self.stride[0]), w, self.bias, self.stride)


class Bottleneck(nn.Module):
    def __init__(self, cin: int = 64, cout: int = 256):
        super().__init__()
        self.conv1, self.gn1 = StdConv(cin, cin, 1, bias=False), nn.GroupNorm(32, cin, eps=1e-4)
        self.conv2, self.gn2 = StdConv(cin, cin, 3, bias=False), nn.GroupNorm(32, cin, eps=1e-4)
        self.conv3, self.gn3 = StdConv(cin, cout, 1, bias=False), nn.GroupNorm(32, cout, eps=1e-4)
        self.conv_proj, self.gn_proj = StdConv(cin, cout, 1, bias=False), nn.GroupNorm(32, cout, eps=1e-4)

    def forward(self, x):
        shortcut = self.gn_proj(self.conv_proj(x))
        y = F.relu(self.gn1(self.conv1(x)))
        y = F.relu(self.gn2(self.conv2(y)))
        return F.relu(self.gn3(self.conv3(y)) + shortcut)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = (f(x).view(b, n, self.heads, d // self.heads).transpose(1, 2) for f in (self.query, self.key, self.value))
        logits = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        pair = (mask[:, None, :, None] * mask[:, None, None, :]) == 0  # masked query or key
        att = logits.masked_fill(pair, -1e3).softmax(dim=-1)  # -1000, not -inf: MUSIQ's value
        return self.out((att @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, hidden: int, heads: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attention = Attention(dim, heads)
        self.mlp = Mlp(dim, hidden)

    def forward(self, x, mask):
        x = x + self.attention(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class _SpatialEmb(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.position_emb = nn.Parameter(torch.zeros(1, GRID * GRID, dim))


class _ScaleEmb(nn.Module):
    def __init__(self, dim: int, n_scales: int):
        super().__init__()
        self.scale_emb = nn.Parameter(torch.zeros(n_scales, dim))


class Encoder(nn.Module):
    def __init__(self, dim: int, hidden: int, heads: int, layers: int, n_scales: int):
        super().__init__()
        self.posembed_input = _SpatialEmb(dim)
        self.scaleembed_input = _ScaleEmb(dim, n_scales)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.transformer = nn.ModuleDict({f"encoderblock_{i}": Block(dim, hidden, heads) for i in range(layers)})

    def forward(self, x, spatial, scale, mask):
        x = x + self.posembed_input.position_emb[0][spatial] + self.scaleembed_input.scale_emb[scale]
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        for block in self.transformer.values():
            x = block(x, mask)
        return self.encoder_norm(x)


class MusiqNet(nn.Module):
    """MUSIQ with a one-output head; sizes default to the released checkpoints' (about 27M parameters)."""

    def __init__(self, dim: int = 384, hidden: int = 1152, heads: int = 6, layers: int = 14):
        super().__init__()
        self.conv_root = StdConv(3, 64, 7, stride=2, bias=False)
        self.gn_root = nn.GroupNorm(32, 64, eps=1e-6)
        self.block1 = Bottleneck(64, 256)
        self.embedding = nn.Linear(256 * (PATCH // 4) ** 2, dim)
        self.transformer_encoder = Encoder(dim, hidden, heads, layers, len(SCALES) + 1)
        self.head = nn.Linear(dim, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [0, 1], all frames the same size -> (B,) scores."""
        patches, spatial, scale, mask = multiscale_tokens(image * 2 - 1)
        b, n = mask.shape
        x = F.relu(self.gn_root(self.conv_root(patches.reshape(b * n, 3, PATCH, PATCH))))
        x = self.block1(F.max_pool2d(same_pad(x, 3, 2), 3, 2))
        x = self.embedding(x.permute(0, 2, 3, 1).reshape(b, n, -1))  # channels-last, as the TF original
        x = self.transformer_encoder(x, spatial, scale, mask)
        return self.head(x[:, 0]).squeeze(-1)


def hashed_positions(rows: int, cols: int) -> torch.Tensor:
    """(rows * cols,) index into the GRID x GRID table: each axis nearest-resized from GRID to its count."""
    grid = torch.arange(GRID, dtype=torch.float32)[None, None]
    r = F.interpolate(grid, size=rows, mode="nearest")[0, 0].long()
    c = F.interpolate(grid, size=cols, mode="nearest")[0, 0].long()
    return (r[:, None] * GRID + c[None, :]).reshape(-1)


def patch_tokens(image: torch.Tensor, scale_id: int, length: int | None):
    """Patches (B, n, 3*32*32), positions, scale ids and mask of one scale, zero-padded to `length`."""
    b, c, h, w = image.shape
    rows, cols = math.ceil(h / PATCH), math.ceil(w / PATCH)
    x = same_pad(image, PATCH, PATCH)
    x = x.reshape(b, c, rows, PATCH, cols, PATCH).permute(0, 2, 4, 1, 3, 5).reshape(b, rows * cols, -1)
    spatial = hashed_positions(rows, cols).expand(b, -1)
    scale = torch.full_like(spatial, scale_id)
    mask = torch.ones(b, rows * cols, dtype=image.dtype, device=image.device)
    if length is not None and length > rows * cols:
        extra = length - rows * cols
        x = F.pad(x, (0, 0, 0, extra))
        spatial, scale = F.pad(spatial, (0, extra)), F.pad(scale, (0, extra))
        mask = F.pad(mask, (0, extra))
    return x, spatial.to(image.device), scale.to(image.device), mask


def multiscale_tokens(image: torch.Tensor):
    """MUSIQ's multi-scale input of images in [-1, 1]: the SCALES resizes, then the image itself."""
    h, w = image.shape[-2:]
    parts = []
    for sid, longer in enumerate(SCALES):
        ratio = longer / max(h, w)
        resized = F.interpolate(image, size=(round(h * ratio), round(w * ratio)), mode="bicubic", align_corners=False)
        parts.append(patch_tokens(resized, sid, math.ceil(longer / PATCH) ** 2))
    parts.append(patch_tokens(image, len(SCALES), None))
    return tuple(torch.cat(z, dim=1) for z in zip(*parts))


def vbench_longer(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H', W') in [0, 1]: VBench's load_video (float32 0-255)
    then its "longer" preprocess mode."""
    from torchvision.transforms.functional import resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # as load_video
    h, w = x.shape[-2:]
    if max(h, w) > MAX_LONGER:
        s = MAX_LONGER / max(h, w)
        x = resize(x, [int(s * h), int(s * w)], antialias=False)  # bilinear in float32, as VBench
    return x / 255.0


def load_state(path, name: str) -> dict:
    """The released state dict at `path`, checked key by key and shape by shape against MusiqNet."""
    if ClipBackbone._is_torchscript(path):  # torch.load would hand it to torch.jit.load even with weights_only
        raise WeightsError(f"musiq: {path} is a TorchScript archive, not the released state dict",
                           f"install pyiqa's {weights.entry(name).filename} with `vdeval weights install {name} FILE`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise WeightsError(f"musiq: {path} is not a PyTorch state dict: {str(e).splitlines()[0][:200]}",
                           f"reinstall with `vdeval weights install {name} FILE`") from None
    if not isinstance(state, dict):
        raise WeightsError(f"musiq: {path} holds a {type(state).__name__}, not a state dict",
                           f"reinstall with `vdeval weights install {name} FILE`")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}  # saved from DataParallel
    with torch.device("meta"):  # shapes only
        want = {k: tuple(v.shape) for k, v in MusiqNet().state_dict().items()}
    got = {k: tuple(getattr(v, "shape", ())) for k, v in state.items()}
    if got != want:
        diff = sorted(set(want) ^ set(got)) or sorted(k for k in want if want[k] != got[k])
        raise WeightsError(f"musiq: {path} is not a one-output MUSIQ checkpoint (first differing keys: {', '.join(diff[:3])})",
                           f"install pyiqa's released {weights.entry(name).filename} with `vdeval weights install {name} FILE`")
    return state


class MusiqBackbone(Backbone):
    name = "musiq"
    version = "pyiqa-2"  # 2: float32 resize of full-size frames, as VBench's load_video (was: uint8, short side <= 512)
    tier = "published"
    amp = False  # float32: numbers must match the reference
    streams_input = True
    provides = ("frame_score",)
    protocol = (
        "full-size frames as float32 0-255 (VBench load_video); VBench 'longer': longer side > 512 resized to 512 "
        "(torchvision bilinear, antialias=False, float32), /255; pyiqa MUSIQ: 2x-1, scales longer side 224 and 384 (bicubic) + the frame, "
        "32 px patches, hashed 10x10 positions, scale embeddings, ResNet stem, 14-layer transformer; score per frame"
    )

    def __init__(self, device: str = "cpu", checkpoint: str = "spaq", batch_size: int | None = None, max_short_side: int = 0,
                 **options):
        if checkpoint not in CHECKPOINTS:
            raise WeightsError(f"musiq: unknown checkpoint {checkpoint!r}", f"one of {', '.join(CHECKPOINTS)}")
        super().__init__(device, checkpoint=checkpoint, max_short_side=int(max_short_side), **options)
        if batch_size is None:
            batch_size = CPU_BATCH if str(device) == "cpu" else GPU_BATCH
        self.batch_size = max(1, int(batch_size))
        entry = CHECKPOINTS[checkpoint]
        self._path, self._sha = weights.require(entry)
        self._file = self._path.name

    network = ("net",)

    def check_weights(self) -> None:
        weights.check_format(self._path, "musiq", CHECKPOINTS[self.options["checkpoint"]], ("torch",))

    def build(self) -> None:
        state = load_state(self._path, CHECKPOINTS[self.options["checkpoint"]])
        with loading.made_on_meta():  # one copy of the weights while loading (loading.py)
            net = MusiqNet()
        loading.load_into(net, state)
        self.net = net.to(self.device).eval()

    def input_spec(self, kind: str) -> InputSpec:
        cap = self.options["max_short_side"]
        return InputSpec(max_short_side=cap) if cap > 0 else FULL

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a batch of frames at a time: float32 copies at the decoded size (longer side 512 by
        # VBench's resize) and the multi-scale patch transformer's activations. Declared, not
        # measured here (needs the weights).
        b = min(self.batch_size, max(frames, 1))
        return b * (2 * 12 * height * width + 300 * 512 * 512 * 4) + frames * 8

    def weights_sha256(self) -> dict[str, str]:
        return {self._file: self._sha}

    def label(self) -> str:
        return f"musiq@{self.options['checkpoint']}"

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            scores = [self.net(vbench_longer(batch).to(self.device)).float().cpu() for batch in c.batches(self.batch_size)]
            value = torch.cat(scores).numpy() if scores else np.zeros(0, np.float32)
            clip = float(np.mean(value.astype(np.float64))) if len(value) else np.nan
            out.append({"value": value.astype(np.float32), "clip": np.asarray([clip], np.float32)})
        return out
