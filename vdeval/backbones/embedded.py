"""The embedded backbone: small frame, video and text encoders trained on the shapes world and
shipped inside the package, so every offline suite runs with no download.

Protocol (EmbeddedBackbone.protocol says the same in one line):
  frames   each frame is resized to 32x32 (bilinear, antialiased, aspect ratio not kept),
           RGB scaled to [-1, 1], layout C x H x W; frame embeddings are computed for every frame.
  video    8 frames: when T >= 8, indices round(linspace(0, T-1, 8)) (uniform over the clip, so a
           16-frame clip is seen at stride ~2); when T < 8 the last frame is repeated (padding
           shows a stop, never invented motion); then frames as above, layout C x T x H x W.
  text     lower-cased, punctuation removed, split on spaces, words of vdeval.world.vocabulary()
           (others map to an <unk> token), at most 40 tokens.
All embeddings are L2-normalised 128-d vectors in one space (trained contrastively), so cosine
similarity between text and frame/video embeddings is meaningful.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError, WeightsError
from vdeval.features import ClipInput
from vdeval.store import sha256_file
from vdeval.video.protocol import InputSpec

WEIGHTS_DIR = Path(__file__).parent / "embedded_weights"
WEIGHTS_FILE = "embedded.safetensors"
CONFIG_FILE = "config.json"

SIZE = 32
FRAMES = 8
MAX_TOKENS = 40
PAD, UNK = 0, 1  # token ids; vocabulary words start at 2

DEFAULT_CONFIG = {
    "dim": 128, "frame_widths": [24, 48, 96, 128], "video_widths": [24, 48, 96, 128],
    "text_dim": 64, "text_layers": 2, "text_heads": 4, "size": SIZE, "frames": FRAMES, "max_tokens": MAX_TOKENS,
    "video_stem": "strided",
}


def _conv(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(min(8, cout // 4), cout), nn.ReLU(inplace=True))


def _conv3d(cin, cout, kernel, stride, pad):
    return nn.Sequential(nn.Conv3d(cin, cout, kernel, stride, pad), nn.GroupNorm(min(8, cout // 4), cout), nn.ReLU(inplace=True))


class FrameEncoder(nn.Module):
    """32x32 frame -> D. GroupNorm, not BatchNorm: a clip's features never depend on its batch."""

    def __init__(self, widths, dim):
        super().__init__()
        w = widths
        self.trunk = nn.Sequential(_conv(3, w[0], 1), _conv(w[0], w[1], 2), _conv(w[1], w[2], 2), _conv(w[2], w[3], 2))
        self.proj = nn.Linear(2 * w[3], dim)

    def forward(self, x):  # (N, 3, 32, 32)
        h = self.trunk(x)
        # avg and max pooling: colour/shape identity wherever the object is
        return self.proj(torch.cat([h.mean((2, 3)), h.amax((2, 3))], 1))


class VideoEncoder(nn.Module):
    """3D convolutions over (C, 8, 32, 32): the first layers see pixel motion of 1-2 px per frame."""

    def __init__(self, widths, dim, stem: str = "strided"):
        super().__init__()
        w = widths
        if stem == "fine":  # full-resolution first layer, then pool: keeps the small shapes' outlines
            first = nn.Sequential(_conv3d(3, w[0], 3, 1, 1), nn.MaxPool3d((1, 2, 2)))
        else:
            first = _conv3d(3, w[0], (3, 4, 4), (1, 2, 2), (1, 1, 1))
        self.trunk = nn.Sequential(
            first,  # 8 x 16 x 16
            _conv3d(w[0], w[1], 3, (1, 2, 2), 1),  # 8 x 8 x 8
            _conv3d(w[1], w[2], 3, (2, 2, 2), 1),  # 4 x 4 x 4
            _conv3d(w[2], w[3], 3, (2, 2, 2), 1),  # 2 x 2 x 2
        )
        self.proj = nn.Linear(2 * w[3], dim)

    def forward(self, x):  # (N, 3, 8, 32, 32)
        h = self.trunk(x)
        return self.proj(torch.cat([h.mean((2, 3, 4)), h.amax((2, 3, 4))], 1))


class TextEncoder(nn.Module):
    def __init__(self, vocab_size, dim, text_dim, layers, heads, max_tokens):
        super().__init__()
        self.tok = nn.Embedding(vocab_size, text_dim, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(max_tokens, text_dim))
        layer = nn.TransformerEncoderLayer(text_dim, heads, 2 * text_dim, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.proj = nn.Linear(text_dim, dim)

    def forward(self, tokens):  # (N, L) int64, PAD-padded
        pad = tokens == PAD
        h = self.enc(self.tok(tokens) + self.pos[: tokens.shape[1]], src_key_padding_mask=pad)
        keep = (~pad).float().unsqueeze(-1)
        return self.proj((h * keep).sum(1) / keep.sum(1).clamp(min=1))


class EmbeddedModel(nn.Module):
    def __init__(self, config: dict, vocab: list[str]):
        super().__init__()
        c = {**DEFAULT_CONFIG, **config}
        self.config = c
        self.vocab = list(vocab)
        self.word_ids = {w: i + 2 for i, w in enumerate(self.vocab)}
        self.frame = FrameEncoder(c["frame_widths"], c["dim"])
        self.video = VideoEncoder(c["video_widths"], c["dim"], c["video_stem"])
        self.text = TextEncoder(len(self.vocab) + 2, c["dim"], c["text_dim"], c["text_layers"], c["text_heads"], c["max_tokens"])
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        rows = []
        for t in texts:
            words = re.sub(r"[^a-z\- ]", " ", t.lower()).split()[: self.config["max_tokens"]]
            rows.append([self.word_ids.get(w, UNK) for w in words] or [UNK])
        out = torch.zeros(len(rows), max(len(r) for r in rows), dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def embed_frames(self, x):
        return F.normalize(self.frame(x), dim=-1)

    def embed_video(self, x):
        return F.normalize(self.video(x), dim=-1)

    def embed_text(self, tokens):
        return F.normalize(self.text(tokens), dim=-1)


# ---- preprocessing (the protocol) ---------------------------------------------------------------

def frames_to_input(frames: np.ndarray, size: int = SIZE) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (T, 3, size, size) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x


def sample_indices(num_frames: int, frames: int = FRAMES) -> np.ndarray:
    """Uniform over the clip when long enough; otherwise every frame, then the last one repeated."""
    if num_frames >= frames:
        return np.round(np.linspace(0, num_frames - 1, frames)).astype(int)
    return np.concatenate([np.arange(num_frames), np.full(frames - num_frames, num_frames - 1)])


def video_to_input(frames: np.ndarray, size: int = SIZE, n: int = FRAMES) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float32 (3, n, size, size) in [-1, 1]."""
    return frames_to_input(frames[sample_indices(len(frames), n)], size).permute(1, 0, 2, 3)


def load_model(weights_dir: str | Path = WEIGHTS_DIR) -> tuple[EmbeddedModel, str]:
    """The shipped model and the sha256 of its weights file; WeightsError when it is missing."""
    d = Path(weights_dir)
    wpath, cpath = d / WEIGHTS_FILE, d / CONFIG_FILE
    for p in (wpath, cpath):
        if not p.is_file():
            raise WeightsError(
                f"embedded backbone: {p.name} not found at {p}",
                "it ships inside the package; reinstall vdeval (pip install -e .) or retrain with "
                "`python -m vdeval.backbones.train_embedded`",
            )
    cfg = json.loads(cpath.read_text())
    model = EmbeddedModel(cfg["model"], cfg["vocab"])
    try:
        model.load_state_dict(load_file(str(wpath)))
    except Exception as e:  # wrong architecture or a torn file: say so, never run random weights
        raise WeightsError(f"embedded backbone: {wpath} does not match {cpath.name}: {str(e).splitlines()[0]}",
                           "retrain with `python -m vdeval.backbones.train_embedded`") from None
    model.eval()
    return model, sha256_file(wpath)


class EmbeddedBackbone(Backbone):
    name = "embedded"
    version = "1"
    tier = "embedded"
    provides = ("frame_embedding", "video_embedding", "text_embedding", "reference_embedding")
    protocol = (
        "frames resized to 32x32 (bilinear, antialiased, aspect not kept), RGB in [-1, 1], C x H x W; "
        "video: 8 frames at round(linspace(0, T-1, 8)) (T < 8: last frame repeated), C x T x H x W; "
        "text: lower-case world-vocabulary tokens (<unk> otherwise), max 40; outputs L2-normalised 128-d"
    )

    domain = "world"
    # the protocol resizes to 32 x 32: decoding at a short side of at most 64 loses nothing of it
    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=64)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # 64 frames at a time as float32 at the decoded size (and their 32 x 32 copies), the
        # network's activations at 32 x 32 and the (T, 128) output
        chunk = min(frames, 64)
        return 2 * chunk * 12 * height * width + chunk * 3 * 32 * 32 * 4 * 64 + frames * 128 * 4

    def __init__(self, device: str = "cpu", weights_dir: str | None = None, **options):
        if weights_dir is not None:
            options["weights_dir"] = str(weights_dir)
        super().__init__(device, **options)
        self.model, self._sha = load_model(weights_dir or WEIGHTS_DIR)
        self.model.to(device)

    def weights_sha256(self) -> dict[str, str]:
        return {WEIGHTS_FILE: self._sha}

    @torch.no_grad()
    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        m, dev = self.model, self.device
        if kind == "frame_embedding":
            out = []
            for c in clips:  # per clip (clips differ in length and size), in chunks: long clips stay in memory
                f = c.frames
                z = [m.embed_frames(frames_to_input(f[i:i + 64]).to(dev)).cpu().numpy() for i in range(0, len(f), 64)]
                out.append({"value": np.concatenate(z)})
            return out
        if kind == "video_embedding":
            x = torch.stack([video_to_input(c.frames) for c in clips]).to(dev)
            return [{"value": v} for v in m.embed_video(x).cpu().numpy()]
        if kind == "text_embedding":
            # batched only among prompts of equal token count: no padding, so a prompt's embedding
            # never depends on what else is in the batch
            toks = [m.tokenize([c.prompt])[0] for c in clips]
            by_index: dict[int, dict[str, np.ndarray]] = {}
            for n in sorted({len(t) for t in toks}):
                idx = [i for i, t in enumerate(toks) if len(t) == n]
                z = m.embed_text(torch.stack([toks[i] for i in idx]).to(dev)).cpu().numpy()
                for i, v in zip(idx, z):
                    by_index[i] = {"value": v}
            return [by_index[i] for i in range(len(clips))]
        if kind == "reference_embedding":
            out = []
            for c in clips:
                if c.reference_image is None:
                    raise FeatureError("embedded backbone: this clip has no reference image",
                                       "reference features need an image-to-video prompt source")
                img = np.asarray(c.reference_image)
                if img.ndim != 3 or img.shape[-1] != 3 or img.dtype != np.uint8:
                    raise FeatureError(f"embedded backbone: reference image must be uint8 (H, W, 3), got {img.dtype} {img.shape}")
                out.append({"value": m.embed_frames(frames_to_input(img[None]).to(dev))[0].cpu().numpy()})
            return out
        raise self.unknown_kind(kind)
