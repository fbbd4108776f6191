"""DINO ViT-B/16 (self-supervised, Caron et al. 2021) through timm, as a published image backbone
for identity consistency (the subject-consistency features of VBench).

Protocol, as timm's eval transform for vit_base_patch16_224.dino: each frame resized so its
shorter side is int(224 / 0.9) = 248 (bicubic, antialiased), centre-cropped to 224 x 224,
[0, 1], normalised with ImageNet mean (0.485, 0.456, 0.406) / std (0.229, 0.224, 0.225);
features: the CLS token of the last layer after the final norm (768-d, no head), L2-normalised.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vdeval.backbones import weights
from vdeval.backbones.base import Backbone
from vdeval.video.protocol import InputSpec
from vdeval.backbones.clip import resize_center_crop
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput

WEIGHTS = "dino-vitb16"
TIMM_NAME = "vit_base_patch16_224.dino"
SIZE, CROP_PCT = 224, 0.9
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


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

    def __init__(self, device: str = "cpu", batch_size: int = 32, **options):
        super().__init__(device, **options)
        import timm
        from safetensors.torch import load_file

        path, self._sha = weights.require(WEIGHTS)
        self.model = timm.create_model(TIMM_NAME, pretrained=False, num_classes=0)
        try:
            sd = load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu", weights_only=True)
            self.model.load_state_dict(sd)
        except Exception as e:
            raise WeightsError(f"dino: {path} does not load into timm {TIMM_NAME}: {str(e).splitlines()[0][:200]}",
                               f"reinstall with `vdeval weights install {WEIGHTS} FILE`") from None
        self.model.eval().to(device)
        self.batch_size = int(batch_size)

    def weights_sha256(self) -> dict[str, str]:
        return {weights.ENTRIES[WEIGHTS].filename: self._sha}

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(frames), self.batch_size):
            x = resize_center_crop(frames[s:s + self.batch_size], SIZE, int(SIZE / CROP_PCT), MEAN, STD).to(self.device)
            out.append(F.normalize(self.model(x).float(), dim=-1).cpu().numpy())
        return np.concatenate(out)

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        if kind == "frame_embedding":
            return [{"value": self.encode(c.video.frames)} for c in clips]
        if kind == "reference_embedding":
            out = []
            for c in clips:
                if c.reference_image is None:
                    raise FeatureError("dino backbone: this clip has no reference image",
                                       "reference features need an image-to-video prompt source")
                out.append({"value": self.encode(np.asarray(c.reference_image, np.uint8)[None])[0]})
            return out
        raise FeatureError(f"backbone 'dino' does not compute {kind!r}", f"it provides {', '.join(self.provides)}")
