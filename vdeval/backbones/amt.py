"""AMT-S (Li et al., "AMT: All-Pairs Multi-Field Transforms for Efficient Frame Interpolation", CVPR
2023): the learned frame interpolator VBench's motion_smoothness uses; backbone `amt` (published).

Network: re-written from the structure of MCG-NKU/AMT's networks/AMT-S.py and networks/blocks/
(feat_enc.SmallEncoder, raft.SmallUpdateBlock / BidirCorrBlock, ifrnet.Encoder / InitDecoder /
IntermediateDecoder, multi_flow.MultiFlowDecoder / multi_flow_combine; CC BY-NC 4.0), with their
module names kept so the released state dict loads as it is: corr_radius 3, corr_lvls 4, num_flows 3,
channels (20, 32, 44, 56), skip_channels 20, SmallEncoder(84, instance norm). Weights: `amt-s.pth`
(weights entry `amt-s`, their Hugging Face mirror; no sha256 is published, so the install records
the file's hash). The file is a torch pickle holding {"state_dict": ...} (VBench and AMT's demos read
ckpt["state_dict"]); it is loaded with weights_only=True and refused if that fails.

Protocol (VBench's vbench/motion_smoothness.py with AMT's utils): frames at their own size, RGB
uint8 / 255 as float32 (1, 3, H, W); both frames padded by replication to multiples of 16 (AMT's
InputPadder, split evenly, the odd pixel at the end); the network at embt = 0.5 and scale_factor 1
(VBench keeps 1 on CPU and on GPUs with enough memory for the clip); output cropped back, then
VBench's tensor2img: (x * 255).clip(0, 255) truncated to uint8 (not rounded). Feature kind
`midframes_even`: {"value": uint8 (n, H, W, 3)}, the interpolated midpoint of even frames 2i and
2i+2 (the odd frames are never seen), for motion_smoothness. Runs in float32 (no autocast).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vdeval.backbones import loading, weights
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput

WEIGHTS = "amt-s"


# ---- network -----------------------------------------------------------------------------------

def _up(x, s):
    return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)


def warp(img, flow):
    """Backward warp: img sampled at pixel + flow (bilinear, border padding, corners aligned)."""
    b, _, h, w = flow.shape
    gx = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(b, -1, h, -1)
    gy = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(b, -1, -1, w)
    grid = torch.cat([gx, gy], 1).to(img)
    norm = torch.cat([flow[:, :1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(img, (grid + norm).permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=True)


def conv_prelu(cin, cout, k=3, stride=1, pad=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad), nn.PReLU(cout))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 with instance norms (no parameters) and a residual."""

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes // 4, 1)
        self.conv2 = nn.Conv2d(planes // 4, planes // 4, 3, stride, 1)
        self.conv3 = nn.Conv2d(planes // 4, planes, 1)
        self.norms = nn.ModuleList([nn.InstanceNorm2d(c) for c in (planes // 4, planes // 4, planes)])
        self.downsample = None if stride == 1 else nn.Sequential(nn.Conv2d(cin, planes, 1, stride), nn.InstanceNorm2d(planes))

    def forward(self, x):
        y = x
        for conv, norm in zip((self.conv1, self.conv2, self.conv3), self.norms):
            y = F.relu(norm(conv(y)))
        return F.relu((x if self.downsample is None else self.downsample(x)) + y)


class SmallEncoder(nn.Module):
    """RAFT's small feature encoder: 1/8 resolution, instance norm."""

    def __init__(self, out_dim=84):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 3)
        self.norm1 = nn.InstanceNorm2d(32)
        self.layer1 = nn.Sequential(Bottleneck(32, 32), Bottleneck(32, 32))
        self.layer2 = nn.Sequential(Bottleneck(32, 64, 2), Bottleneck(64, 64))
        self.layer3 = nn.Sequential(Bottleneck(64, 96, 2), Bottleneck(96, 96))
        self.conv2 = nn.Conv2d(96, out_dim, 1)

    def forward(self, x):
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class ResBlock(nn.Module):
    """IFRNet's residual block: the last `side` channels get their own convolutions in between."""

    def __init__(self, ch, side):
        super().__init__()
        self.side = side
        self.conv1, self.conv3 = conv_prelu(ch, ch), conv_prelu(ch, ch)
        self.conv2, self.conv4 = conv_prelu(side, side), conv_prelu(side, side)
        self.conv5 = nn.Conv2d(ch, ch, 3, 1, 1)
        self.prelu = nn.PReLU(ch)

    def _side(self, out, conv):
        return torch.cat([out[:, :-self.side], conv(out[:, -self.side:])], 1)

    def forward(self, x):
        out = self.conv3(self._side(self.conv1(x), self.conv2))
        out = self.conv5(self._side(out, self.conv4))
        return self.prelu(x + out)


class PyramidEncoder(nn.Module):
    def __init__(self, channels):
        super().__init__()
        prev = 3
        for i, ch in enumerate(channels, 1):
            self.add_module(f"pyramid{i}", nn.Sequential(conv_prelu(prev, ch, 3, 2, 1), conv_prelu(ch, ch)))
            prev = ch
        self.n = len(channels)

    def forward(self, x):
        out = []
        for i in range(1, self.n + 1):
            x = getattr(self, f"pyramid{i}")(x)
            out.append(x)
        return out


class Decoder(nn.Module):
    """IFRNet-style decoder: features (+ warped features and flows) -> 2x upsampled flows and features.
    `first`: the coarsest one (inputs f0, f1, embt); else inputs ft, f0, f1, flow0, flow1."""

    def __init__(self, cin, cout, skip, first=False):
        super().__init__()
        k = 2 if first else 3
        width = cin * k + (1 if first else 4)
        self.first = first
        self.convblock = nn.Sequential(conv_prelu(width, cin * k), ResBlock(cin * k, skip),
                                       nn.ConvTranspose2d(cin * k, cout, 4, 2, 1))

    def forward(self, *x):
        if self.first:
            f0, f1, embt = x
            return self.convblock(torch.cat([f0, f1, embt.repeat(1, 1, *f0.shape[2:])], 1))
        ft, f0, f1, flow0, flow1 = x
        return self.convblock(torch.cat([ft, warp(f0, flow0), warp(f1, flow1), flow0, flow1], 1))


class UpdateBlock(nn.Module):
    """RAFT's small update: correlation + flow -> residual flow (4 channels) and feature update."""

    def __init__(self, cdim, scale=None, levels=4, radius=3, hidden=76, flow_dim=20, corr_dim=64, fc_dim=68):
        super().__init__()
        planes = levels * (2 * radius + 1) ** 2
        self.scale = scale
        self.convc1 = nn.Conv2d(2 * planes, corr_dim, 1)
        self.convf1 = nn.Conv2d(4, flow_dim * 2, 7, padding=3)
        self.convf2 = nn.Conv2d(flow_dim * 2, flow_dim, 3, padding=1)
        self.conv = nn.Conv2d(corr_dim + flow_dim, fc_dim, 3, padding=1)
        lrelu = nn.LeakyReLU(0.1)
        self.gru = nn.Sequential(nn.Conv2d(fc_dim + 4 + cdim, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, hidden, 3, padding=1))
        self.feat_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, cdim, 3, padding=1))
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), lrelu, nn.Conv2d(hidden, 4, 3, padding=1))

    def forward(self, net, flow, corr):
        act = lambda t: F.leaky_relu(t, 0.1)  # noqa: E731
        if self.scale is not None:
            net = _up(net, 1 / self.scale)
        inp = act(self.conv(torch.cat([act(self.convc1(corr)), act(self.convf2(act(self.convf1(flow))))], 1)))
        out = self.gru(torch.cat([inp, flow, net], 1))
        d_net, d_flow = self.feat_head(out), self.flow_head(out)
        if self.scale is not None:
            d_net, d_flow = _up(d_net, self.scale), self.scale * _up(d_flow, self.scale)
        return d_net, d_flow


def coords_grid(b, h, w, device):
    y, x = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([x, y]).float()[None].repeat(b, 1, 1, 1)


class BidirCorr:
    """All-pairs correlation of 1/8 features, pooled into `levels` levels, looked up both ways."""

    def __init__(self, f0, f1, levels=4, radius=3):
        b, d, h, w = f0.shape
        corr = (f0.view(b, d, h * w).transpose(1, 2) @ f1.view(b, d, h * w)).view(b, h, w, 1, h, w) / torch.sqrt(torch.tensor(d).float())
        c, ct = corr.reshape(b * h * w, 1, h, w), corr.permute(0, 4, 5, 3, 1, 2).reshape(b * h * w, 1, h, w)
        self.pyr, self.pyr_t, self.radius = [c], [ct], radius
        for _ in range(levels - 1):
            self.pyr.append(F.avg_pool2d(self.pyr[-1], 2, 2))
            self.pyr_t.append(F.avg_pool2d(self.pyr_t[-1], 2, 2))

    @staticmethod
    def _sample(img, coords):
        h, w = img.shape[-2:]
        x, y = coords.split([1, 1], dim=-1)
        return F.grid_sample(img, torch.cat([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], -1), align_corners=True)

    def __call__(self, coords0, coords1):
        r = self.radius
        b, _, h, w = coords0.shape
        d = torch.linspace(-r, r, 2 * r + 1, device=coords0.device)
        # the window's first index moves x, the second y (as RAFT's and AMT's lookups order it)
        delta = torch.stack(torch.meshgrid(d, d, indexing="ij"), -1).view(1, 2 * r + 1, 2 * r + 1, 2)
        outs = ([], [])
        for i, (c, ct) in enumerate(zip(self.pyr, self.pyr_t)):
            for out, pyr, co in ((outs[0], c, coords0), (outs[1], ct, coords1)):
                centre = co.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2) / 2 ** i
                out.append(self._sample(pyr, centre + delta).view(b, h, w, -1))
        return tuple(torch.cat(o, -1).permute(0, 3, 1, 2).contiguous().float() for o in outs)


class AMTS(nn.Module):
    """AMT-S; forward(img0, img1, embt) -> the frame at time embt, images in [0, 1] (B, 3, H, W), H and W multiples of 16."""

    def __init__(self, radius=3, levels=4, num_flows=3, channels=(20, 32, 44, 56), skip=20):
        super().__init__()
        self.radius, self.levels, self.num_flows = radius, levels, num_flows
        c = channels
        self.feat_encoder = SmallEncoder(84)
        self.encoder = PyramidEncoder(c)
        self.decoder4 = Decoder(c[3], c[2] + 4, skip, first=True)
        self.decoder3 = Decoder(c[2], c[1] + 4, skip)
        self.decoder2 = Decoder(c[1], c[0] + 4, skip)
        self.decoder1 = Decoder(c[0], 8 * num_flows, skip)
        self.update4, self.update3, self.update2 = UpdateBlock(44), UpdateBlock(32, 2), UpdateBlock(20, 4)
        n = num_flows
        self.comb_block = nn.Sequential(nn.Conv2d(3 * n, 6 * n, 3, 1, 1), nn.PReLU(6 * n), nn.Conv2d(6 * n, 3, 3, 1, 1))

    def _refine(self, update, corr_fn, coord, flow0, flow1, ft, embt, down):
        """Correlation lookup at the flows' targets (linear-motion scaling to 0 -> 1) and a residual update."""
        f0, f1 = (flow0, flow1) if down == 1 else (_up(flow0, 1 / down) / down, _up(flow1, 1 / down) / down)
        c0, c1 = corr_fn(coord + f1 / embt, coord + f0 / (1.0 - embt))
        d_ft, d_flow = update(ft, torch.cat([f0, f1], 1), torch.cat([c0, c1], 1))
        return flow0 + d_flow[:, :2], flow1 + d_flow[:, 2:], ft + d_ft

    @staticmethod
    def _split(out, flow0_in=None, flow1_in=None):
        flow0, flow1, ft = out[:, :2], out[:, 2:4], out[:, 4:]
        if flow0_in is not None:
            flow0, flow1 = flow0 + 2.0 * _up(flow0_in, 2.0), flow1 + 2.0 * _up(flow1_in, 2.0)
        return flow0, flow1, ft

    def forward(self, img0, img1, embt):
        mean = torch.cat([img0, img1], 2).mean(dim=(1, 2, 3), keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        b, _, h, w = img0.shape
        coord = coords_grid(b, h // 8, w // 8, img0.device)
        fmap0, fmap1 = self.feat_encoder(torch.cat([img0, img1])).chunk(2)
        corr_fn = BidirCorr(fmap0, fmap1, self.levels, self.radius)
        p0, p1 = self.encoder(img0), self.encoder(img1)
        flow0, flow1, ft = self._split(self.decoder4(p0[3], p1[3], embt))
        flow0, flow1, ft = self._refine(self.update4, corr_fn, coord, flow0, flow1, ft, embt, 1)
        for dec, upd, lvl, down in ((self.decoder3, self.update3, 2, 2), (self.decoder2, self.update2, 1, 4)):
            flow0, flow1, ft = self._split(dec(ft, p0[lvl], p1[lvl], flow0, flow1), flow0, flow1)
            flow0, flow1, ft = self._refine(upd, corr_fn, coord, flow0, flow1, ft, embt, down)
        return self._combine(img0, img1, mean, self.decoder1(ft, p0[0], p1[0], flow0, flow1), flow0, flow1)

    def _combine(self, img0, img1, mean, out, flow0, flow1):
        """num_flows candidate frames (two warps blended by a mask, plus a residual), averaged and refined."""
        n = self.num_flows
        b, _, h, w = out.shape
        d0, d1, mask, res = torch.split(out, [2 * n, 2 * n, n, 3 * n], 1)
        flow0 = (d0 + 2.0 * _up(flow0, 2.0).repeat(1, n, 1, 1)).reshape(b * n, 2, h, w)
        flow1 = (d1 + 2.0 * _up(flow1, 2.0).repeat(1, n, 1, 1)).reshape(b * n, 2, h, w)
        mask = torch.sigmoid(mask).reshape(b * n, 1, h, w)
        rep = lambda t: t.unsqueeze(1).expand(b, n, *t.shape[1:]).reshape(b * n, *t.shape[1:])  # noqa: E731
        warps = mask * warp(rep(img0), flow0) + (1 - mask) * warp(rep(img1), flow1) + rep(mean) + res.reshape(b * n, 3, h, w)
        warps = warps.reshape(b, n, 3, h, w)
        return torch.clamp(warps.mean(1) + self.comb_block(warps.view(b, -1, h, w)), 0, 1)


# ---- protocol ----------------------------------------------------------------------------------

def pad_to_multiple(x: torch.Tensor, m: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Replicate-pad (B, C, H, W) to multiples of m, split evenly with the odd pixel at the end (AMT's
    InputPadder at m = 16): (left, right, top, bottom)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % m, (-w) % m
    pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    return F.pad(x, pad, mode="replicate"), pad


# all-pairs correlation at 1/8 size (and its transpose and pyramids, ~2.7x) bounds a batch of pairs
CORR_BUDGET = 1 << 30
MAX_PAIRS = 8


# On a CPU a batch pays only while frames are small (benchmarks/cpu_batch_sizes.py, README "Scale
# and performance": 2 pairs cost 0.84x of one at 256x160, 7 pairs 1.65x at 512x320): about this
# many frame pixels of pairs go in one CPU forward
CPU_BATCH_PIXELS = 2 * 256 * 160


def pairs_per_batch(h: int, w: int, budget: int = CORR_BUDGET, device="cpu") -> int:
    """How many frame pairs go through AMT-S at once: up to MAX_PAIRS while their correlation
    volumes fit `budget` (one pair at a time at 720p, where a pair's volume alone is ~2 GB), and
    on a CPU while they hold about CPU_BATCH_PIXELS pixels (one pair from 384x240 up)."""
    cells = -(-h // 16) * 2 * (-(-w // 16) * 2)  # 1/8 of the 16-padded size
    per_pair = int(cells * cells * 4 * 2.7)
    most = CPU_BATCH_PIXELS // max(1, h * w) if str(device) == "cpu" else MAX_PAIRS
    return max(1, min(MAX_PAIRS, most, budget // max(per_pair, 1)))


@torch.no_grad()
def interpolate_midframes(model: AMTS, frames: np.ndarray, device="cpu", batch: int | None = None) -> np.ndarray:
    """uint8 (n, H, W, 3) midpoints of consecutive even frames of uint8 (T, H, W, 3) (VBench's loop,
    with `batch` pairs per forward: default pairs_per_batch; the network is per-sample, so a
    midpoint does not depend on its batch beyond float round-off)."""
    even = frames[::2]
    h, w = frames.shape[1:3]
    n = max(len(even) - 1, 0)
    batch = batch or pairs_per_batch(h, w, device=device)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(0, n, batch):
        k = min(batch, n - i)
        x = torch.from_numpy(np.ascontiguousarray(even[i:i + k + 1])).permute(0, 3, 1, 2).float().div(255.0).to(device)
        padded, (l, _, t, _) = pad_to_multiple(x)
        embt = torch.full((k, 1, 1, 1), 0.5, device=device)
        mid = model(padded[:-1], padded[1:], embt)[:, :, t:t + h, l:l + w]
        out[i:i + k] = (mid * 255.0).permute(0, 2, 3, 1).cpu().numpy().clip(0, 255).astype(np.uint8)  # truncates, as VBench
    return out


def load_state(path) -> dict:
    """The state dict inside a released AMT checkpoint ({"state_dict": ...}, or a bare state dict)."""
    obj = torch.load(path, map_location="cpu", weights_only=True)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError("no state dict of tensors in it")
    return state


class AMTBackbone(Backbone):
    name = "amt"
    version = "amt-s"
    provides = ("midframes_even",)
    tier = "published"
    protocol = ("RGB uint8 /255 at the clip's size, replicate-padded to multiples of 16 (AMT InputPadder); AMT-S "
                "(amt-s.pth) at embt 0.5, scale 1, float32; cropped; (x*255).clip(0,255) truncated to uint8 (VBench)")

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # frames at their own size (VBench's protocol): the uint8 midpoints it returns and one pair
        # at a time through AMT-S (float32 feature pyramids and 4-level correlation volumes of
        # 1/8-size maps). Declared from the architecture, not measured here (needs the weights).
        pairs = max((frames + 1) // 2 - 1, 0)
        p8 = (height // 8 + 1) * (width // 8 + 1)
        return pairs * height * width * 3 + 400 * height * width * 4 + 2 * p8 * p8 * 4

    def __init__(self, device: str = "cpu", **options):
        super().__init__(device, **options)
        self._path, self._sha = weights.require(WEIGHTS)
        self._file = self._path.name

    network = ("model",)

    def check_weights(self) -> None:
        weights.check_format(self._path, "amt", WEIGHTS, ("torch",))

    def build(self) -> None:
        with loading.made_on_meta():  # one copy of the weights while loading (loading.py)
            path, model = self._path, AMTS()
        try:
            loading.load_into(model, load_state(path))
        except Exception as e:
            raise WeightsError(f"amt: {path} is not a released AMT-S checkpoint: {str(e).splitlines()[0][:200]}",
                               f"reinstall it with `vdeval weights install {WEIGHTS} FILE` (the amt-s.pth of MCG-NKU/AMT)") from None
        self.model = model.eval().to(self.device)

    def weights_sha256(self) -> dict[str, str]:
        return {self._file: self._sha}

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            h, w = c.frames.shape[1:3]
            if min(-(-h // 16), -(-w // 16)) < 8:  # the coarsest correlation level must be at least 2 wide
                raise FeatureError(f"amt: frames of {h}x{w} are too small for AMT-S (it needs more than 112 px per side: "
                                   "smaller, AMT's correlation lookup divides by zero)", "use a flow backbone (dis, raft) for small clips")
            out.append({"value": interpolate_midframes(self.model, c.frames, self.device)})
        return out
