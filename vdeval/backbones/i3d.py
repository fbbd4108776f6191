"""The I3D video backbone of published FVD numbers: StyleGAN-V's TorchScript port of the TF-hub
I3D trained on Kinetics-400 (`i3d_torchscript.pt`). Its forward is
`forward(x, rescale: bool, resize: bool, return_features: bool)` and gives 400 values per clip.

Protocol (StyleGAN-V "fvd2048_16f"): the first `frames` (16) consecutive frames of each clip it
is given (a real video arrives already cut to a random 16-frame window: Suite.real_ingest);
a shorter clip is an error (StyleGAN-V discards short videos) rather than silently padded.
RGB uint8 -> float x / 127.5 - 1 in [-1, 1]; layout B x C x T x H x W; the detector resizes to
224 x 224 itself (resize=True, rescale=False). StyleGAN-V feeds [0, 255] with rescale=True; the
rescaling is affine and the resize linear, so the two give the same features. return_features=True:
the 400 pre-softmax logits. The metric side of the protocol (population covariance, 2048 clips)
lives in vdeval.metrics.fvd.
"""
from __future__ import annotations

import numpy as np
import torch

from vdeval.backbones import weights
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec

WEIGHTS = "i3d"
FEATURES = 400
SIGNATURE = ("x", "rescale", "resize", "return_features")


def load_detector(path, device: str = "cpu"):
    """torch.jit.load with checks that the file really is the I3D detector."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript is how the detector is published
            module = torch.jit.load(str(path), map_location=device)
    except Exception as e:
        raise WeightsError(f"i3d: {path} is not a TorchScript file ({str(e).splitlines()[0][:80]})",
                           "install the StyleGAN-V detector with `vdeval weights install i3d FILE`") from None
    try:
        args = tuple(a.name for a in module.forward.schema.arguments)[1:]
    except Exception:
        args = ()
    if args[:4] != SIGNATURE:
        raise WeightsError(f"i3d: {path} is a TorchScript module with forward{args}, not the I3D detector "
                           f"forward{SIGNATURE}", "install the StyleGAN-V i3d_torchscript.pt with `vdeval weights install i3d FILE`")
    return module.eval()


class I3DBackbone(Backbone):
    name = "i3d"
    version = "stylegan-v"
    tier = "published"
    provides = ("video_embedding",)
    protocol = (
        "first 16 consecutive frames (shorter clips rejected), RGB/127.5-1 in [-1, 1], B x C x T x H x W, "
        "resized to 224x224 by the detector (resize=True, rescale=False), return_features=True: 400 "
        "Kinetics-400 logits (StyleGAN-V fvd2048_16f)"
    )

    def input_spec(self, kind: str) -> InputSpec:
        # the first `frames` frames at a short side of at most 448; the protocol then resizes to 224 x 224
        return InputSpec(max_short_side=448, frames=self.frames)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # its `frames` frames as float32 at the decoded size and at 224 x 224 and I3D's activations
        # (one clip of a batch). Declared, not measured here (needs the weights).
        return 2 * frames * 12 * height * width + frames * 224 * 224 * 4 * 200

    def __init__(self, device: str = "cpu", frames: int = 16, batch_size: int = 8, **options):
        super().__init__(device, frames=int(frames), **options)
        self.frames, self.batch_size = int(frames), int(batch_size)
        self._path, self._sha = weights.require(WEIGHTS)

    network = ("detector",)

    def check_weights(self) -> None:
        weights.check_format(self._path, "i3d", WEIGHTS, ("torchscript",))

    def build(self) -> None:
        self.detector = load_detector(self._path, self.device)

    def weights_sha256(self) -> dict[str, str]:
        return {weights.ENTRIES[WEIGHTS].filename: self._sha}

    def label(self) -> str:
        return f"i3d@stylegan-v-{self.frames}f"

    def preprocess(self, clip: ClipInput) -> torch.Tensor:
        f = clip.frames
        if len(f) < self.frames:
            raise FeatureError(f"i3d: clip has {len(f)} frames, the FVD protocol takes the first {self.frames}",
                               "generate longer clips, or set the i3d option frames to at most the clip length")
        x = torch.from_numpy(np.ascontiguousarray(f[: self.frames])).float() / 127.5 - 1.0  # T H W C
        return x.permute(3, 0, 1, 2)  # C T H W

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        self.check_kind(kind)
        out = []
        for s in range(0, len(clips), self.batch_size):
            chunk = clips[s:s + self.batch_size]
            shapes = {c.frames.shape[1:3] for c in chunk}
            groups = [chunk] if len(shapes) == 1 else [[c] for c in chunk]  # mixed sizes: one at a time
            for g in groups:
                x = torch.stack([self.preprocess(c) for c in g]).to(self.device)
                y = self.detector(x, rescale=False, resize=True, return_features=True)
                if not isinstance(y, torch.Tensor) or y.ndim != 2 or y.shape != (len(g), FEATURES):
                    shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise WeightsError(f"i3d: the detector returned {shape} for {len(g)} clips, the I3D gives ({len(g)}, {FEATURES})",
                                       "the installed i3d_torchscript.pt is not the StyleGAN-V I3D; reinstall it")
                out += [{"value": v.astype(np.float32)} for v in y.float().cpu().numpy()]
        return out
