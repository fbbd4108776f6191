"""The LAION aesthetic predictor on CLIP ViT-L/14, as VBench's aesthetic_quality runs it: a published
backbone giving one aesthetic score per frame (feature kind "frame_score").

VBench (vbench/aesthetic_quality.py): OpenAI CLIP ViT-L/14; frames as its load_video hands them over
(float32 0-255 from the decoded uint8 frames, full size: no rounding, no clamping, no short-side cap)
through its clip_transform(224): torchvision Resize(224, bicubic, antialias=False) in float32 (shorter
side to 224), CenterCrop(224), / 255, CLIP mean (0.48145466, 0.4578275, 0.40821073) / std
(0.26862954, 0.26130258, 0.27577711); encode_image in float32, L2-normalised; the head
nn.Linear(768, 1) with LAION's released sa_0_4_vit_l_14_linear.pth; score per frame on LAION's
1-10 scale (the metric divides by 10, as VBench). Frames are decoded a batch at a time as the network
reads them (streams_input): memory holds batch_size full-size frames, not the clip.
Heads (option head, weights manager entries): "laion-aesthetic-linear" (default; VBench's) or
"laion-aesthetic-mlp" (the improved predictor, sac+logos+ava1-l14-linearMSE.pth: Linear 768-1024,
Dropout, 1024-128, Dropout, 128-64, Dropout, 64-16, 16-1; dropout is inactive at eval). Either file
is a plain PyTorch state dict, loaded with weights_only=True; the head's input width must equal the
CLIP model's embedding width. CLIP weights come through the clip backbone's entries
(clip-vit-l-14-openai by default).
"""
from __future__ import annotations

import numpy as np
import torch

from vdeval.backbones import weights
from vdeval.backbones.clip import ClipBackbone
from vdeval.errors import WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEADS = ("laion-aesthetic-linear", "laion-aesthetic-mlp")


def vbench_clip_transform(frames: np.ndarray, size: int = 224) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, size, size): VBench's load_video (float32 0-255) then its
    clip_transform: bicubic resize in float32 (no rounding, no clamp), centre crop, / 255, CLIP mean/std."""
    from torchvision.transforms.functional import InterpolationMode, center_crop, resize

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = center_crop(resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False), [size, size])
    x = x.div(255.0)
    return (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)


def build_head(state: dict) -> torch.nn.Linear | torch.nn.Sequential:
    """The linear or MLP head that `state` (a released state dict) fits."""
    if set(state) == {"weight", "bias"}:
        head: torch.nn.Linear | torch.nn.Sequential = torch.nn.Linear(state["weight"].shape[1], 1)
    elif {"layers.0.weight", "layers.7.weight"} <= set(state):
        d = state["layers.0.weight"].shape[1]
        head = torch.nn.Sequential(torch.nn.Linear(d, 1024), torch.nn.Dropout(0.2), torch.nn.Linear(1024, 128),
                                   torch.nn.Dropout(0.2), torch.nn.Linear(128, 64), torch.nn.Dropout(0.1),
                                   torch.nn.Linear(64, 16), torch.nn.Linear(16, 1))
        state = {k.removeprefix("layers."): v for k, v in state.items()}
    else:
        raise ValueError(f"neither the linear (weight, bias) nor the MLP (layers.N.*) format: keys {sorted(state)[:6]}")
    head.load_state_dict(state)
    return head.eval()


class AestheticBackbone(ClipBackbone):
    name = "laion_aesthetic"
    version = "vbench-2"  # 2: float32 resize of full-size frames, as VBench's load_video (was: uint8, short side <= 448)
    tier = "published"
    amp = False
    streams_input = True
    provides = ("frame_score",)
    protocol = (
        "VBench load_video + clip_transform(224): full-size frames as float32 0-255, torchvision Resize(224, bicubic, "
        "antialias=False) in float32, CenterCrop 224, /255, CLIP mean/std; CLIP encode_image (float32), L2-normalised; "
        "LAION aesthetic head; score per frame (1-10)"
    )

    def input_spec(self, kind: str) -> InputSpec:
        return FULL  # VBench resizes the decoded frame itself: no cap first

    def __init__(self, device: str = "cpu", model: str = "ViT-L-14", pretrained: str = "openai",
                 head: str = "laion-aesthetic-linear", batch_size: int = 32, **options):
        if head not in HEADS:
            raise WeightsError(f"laion_aesthetic: unknown head {head!r}", f"one of {', '.join(HEADS)}")
        super().__init__(device, model=model, pretrained=pretrained, batch_size=batch_size, head=head, **options)
        self._head_path, self._head_sha = weights.require(head)
        self._head_file = self._head_path.name

    network = (*ClipBackbone.network, "head")

    def check_weights(self) -> None:
        super().check_weights()
        weights.check_format(self._head_path, "laion_aesthetic", self.options["head"], ("torch",))

    def build(self) -> None:
        super().build()
        path, head = self._head_path, self.options["head"]
        try:
            self.head = build_head(torch.load(path, map_location="cpu", weights_only=True)).to(self.device)
        except Exception as e:
            raise WeightsError(f"laion_aesthetic: {path} is not a released aesthetic head: {str(e).splitlines()[0][:200]}",
                               f"reinstall with `vdeval weights install {head} FILE`") from None
        width = self.model.visual.output_dim
        if self.head_width() != width:
            raise WeightsError(f"laion_aesthetic: head {head} takes {self.head_width()}-d embeddings, CLIP "
                               f"{self.options['model']} gives {width}", "use CLIP ViT-L-14 (768-d) with the LAION heads")

    def head_width(self) -> int:
        first = self.head if isinstance(self.head, torch.nn.Linear) else self.head[0]
        assert isinstance(first, torch.nn.Linear)  # build_head's MLP starts with one
        return int(first.in_features)

    def weights_sha256(self) -> dict[str, str]:
        return {**super().weights_sha256(), self._head_file: self._head_sha}

    def label(self) -> str:
        return f"laion_aesthetic@{self.options['head'].removeprefix('laion-aesthetic-')}/{super().label().split('@', 1)[1]}"

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return vbench_clip_transform(frames, self.size)

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for c in clips:
            scores = []
            for batch in c.batches(self.batch_size):
                z = torch.from_numpy(self.encode_frames(batch)).to(self.device)  # L2-normalised, float32
                scores.append(self.head(z).squeeze(-1).float().cpu().numpy())
            out.append({"value": np.concatenate(scores) if scores else np.zeros(0, np.float32)})
        return out
