"""DINO ViT-B/16 (self-supervised, Caron et al. 2021) through timm, as a published image backbone
for identity consistency: the network of VBench's subject consistency. Backbone `dino` feeds it
timm's centre-cropped input (below), which is not VBench's; `dino_vbench` feeds it VBench's exact
input, so only `dino_vbench` numbers are VBench's features.

Protocol, as timm's eval transform for vit_base_patch16_224.dino: each frame resized so its
shorter side is int(224 / 0.9) = 248 (bicubic, antialiased), centre-cropped to 224 x 224,
[0, 1], normalised with ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225);
features: the CLS token of the last layer after the final norm (768-d, no head), L2-normalised.

protocol="vbench" (registered as backbone `dino_vbench`): VBench's subject-consistency input exactly:
its load_video hands the decoded frames over as float32 (torch.Tensor of the uint8 array: values 0-255,
no rounding, no clamping), then dino_transform(224) (vbench/utils.py): torchvision Resize(224,
antialias=False) (shorter side to 224, the longer int(224 * long / short), bilinear, in float32), no
crop, / 255, ImageNet mean/std. Frames are decoded at their full size, as VBench decodes them (no
short-side cap before the resize), a batch at a time as the network reads them (streams_input), so
memory holds batch_size full-size frames, not the clip; the network sees the whole
frame, with the position embeddings interpolated as DINO's own released ViT does for other sizes
(interpolate_pos_encoding: bicubic with scale factors ((H // 16 + 0.1) / 14, (W // 16 + 0.1) / 14),
no antialias; the patch grid drops any remainder of H, W not divisible by 16). Same weights, same
features; only the input differs, so numbers of the two protocols are never mixed (label and
identity name the protocol).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from vdeval.backbones import loading, weights
from vdeval.backbones.base import Backbone
from vdeval.backbones.clip import resize_center_crop
from vdeval.errors import FeatureError, WeightsError
from vdeval.extras import require
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec

WEIGHTS = "dino-vitb16"
TIMM_NAME = "vit_base_patch16_224.dino"
SIZE, CROP_PCT = 224, 0.9
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
PROTOCOLS = ("vdeval", "vbench")


def vbench_transform(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, h, w): VBench's load_video + dino_transform(224) (see module docstring)."""
    from torchvision.transforms.functional import InterpolationMode, resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # float32 0-255, as load_video
    x = resize(x, 224, interpolation=InterpolationMode.BILINEAR, antialias=False)  # in float32: no rounding
    x = x.div(255.0)
    m = torch.tensor(MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def dino_pos_embed(pos_embed: torch.Tensor, height: int, width: int, patch: int = 16) -> torch.Tensor:
    """DINO's released interpolate_pos_encoding for an input of height x width (1, 1 + h0 * w0, D)."""
    n = pos_embed.shape[1] - 1
    h0, w0 = height // patch, width // patch
    if h0 * w0 == n and height == width:
        return pos_embed
    side = int(math.sqrt(n))
    grid = pos_embed[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, scale_factor=((h0 + 0.1) / math.sqrt(n), (w0 + 0.1) / math.sqrt(n)), mode="bicubic")
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1])
    return torch.cat([pos_embed[:, :1], grid], dim=1)


class DinoBackbone(Backbone):
    name = "dino"
    version = "vitb16"
    tier = "published"
    amp = True  # embeddings compared by cosine tolerate bfloat16 autocast on CUDA (not measured here: no GPU)
    provides = ("frame_embedding", "reference_embedding")
    protocol = (
        "shorter side to 248 (bicubic, antialiased), centre crop 224, [0, 1], ImageNet mean/std "
        "(timm eval transform, crop_pct 0.9); CLS token after the final norm, 768-d, L2-normalised"
    )

    # decoded at a short side of at most 448, twice the protocol's 224: its own resize does the last step
    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=448)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a batch of frames at a time: float32 copies at the decoded size and the ViT-B/16's
        # activations (a frame's whole length at 224 px short side for dino_vbench) and the (T, 768)
        # output. Declared, not measured here (needs the weights).
        b = min(self.batch_size, max(frames, 1))
        return b * (2 * 12 * height * width + 300 * 224 * max(224, 224 * width // max(height, 1)) * 4) + frames * 768 * 4

    def __init__(self, device: str = "cpu", batch_size: int = 32, protocol: str = "vdeval", **options):
        if protocol not in PROTOCOLS:
            raise WeightsError(f"dino: unknown protocol {protocol!r}", f"one of {', '.join(PROTOCOLS)}")
        super().__init__(device, **({"protocol": protocol} if protocol != "vdeval" else {}), **options)
        self.vbench = protocol == "vbench"
        require("timm", f"backbone {self.name!r}")
        self._path, self._sha = weights.require(WEIGHTS)
        self.batch_size = int(batch_size)

    network = ("model",)

    def check_weights(self) -> None:
        weights.check_format(self._path, "dino", WEIGHTS, ("safetensors",) if self._path.suffix == ".safetensors" else ("torch",))

    def build(self) -> None:
        timm = require("timm", f"backbone {self.name!r}")
        from safetensors.torch import load_file

        path = self._path
        with loading.made_on_meta():  # one copy of the weights while loading (loading.py)
            model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=0)
        try:
            sd = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
            loading.load_into(model, sd)
        except Exception as e:
            raise WeightsError(f"dino: {path} does not load into timm {TIMM_NAME}: {str(e).splitlines()[0][:200]}",
                               f"reinstall with `vdeval weights install {WEIGHTS} FILE`") from None
        self.model = model.eval().to(self.device)

    def weights_sha256(self) -> dict[str, str]:
        return {weights.ENTRIES[WEIGHTS].filename: self._sha}

    def label(self) -> str:
        return "dino@vitb16/vbench" if self.vbench else super().label()

    def forward_whole_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The CLS feature of DINO's ViT for an input of any size (its prepare_tokens, then timm's blocks)."""
        m = self.model
        tokens = m.patch_embed.proj(x).flatten(2).transpose(1, 2)  # conv stride 16: remainder dropped, as DINO
        tokens = torch.cat([m.cls_token.expand(len(x), -1, -1), tokens], dim=1)
        tokens = m.pos_drop(tokens + dino_pos_embed(m.pos_embed, x.shape[-2], x.shape[-1]))
        return m.norm(m.blocks(m.norm_pre(tokens)))[:, 0]

    @torch.no_grad()
    def encode_batch(self, chunk: np.ndarray) -> np.ndarray:
        if self.vbench:
            z = self.forward_whole_frame(vbench_transform(chunk).to(self.device))
        else:
            z = self.model(resize_center_crop(chunk, SIZE, int(SIZE / CROP_PCT), MEAN, STD).to(self.device))
        return F.normalize(z.float(), dim=-1).cpu().numpy()

    def encode(self, frames: np.ndarray) -> np.ndarray:
        return np.concatenate([self.encode_batch(frames[s:s + self.batch_size])
                               for s in range(0, len(frames), self.batch_size)])

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        if kind == "frame_embedding":
            return [{"value": np.concatenate([self.encode_batch(b) for b in c.batches(self.batch_size)])} for c in clips]
        if kind == "reference_embedding":
            out = []
            for c in clips:
                if c.reference_image is None:
                    raise FeatureError("dino backbone: this clip has no reference image",
                                       "reference features need an image-to-video prompt source")
                out.append({"value": self.encode(np.asarray(c.reference_image, np.uint8)[None])[0]})
            return out
        raise self.unknown_kind(kind)


class DinoVBench(DinoBackbone):
    """DINO ViT-B/16 with VBench's subject-consistency preprocessing (see the module docstring)."""

    name = "dino_vbench"
    version = "vitb16-2"  # 2: float32 resize of full-size frames, as VBench's load_video (was: uint8, short side <= 448)
    streams_input = True
    protocol = (
        "VBench load_video + dino_transform(224): full-size frames as float32 0-255, torchvision Resize(224, bilinear, "
        "antialias=False) in float32 (shorter side 224, aspect kept), no crop, /255, ImageNet mean/std; whole frame "
        "through the ViT with DINO's interpolate_pos_encoding (bicubic, +0.1); CLS token after the final norm, 768-d, "
        "L2-normalised"
    )

    def input_spec(self, kind: str) -> InputSpec:
        return FULL  # VBench resizes the decoded frame itself: no cap first

    def __init__(self, device: str = "cpu", batch_size: int = 32, **options):
        options.pop("protocol", None)
        super().__init__(device, batch_size, protocol="vbench", **options)
