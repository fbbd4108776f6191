"""open_clip CLIP as a published image-text backbone.

Default ViT-B-32 with LAION-2B weights (laion2b_s34b_b79k); options `model` and `pretrained`
select others from the weights table (e.g. pretrained="openai", model="ViT-L-14"), or
`pretrained` may be a local checkpoint path (state dict .bin/.pt/.safetensors or an OpenAI
TorchScript archive), used as is and recorded by sha256. Loading never unpickles: state dicts are
read with torch.load(weights_only=True) or safetensors, and TorchScript archives (which can run
code when loaded) only when their sha256 is a published OpenAI file's; their tensors are copied out.

Protocol, as open_clip's eval transform for the model (ViT-B-32: 224): each frame resized so its
shorter side is 224 (bicubic, antialiased, like PIL), centre-cropped to 224 x 224, clamped to
[0, 1], normalised with the model's mean/std (OpenAI's); text through the model's open_clip
tokenizer (77 tokens, truncated). Frame, reference and text embeddings are L2-normalised; the
video embedding is the mean of the clip's normalised frame embeddings, normalised again.
"""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vdeval.backbones import loading, weights
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError, WeightsError
from vdeval.extras import require
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec


def resize_center_crop(frames: np.ndarray, size: int, resize_to: int, mean, std, mode: str = "bicubic") -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, size, size): shorter side to `resize_to` (antialiased),
    centre crop `size`, clamp to [0, 1] (PIL output is clipped to uint8), normalise."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    scale = resize_to / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode=mode, align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top:top + size, left:left + size]
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def _entry_for(model: str, pretrained: str) -> weights.WeightsEntry | None:
    for e in weights.ENTRIES.values():
        if e.backbone == "clip" and e.model == model and e.tag == pretrained:
            return e
    return None


class ClipBackbone(Backbone):
    name = "clip"
    version = "openclip"
    tier = "published"
    amp = True  # embeddings compared by cosine tolerate bfloat16 autocast on CUDA (not measured here: no GPU)
    provides: ClassVar[tuple[str, ...]] = ("frame_embedding", "text_embedding", "reference_embedding", "video_embedding")
    protocol = (
        "frames: shorter side to the model's image size (224 for ViT-B-32; bicubic, antialiased), centre "
        "crop, [0, 1], normalised with the model's mean/std (open_clip eval transform); text: open_clip "
        "tokenizer, 77 tokens; L2-normalised embeddings; video = normalised mean of frame embeddings"
    )

    # decoded at a short side of at most 448 (area), twice the 224 the protocol resizes to, so the
    # protocol's own resize does the last step as it does on full-size frames
    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=448)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a batch of frames at a time: float32 copies at the decoded size and at 224 px, the ViT's
        # activations (up to ViT-L/14 for laion_aesthetic) and the (T, D) output. Declared, not
        # measured here (needs the weights).
        b = min(self.batch_size, max(frames, 1))
        return b * (2 * 12 * height * width + 400 * 224 * 224 * 4) + frames * 1024 * 4

    def __init__(self, device: str = "cpu", model: str = "ViT-B-32", pretrained: str = "laion2b_s34b_b79k",
                 batch_size: int = 32, **options):
        super().__init__(device, model=model, pretrained=pretrained, **options)
        require("open_clip", f"backbone {self.name!r}")

        self.batch_size = int(batch_size)
        local = Path(pretrained).expanduser()
        entry = _entry_for(model, pretrained)
        if entry is not None:
            path, self._sha = weights.require(entry.name)
        elif local.suffix in (".pt", ".pth", ".bin", ".safetensors") or "/" in pretrained:
            if not local.is_file():
                raise WeightsError(f"clip: checkpoint {local} not found", "pass an existing file as the pretrained option")
            from vdeval.store import sha256_file

            path, self._sha = local, sha256_file(local)
        else:
            known = [f"{e.model}/{e.tag}" for e in weights.ENTRIES.values() if e.backbone == "clip"]
            raise WeightsError(f"clip: no weights known for model {model!r} pretrained {pretrained!r}",
                               f"known: {', '.join(known)}; or pass a checkpoint path as pretrained")
        self._path, self._file = path, path.name
        self._entry = entry.name if entry is not None else None

    network: ClassVar[tuple[str, ...]] = ("model", "tokenizer", "size", "mean", "std", "interp")

    def check_weights(self) -> None:
        weights.check_format(self._path, "clip", self._entry, ("safetensors", "torch", "torchscript"))

    def build(self) -> None:
        open_clip = require("open_clip", f"backbone {self.name!r}")
        path, model = self._path, self.options["model"]
        quick_gelu = self.options["pretrained"] == "openai" or self._is_torchscript(path)
        try:
            with loading.made_on_meta() as where:  # one copy of the weights while loading (loading.py)
                self.model = open_clip.create_model(model, pretrained=None, force_quick_gelu=quick_gelu, device=where)
        except RuntimeError as e:
            raise WeightsError(f"clip: unknown open_clip model {model!r}: {e}") from None
        # open_clip's load_checkpoint adapts the checkpoint's keys, then calls load_state_dict: ours
        self.model.load_state_dict = functools.partial(loading.load_into, self.model)
        try:
            self._load(path)
        except WeightsError:
            raise
        except Exception as e:
            raise WeightsError(f"clip: {path} does not load into open_clip {model}: {str(e).splitlines()[0][:200]}",
                               "check the model option matches the checkpoint") from None
        finally:
            del self.model.load_state_dict
        for name in loading.meta_buffers(self.model):  # the text tower's causal mask: not in checkpoints
            if name.rsplit(".", 1)[-1] != "attn_mask":
                raise WeightsError(f"clip: {path} leaves {name} of open_clip {model} unset", "check the model option")
            mask = self.model.get_buffer(name)
            self.model.get_submodule(name.rpartition(".")[0]).register_buffer(
                name.rsplit(".", 1)[-1], torch.full(mask.shape, float("-inf")).triu_(1), persistent=False)
        self.model.eval().to(self.device)
        self.tokenizer = open_clip.get_tokenizer(model)
        cfg = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        size = self.model.visual.image_size
        self.size = size[0] if isinstance(size, (tuple, list)) else int(size)
        self.mean = cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)
        self.std = cfg.get("std", open_clip.OPENAI_DATASET_STD)
        self.interp = cfg.get("interpolation", "bicubic")

    def _load(self, path: Path) -> None:
        """Never unpickles: safetensors, or torch.load(weights_only=True), or for the published
        OpenAI TorchScript archives only (matched by their full sha256) the archive's tensors."""
        open_clip = require("open_clip", f"backbone {self.name!r}")

        if path.suffix != ".safetensors" and self._is_safetensors(path):
            # open_clip picks the reader by suffix; the HF hub may hand out safetensors under any name
            with tempfile.TemporaryDirectory() as tmp:
                link = Path(tmp) / "weights.safetensors"
                link.symlink_to(path.resolve())
                open_clip.load_checkpoint(self.model, str(link))
            return
        if self._is_torchscript(path):
            if not any(e.sha256 == self._sha for e in weights.ENTRIES.values() if e.sha256):
                raise WeightsError(
                    f"clip: {path} is a TorchScript archive that is not a published OpenAI file (sha256 "
                    f"{self._sha[:16]}...); TorchScript can run code when loaded, so only published ones are",
                    "save its state dict as safetensors (safetensors.torch.save_file) and install that")
            state = torch.jit.load(str(path), map_location="cpu").state_dict()
            for key in ("input_resolution", "context_length", "vocab_size"):  # as open_clip drops them
                state.pop(key, None)
            # buffers the model computes itself (non-persistent, e.g. attn_mask) TorchScript saves anyway
            computed = {k for k, _ in self.model.named_buffers()} - set(self.model.state_dict())
            state = {k: v for k, v in state.items() if k not in computed}
            with tempfile.TemporaryDirectory() as tmp:
                plain = Path(tmp) / "state_dict.pt"
                torch.save(state, plain)  # plain tensors: read back with weights_only=True
                open_clip.load_checkpoint(self.model, str(plain), weights_only=True)
            return
        # weights_only=True: a crafted pickle ("custom weights") is refused instead of run
        open_clip.load_checkpoint(self.model, str(path), weights_only=True)

    @staticmethod
    def _is_safetensors(path: Path) -> bool:
        with open(path, "rb") as fh:
            head = fh.read(9)
        return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000

    @staticmethod
    def _is_torchscript(path: Path) -> bool:
        import zipfile

        try:
            with zipfile.ZipFile(path) as z:
                return any(n.endswith("constants.pkl") for n in z.namelist())
        except (zipfile.BadZipFile, OSError):
            return False

    def weights_sha256(self) -> dict[str, str]:
        return {self._file: self._sha}

    def label(self) -> str:
        p = self.options["pretrained"]
        return f"clip@{self.options['model']}/{Path(p).name if '/' in p else p}"

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        return resize_center_crop(frames, self.size, self.size, self.mean, self.std, self.interp)

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for s in range(0, len(frames), self.batch_size):
            x = self.preprocess(frames[s:s + self.batch_size]).to(self.device)
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu().numpy())
        return np.concatenate(out)

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        if kind == "frame_embedding":
            return [{"value": self.encode_frames(c.frames)} for c in clips]
        if kind == "video_embedding":
            out = []
            for c in clips:
                m = self.encode_frames(c.frames).mean(0)
                out.append({"value": (m / max(np.linalg.norm(m), 1e-12)).astype(np.float32)})
            return out
        if kind == "text_embedding":
            tok = self.tokenizer([c.prompt for c in clips]).to(self.device)
            z = F.normalize(self.model.encode_text(tok).float(), dim=-1).cpu().numpy()
            return [{"value": v} for v in z]
        if kind == "reference_embedding":
            for c in clips:
                if c.reference_image is None:
                    raise FeatureError("clip backbone: this clip has no reference image",
                                       "reference features need an image-to-video prompt source")
            z = self.encode_frames(np.stack([np.asarray(c.reference_image, np.uint8) for c in clips])) if len(
                {np.asarray(c.reference_image).shape for c in clips}) == 1 else np.stack(
                [self.encode_frames(np.asarray(c.reference_image, np.uint8)[None])[0] for c in clips])
            return [{"value": v} for v in z]
        raise self.unknown_kind(kind)
