"""Checkpoints: a directory with model.safetensors (weights) and config.json (architecture, diffusion
settings, training step, world settings, seed). Loading is safetensors only, never pickle."""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from reference_models.network import NetConfig, VideoDenoiser
from reference_models.vae import FrameVAE, VAEConfig
from vdeval.errors import CheckpointError
from vdeval.world import WorldSpec

FORMAT = "vdeval-reference/1"
PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_DIR = PACKAGE_DIR / "checkpoints"


@dataclass
class LoadedModel:
    model: VideoDenoiser
    config: dict  # the whole config.json
    path: Path
    sha256: str  # of model.safetensors
    vae: FrameVAE | None = None  # latent models: the frame-wise VAE their denoiser works under
    vae_sha256: str | None = None  # of vae.safetensors

    @property
    def step(self) -> int:
        return int(self.config["training"]["step"])

    @property
    def world(self) -> WorldSpec:
        return WorldSpec.from_dict(self.config["world"])

    @property
    def diffusion(self) -> dict:
        return self.config["diffusion"]


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def save_checkpoint(directory: str | Path, state_dict: dict[str, torch.Tensor], config: dict,
                    vae_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a checkpoint directory; latent models (config["latent"]) also get their VAE's weights."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, sd in (("model", state_dict), ("vae", vae_state)):
        if sd is not None:
            tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in sd.items()}
            _atomic_write(d / f"{name}.safetensors", lambda p, t=tensors: save_file(t, str(p), metadata={"format": FORMAT}))
    _atomic_write(d / "config.json", lambda p: p.write_text(json.dumps({"format": FORMAT, **config}, indent=2) + "\n"))
    return d


def check_safetensors(path: Path) -> None:
    """Validate the header and data extents before mmap-loading: a truncated or foreign file
    (a torch pickle, say) must be an error, never a bus error or an unpickle."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError("file shorter than a safetensors header")
        n = int.from_bytes(head, "little")
        if n > min(size - 8, 100 * 2**20):
            raise ValueError(f"header length {n} does not fit in a {size}-byte file")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError("header is not JSON") from None
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data = size - 8 - n
    for k, v in header.items():
        if k == "__metadata__":
            continue
        offs = v.get("data_offsets") if isinstance(v, dict) else None
        if not (isinstance(offs, list) and len(offs) == 2 and 0 <= offs[0] <= offs[1] <= data):
            raise ValueError(f"tensor {k!r} lies outside the file (truncated?)")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def shipped_names() -> list[str]:
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "config.json").is_file())


def resolve_checkpoint(spec: str | Path, search_dirs: Sequence[str | Path] = ()) -> Path:
    """'shipped:NAME', an absolute path, or a path relative to each of search_dirs, then the repo/package."""
    s = str(spec)
    if s.startswith("shipped:"):
        name = s.split(":", 1)[1]
        p = SHIPPED_DIR / name
        if not (p / "config.json").is_file():
            raise CheckpointError(f"no shipped reference checkpoint named {name!r}",
                                  f"shipped checkpoints are {shipped_names()}")
        return p
    p = Path(s).expanduser()
    candidates = [p] if p.is_absolute() else [Path(d) / p for d in search_dirs] + [PACKAGE_DIR.parent / p, PACKAGE_DIR / p, p]
    for c in candidates:
        if c.exists():
            return c.resolve()
    raise CheckpointError(f"reference checkpoint {s!r} not found (looked in {[str(c) for c in candidates]})",
                          "give a checkpoint directory with model.safetensors and config.json, or shipped:final")


def load_checkpoint(spec: str | Path, search_dirs: Sequence[str | Path] = (), device: str = "cpu") -> LoadedModel:
    path = resolve_checkpoint(spec, search_dirs)
    d = path if path.is_dir() else path.parent
    weights, cfg_path = d / "model.safetensors", d / "config.json"
    for f in (weights, cfg_path):
        if not f.is_file():
            raise CheckpointError(f"checkpoint {d} has no {f.name}",
                                  "a reference checkpoint is a directory with model.safetensors and config.json")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"checkpoint config {cfg_path} is not valid JSON ({e})",
                              "the file is corrupt; copy the checkpoint again") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{cfg_path} is not a reference-model config (format {config.get('format') if isinstance(config, dict) else None!r}, expected {FORMAT!r})",
                              "point at a directory written by reference_models.train")
    try:
        net_cfg = NetConfig.from_dict(config["architecture"])
        config["training"]["step"], config["world"], config["diffusion"]
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint config {cfg_path} lacks {e}", "the file is incomplete; copy it again") from None
    model = VideoDenoiser(net_cfg)
    model.load_state_dict(_read_weights(weights, model))
    model.eval().requires_grad_(False).to(device)
    if "latent" not in config:
        return LoadedModel(model, config, d, sha256_file(weights))
    vae = _load_vae(d, config, device)
    return LoadedModel(model, config, d, sha256_file(weights), vae, sha256_file(d / "vae.safetensors"))


def _load_vae(d: Path, config: dict, device: str) -> FrameVAE:
    weights = d / "vae.safetensors"
    if not weights.is_file():
        raise CheckpointError(f"latent checkpoint {d} has no vae.safetensors",
                              "a latent reference checkpoint ships its VAE next to model.safetensors; copy it again")
    try:
        vae = FrameVAE(VAEConfig.from_dict(config["latent"]["vae"]))
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"latent checkpoint config in {d} lacks {e}", "the file is incomplete; copy it again") from None
    vae.load_state_dict(_read_weights(weights, vae))
    return vae.eval().requires_grad_(False).to(device)


def _read_weights(weights: Path, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The safetensors state dict of `weights`, checked key by key and shape by shape against `model`."""
    try:
        check_safetensors(weights)
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot read weights {weights}: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                              "the file is corrupt or not safetensors; copy the checkpoint again") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} of another shape (e.g. {k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)})")
        raise CheckpointError(f"weights in {weights} do not fit the architecture in its config.json: " + ", ".join(parts),
                              "the weights and config come from different models; use a matching pair")
    return state

