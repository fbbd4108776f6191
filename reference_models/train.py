"""Train reference models on the shapes world.

    python -m reference_models.train --config reference_models/configs/reference.json --out reference_models/runs/ref

One process can train several models interleaved (e.g. the full model and its no-temporal
ablation): model i takes a step on every `every`-th iteration. Each model writes
OUT/<name>/step_<N>/ (EMA weights + config.json, the shippable form) every `save_every` steps and
OUT/<name>/last/ (weights, EMA, optimizer, step) to resume from. Rerunning the same command
resumes from `last`; data, noise and timesteps are pure functions of (seed, step), so a resumed
run continues exactly as the uninterrupted one would.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from safetensors.torch import load_file, save_file

from reference_models.checkpoint import save_checkpoint
from reference_models.data import WorldStream, heldout_captions
from reference_models.network import VELOCITY_SCALE, NetConfig, VideoDenoiser, count_parameters
from reference_models.tokenizer import CaptionTokenizer
from reference_models.train_vae import load_vae
from reference_models.vae import FrameVAE
from vdeval.errors import VdevalError
from vdeval.world import WorldSpec

DEFAULTS = {
    "seed": 0,
    "world": {},
    "diffusion": {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"},
    "batch_size": 8,
    "lr": 1e-3,
    "warmup": 200,
    "min_lr_fraction": 0.1,
    "ema_decay": 0.999,
    "grad_clip": 1.0,
    "caption_dropout": 0.1,
    "task_probs": {"t2v": 0.5, "i2v": 0.3, "continue": 0.2},
    "heldout": {"count": 64, "seed": 1234},
    "save_every": 500,
    "log_every": 50,
    "threads": 1,
    "models": [{"name": "full", "net": {}, "steps": 1000, "every": 1}],
}


def load_config(path: str | Path) -> dict:
    try:
        user = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise VdevalError(f"cannot read training config {path}: {e}", "give a JSON file like reference_models/configs/reference.json") from None
    return load_config_dict(user)


def load_config_dict(user: dict) -> dict:
    """The training config: the user's keys over DEFAULTS (diffusion settings merged key by key)."""
    cfg = {**DEFAULTS, **user}
    cfg["diffusion"] = {**DEFAULTS["diffusion"], **user.get("diffusion", {})}
    return cfg


def make_scheduler(diffusion: dict) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=diffusion["num_train_timesteps"], beta_schedule=diffusion["beta_schedule"],
                         prediction_type=diffusion["prediction_type"], clip_sample=False)


def lr_at(step: int, cfg: dict, total: int) -> float:
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    frac = min(1.0, (step - cfg["warmup"]) / max(1, total - cfg["warmup"]))
    lo = cfg["min_lr_fraction"]
    return cfg["lr"] * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac)))


class Trainee:
    """One model being trained: network, EMA copy, optimizer, step counter, and its files."""

    def __init__(self, spec: dict, cfg: dict, out: Path, vocab_size: int, vae: FrameVAE | None = None):
        self.name, self.every, self.total = spec["name"], int(spec.get("every", 1)), int(spec["steps"])
        self.vae = vae  # latent models: frames are encoded by this frozen VAE before noising
        latent = {"in_channels": vae.cfg.latent_channels, "patch": 1} if vae is not None else {}
        self.net_cfg = NetConfig(**{"vocab_size": vocab_size, **latent, **spec.get("net", {})})
        torch.manual_seed(cfg["seed"])
        self.model = VideoDenoiser(self.net_cfg)
        self.ema = VideoDenoiser(self.net_cfg).requires_grad_(False)
        self.ema.load_state_dict(self.model.state_dict())
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg["lr"], weight_decay=0.0)
        self.step = 0
        self.wall = 0.0  # training seconds so far, across resumes
        self.dir = out / self.name
        self.cfg = cfg
        self.resume()

    # ---- resume state: weights, EMA and Adam moments as safetensors, counters as JSON
    def _state_tensors(self) -> dict[str, torch.Tensor]:
        t = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        t.update({f"ema.{k}": v for k, v in self.ema.state_dict().items()})
        for i, st in self.opt.state_dict()["state"].items():
            for k, v in st.items():
                t[f"opt.{i}.{k}"] = torch.as_tensor(v).reshape(-1) if k == "step" else v
        return {k: v.detach().contiguous().clone() for k, v in t.items()}

    def save_last(self) -> None:
        last = self.dir / "last"
        last.mkdir(parents=True, exist_ok=True)
        save_file(self._state_tensors(), str(last / "state.safetensors.tmp"))
        (last / "state.safetensors.tmp").replace(last / "state.safetensors")
        (last / "state.json.tmp").write_text(json.dumps({"step": self.step, "wall_seconds": self.wall}))
        (last / "state.json.tmp").replace(last / "state.json")

    def resume(self) -> None:
        last = self.dir / "last"
        if not (last / "state.json").is_file():
            return
        meta = json.loads((last / "state.json").read_text())
        t = load_file(str(last / "state.safetensors"))
        self.model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
        self.ema.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("ema.")})
        sd = self.opt.state_dict()
        state: dict = {}
        for k, v in t.items():
            if k.startswith("opt."):
                _, i, name = k.split(".", 2)
                state.setdefault(int(i), {})[name] = v.reshape(()) if name == "step" else v
        sd["state"] = state
        self.opt.load_state_dict(sd)
        self.step, self.wall = int(meta["step"]), float(meta.get("wall_seconds", 0.0))
        print(f"[{self.name}] resumed at step {self.step}", flush=True)

    def checkpoint_config(self) -> dict:
        c = self.cfg
        latent = {"latent": {"vae": self.vae.cfg.to_dict(), "vae_source": c["latent"]["vae"]}} if self.vae is not None else {}
        return {**latent,
            "name": self.name,
            "architecture": self.net_cfg.to_dict(),
            "diffusion": c["diffusion"],
            "world": WorldSpec.from_dict(c["world"]).to_dict(),
            "training": {
                "step": self.step, "seed": c["seed"], "batch_size": c["batch_size"], "lr": c["lr"],
                "ema_decay": c["ema_decay"], "caption_dropout": c["caption_dropout"], "task_probs": c["task_probs"],
                "heldout": c["heldout"], "threads": c["threads"], "wall_seconds": round(self.wall, 1),
                "parameters": count_parameters(self.model), "total_steps": self.total,
            },
        }

    def save_step(self) -> None:
        save_checkpoint(self.dir / f"step_{self.step:06d}", self.ema.state_dict(), self.checkpoint_config(),
                        self.vae.state_dict() if self.vae is not None else None)


def train_step(tr: Trainee, stream: WorldStream, tok: CaptionTokenizer, sched: DDPMScheduler, cfg: dict) -> float:
    x0, captions, mask, velocity = stream.batch(tr.step, cfg["batch_size"])
    if tr.vae is not None:
        with torch.no_grad():
            x0 = tr.vae.clip_to_latents(x0)
    g = torch.Generator().manual_seed(int(np.random.default_rng([cfg["seed"], 0x7015E, tr.step]).integers(2**62)))
    noise = torch.randn(x0.shape, generator=g)
    t = torch.randint(0, sched.config.num_train_timesteps, (x0.shape[0],), generator=g)
    x_t = sched.add_noise(x0, noise, t)
    target = sched.get_velocity(x0, noise, t) if sched.config.prediction_type == "v_prediction" else noise
    tr.model.train()
    tokens = tok(captions)
    aligned = tr.net_cfg.motion_aligned
    # motion-aligned models denoise along the true velocity (teacher forcing) and learn to read it
    # from the caption with a separate regression loss (dropped captions learn the mean velocity)
    pred = tr.model(x_t, t, tokens, x0, mask, velocity=velocity if aligned else None)
    w = (1.0 - mask)[:, :, None, None, None].expand_as(pred)  # known frames carry no loss
    loss = ((pred - target) ** 2 * w).sum() / w.sum().clamp(min=1)
    if aligned:
        loss = loss + F.mse_loss(tr.model.velocity_of(tokens) * VELOCITY_SCALE, velocity * VELOCITY_SCALE)
    for group in tr.opt.param_groups:
        group["lr"] = lr_at(tr.step, cfg, tr.total)
    tr.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(tr.model.parameters(), cfg["grad_clip"])
    tr.opt.step()
    decay = min(cfg["ema_decay"], (1 + tr.step) / (10 + tr.step))
    with torch.no_grad():
        for pe, pm in zip(tr.ema.parameters(), tr.model.parameters()):
            pe.lerp_(pm, 1 - decay)
        for be, bm in zip(tr.ema.buffers(), tr.model.buffers()):
            be.copy_(bm)
    tr.step += 1
    return float(loss.detach())


def train(cfg: dict, out: Path, max_seconds: float | None = None) -> list[Trainee]:
    torch.set_num_threads(int(cfg["threads"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_config.json").write_text(json.dumps(cfg, indent=2))
    spec = WorldSpec.from_dict(cfg["world"])
    tok = CaptionTokenizer()
    held = set(heldout_captions(spec, cfg["heldout"]["count"], cfg["heldout"]["seed"]))
    stream = WorldStream(spec, cfg["seed"], held, cfg["task_probs"], cfg["caption_dropout"])
    sched = make_scheduler(cfg["diffusion"])
    vae = load_vae(cfg["latent"]["vae"])[0] if cfg.get("latent") else None
    trainees = [Trainee(m, cfg, out, tok.vocab_size, vae) for m in cfg["models"]]
    for tr in trainees:
        print(f"[{tr.name}] {count_parameters(tr.model)} parameters, temporal={tr.net_cfg.temporal}, "
              f"step {tr.step}/{tr.total}", flush=True)
    start = time.time()
    it = min(tr.step * tr.every for tr in trainees)
    losses: dict[str, list[float]] = {tr.name: [] for tr in trainees}
    while any(tr.step < tr.total for tr in trainees):
        if max_seconds is not None and time.time() - start > max_seconds:
            break
        for tr in trainees:
            if tr.step >= tr.total or it % tr.every or tr.step * tr.every > it:
                continue
            t0 = time.time()
            losses[tr.name].append(train_step(tr, stream, tok, sched, cfg))
            tr.wall += time.time() - t0
            if tr.step % cfg["log_every"] == 0:
                print(f"[{tr.name}] step {tr.step} loss {np.mean(losses[tr.name]):.4f} "
                      f"lr {tr.opt.param_groups[0]['lr']:.2e} {tr.wall / tr.step:.3f}s/step "
                      f"wall {tr.wall:.0f}s", flush=True)
                losses[tr.name] = []
            if tr.step % cfg["save_every"] == 0 or tr.step == tr.total or tr.step in cfg.get("extra_saves", ()):
                tr.save_step()
                tr.save_last()
        it += 1
    for tr in trainees:
        tr.save_last()
    return trainees


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop (resumably) after this long")
    args = ap.parse_args(argv)
    try:
        train(load_config(args.config), Path(args.out), args.max_seconds)
    except VdevalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
