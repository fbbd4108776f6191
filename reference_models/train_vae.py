"""Train the latent reference model's frame-wise VAE on world frames (resumable).

    python -m reference_models.train_vae --out reference_models/runs/vae [--steps 3000] [--max-seconds S]

Frames come from the same WorldStream as the denoiser (held-out captions excluded), a pure function
of (seed, step), so a resumed run continues exactly. OUT/last/ holds weights, Adam state and the
step; OUT/final/ the finished VAE (vae.safetensors + vae.json with its latent scale and held-out
reconstruction error).
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
from safetensors.torch import load_file, save_file

from reference_models.data import WorldStream, heldout_captions, to_tensor
from reference_models.evaluate import ground_truth
from reference_models.vae import FrameVAE, VAEConfig, vae_loss
from vdeval.world import WorldSpec

SETTINGS = {"seed": 0, "steps": 2500, "clips_per_batch": 2, "lr": 1e-3, "min_lr_fraction": 0.05, "warmup": 100,
            "kl_weight": 1e-4, "save_every": 250, "log_every": 50, "threads": 1,
            "heldout": {"count": 64, "seed": 1234},
            "world": {"min_objects": 1, "max_objects": 1, "backgrounds": ["plain"]},  # the reference models' world
            "vae": {}}  # VAEConfig fields


def _lr(step: int, s: dict) -> float:
    if step < s["warmup"]:
        return s["lr"] * (step + 1) / s["warmup"]
    frac = min(1.0, (step - s["warmup"]) / max(1, s["steps"] - s["warmup"]))
    return s["lr"] * (s["min_lr_fraction"] + (1 - s["min_lr_fraction"]) * 0.5 * (1 + math.cos(math.pi * frac)))


def save_vae(directory: Path, vae: FrameVAE, info: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().contiguous() for k, v in vae.state_dict().items()}
    save_file(tensors, str(directory / "vae.safetensors.tmp"))
    (directory / "vae.safetensors.tmp").replace(directory / "vae.safetensors")
    (directory / "vae.json.tmp").write_text(json.dumps({"architecture": vae.cfg.to_dict(), **info}, indent=2) + "\n")
    (directory / "vae.json.tmp").replace(directory / "vae.json")
    return directory


def load_vae(directory: str | Path) -> tuple[FrameVAE, dict]:
    d = Path(directory)
    meta = json.loads((d / "vae.json").read_text())
    vae = FrameVAE(VAEConfig.from_dict(meta["architecture"]))
    vae.load_state_dict(load_file(str(d / "vae.safetensors")))
    return vae.eval().requires_grad_(False), meta


@torch.no_grad()
def heldout_figures(vae: FrameVAE, spec: WorldSpec, s: dict) -> dict:
    """Latent scale (1 / std of latent means) and reconstruction error on the held-out captions' true clips."""
    caps = heldout_captions(spec, s["heldout"]["count"], s["heldout"]["seed"])
    clips = to_tensor(np.stack(ground_truth(caps, spec)))  # (N, T, 3, H, W)
    frames = clips.reshape(-1, *clips.shape[2:])
    mean, _ = vae.encode(frames)
    rec = vae.decode(mean).clamp(-1, 1)
    mae = float(((rec - frames).abs() * 127.5).mean())
    psnr = float(10 * torch.log10(4.0 / ((rec - frames) ** 2).mean()))
    return {"scale": float(1.0 / mean.std()), "heldout_mae_grey_levels": round(mae, 3),
            "heldout_psnr_db": round(psnr, 2), "heldout_frames": int(frames.shape[0])}


def train(out: Path, s: dict, max_seconds: float | None = None, stop_at: int | None = None) -> FrameVAE:
    """Train (or resume) to s["steps"]; stop early, resumably, after max_seconds or at step stop_at."""
    torch.set_num_threads(s["threads"])
    spec = WorldSpec.from_dict(s["world"])
    held = set(heldout_captions(spec, s["heldout"]["count"], s["heldout"]["seed"]))
    stream = WorldStream(spec, s["seed"], held, {"t2v": 1.0}, 0.0)
    torch.manual_seed(s["seed"])
    vae = FrameVAE(VAEConfig.from_dict(s["vae"]))
    opt = torch.optim.AdamW(vae.parameters(), lr=s["lr"], weight_decay=0.0)
    step, wall = 0, 0.0
    if (out / "last" / "state.json").is_file():
        state = load_file(str(out / "last" / "state.safetensors"))
        vae.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("vae.")})
        opt.load_state_dict(torch.load(out / "last" / "opt.pt", weights_only=True))
        meta = json.loads((out / "last" / "state.json").read_text())
        step, wall = meta["step"], meta["wall_seconds"]
        print(f"resumed at step {step}", flush=True)
    start = time.time()
    end = min(s["steps"], stop_at if stop_at is not None else s["steps"])
    while step < end and (max_seconds is None or time.time() - start < max_seconds):
        t0 = time.time()
        clips = stream.batch(step, s["clips_per_batch"])[0]
        x = clips.reshape(-1, *clips.shape[2:])
        for g in opt.param_groups:
            g["lr"] = _lr(step, s)
        loss, parts = vae_loss(vae, x, torch.Generator().manual_seed(s["seed"] * 100_003 + step), s["kl_weight"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        wall += time.time() - t0
        if step % s["log_every"] == 0:
            print(f"step {step} loss {loss.item():.4f} l1 {parts['l1']:.4f} kl {parts['kl']:.3f} "
                  f"{wall / step:.3f}s/step", flush=True)
        if step % s["save_every"] == 0 or step == end:
            _save_last(out, vae, opt, step, wall)
    if step >= s["steps"]:
        vae.eval()
        vae.cfg.scale = 1.0
        figures = heldout_figures(vae, spec, s)
        vae.cfg.scale = figures["scale"]
        save_vae(out / "final", vae, {"training": {**s, "step": step, "wall_seconds": round(wall, 1)},
                                      "world": spec.to_dict(), "figures": figures})
        print(json.dumps(figures), flush=True)
    return vae


def _save_last(out: Path, vae: FrameVAE, opt, step: int, wall: float) -> None:
    """Resume state; state.json is written last, so a run killed mid-save resumes from the previous one."""
    last = out / "last"
    last.mkdir(parents=True, exist_ok=True)
    save_file({f"vae.{k}": v.contiguous() for k, v in vae.state_dict().items()}, str(last / "state.safetensors.tmp"))
    torch.save(opt.state_dict(), last / "opt.pt.tmp")  # our own file, read back with weights_only=True
    for name in ("state.safetensors", "opt.pt"):
        (last / f"{name}.tmp").replace(last / name)
    (last / "state.json.tmp").write_text(json.dumps({"step": step, "wall_seconds": wall}))
    (last / "state.json.tmp").replace(last / "state.json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=SETTINGS["steps"])
    ap.add_argument("--max-seconds", type=float, default=None)
    args = ap.parse_args(argv)
    train(Path(args.out), {**SETTINGS, "steps": args.steps}, args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
