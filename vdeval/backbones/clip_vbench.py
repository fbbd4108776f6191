"""CLIP ViT-B/32 as VBench's background_consistency runs it (backbone `clip_vbench`).

VBench (vbench/background_consistency.py, 45e79ec): OpenAI's ViT-B/32 (`ViT-B-32.pt`, loaded by
OpenAI's clip.load, jit=False: float32 on CPU, float16 on CUDA), frames as its load_video hands them
over (float32 0-255, full size) through clip_transform(224): torchvision Resize(224, bicubic,
antialias=False) in float32, CenterCrop(224), / 255, CLIP mean/std (no clamp); encode_image,
L2-normalised per frame. The metric's loop (background_consistency) is vdeval's, tested against
VBench's. Differences from backbone `clip`: `clip` defaults to LAION-2B weights and open_clip's eval
transform (antialiased resize, clamped to [0, 1]); this one fixes OpenAI's weights (weights manager
entry clip-vit-b-32-openai) and VBench's transform, and runs in float32 everywhere (VBench on CUDA
runs the model in float16). Frames are decoded a batch at a time as the model reads them.
"""
from __future__ import annotations

import numpy as np
import torch

from vdeval.backbones.aesthetic import vbench_clip_transform
from vdeval.backbones.clip import ClipBackbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec


class ClipVBench(ClipBackbone):
    name = "clip_vbench"
    version = "vbench"
    amp = False  # float32: numbers compared with VBench's
    streams_input = True
    provides = ("frame_embedding",)
    protocol = (
        "VBench load_video + clip_transform(224): full-size frames as float32 0-255, torchvision Resize(224, bicubic, "
        "antialias=False) in float32, CenterCrop 224, /255, CLIP mean/std, no clamp; OpenAI CLIP ViT-B/32 "
        "encode_image (float32), L2-normalised per frame"
    )

    def __init__(self, device: str = "cpu", batch_size: int = 32, **options):
        for fixed, want in (("model", "ViT-B-32"), ("pretrained", "openai")):
            if options.pop(fixed, want) != want:
                raise WeightsError(f"clip_vbench: VBench's protocol fixes {fixed}={want!r}",
                                   "use backbone `clip` for other CLIP models")
        super().__init__(device, model="ViT-B-32", pretrained="openai", batch_size=batch_size, **options)

    def input_spec(self, kind: str) -> InputSpec:
        return FULL  # VBench resizes the decoded frame itself: no cap first

    def label(self) -> str:
        return "clip@vbench:ViT-B-32/openai"

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return vbench_clip_transform(frames, self.size)

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        return [{"value": np.concatenate([self.encode_frames(b) for b in c.batches(self.batch_size)])} for c in clips]
