"""Train the world interpolator (vdeval/backbones/world_interpolator.py) and write its weights and config.

    python -m vdeval.backbones.train_interpolator [--steps N] [--lr LR] [--init WEIGHTS] [--out DIR] [--ckpt FILE] [--resume]

Fixed seed; one thread unless --threads. Every batch is rendered on the fly: `batch` clean world
clips (32x32, 8 frames, camera pans with probability 0.3) from training seeds [10^8, 2*10^8), one
triplet (t, t+1, t+2) of each. Loss: L1 between the midpoint (both frames warped bilinearly by the
predicted flows and blended by the mask) and the true middle frame (0-255 scale / 255), plus
0.05 x L1 between the predicted backward flows (middle -> each neighbour, in pixels) and the
world's exact ones. A checkpoint (model, optimiser, step) is written every 250 steps to FILE
(default runs/world_interpolator.ckpt), and --resume continues from it with the same batches as
an uninterrupted run. --init starts from earlier weights (a further phase; the config lists the
phases). The shipped weights are the defaults: 3000 steps at lr 5e-4 from scratch. At the end the
weights and config go to DIR (default: the package's embedded_weights/), with the held-out
reading: mean |midpoint - true middle| on 0-255 over the even pairs of 64 clean clips from seeds
10^9 on.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from vdeval.backbones import world_interpolator as W
from vdeval.store import sha256_file
from vdeval.world import WorldSpec, sample_clip

SEED = 0
TRAIN_SEED0 = 10**8
EVAL_SEED0 = 10**9
SPEC = WorldSpec(height=32, width=32, frames=8, pan_probability=0.3)
FLOW_WEIGHT = 0.05


def triplets(step: int, batch: int, spec: WorldSpec) -> tuple[torch.Tensor, ...]:
    """The step's batch: frames t, t+1, t+2 in [-1, 1] and the exact flows from t+1 to t and to t+2."""
    rng = np.random.default_rng([SEED, step])
    f0, f1, f2, fl0, fl1 = [], [], [], [], []
    for i in range(batch):
        clip = sample_clip(TRAIN_SEED0 + step * batch + i, spec)
        t = int(rng.integers(0, spec.frames - 2))
        fw, _ = clip.flow_between([(t + 1, t), (t + 1, t + 2)])
        fr = clip.video.frames
        f0.append(fr[t])
        f1.append(fr[t + 1])
        f2.append(fr[t + 2])
        fl0.append(fw[0])
        fl1.append(fw[1])
    flows = lambda x: torch.from_numpy(np.stack(x)).permute(0, 3, 1, 2).float()  # noqa: E731
    return W.to_unit(np.stack(f0)), W.to_unit(np.stack(f1)), W.to_unit(np.stack(f2)), flows(fl0), flows(fl1)


def loss_of(model, batch) -> torch.Tensor:
    f0, f1, f2, fl0, fl1 = batch
    mid, p0, p1 = model.soft_midpoint(f0, f2)
    return (mid - f1).abs().mean() / 2.0 + FLOW_WEIGHT * ((p0 - fl0).abs().mean() + (p1 - fl1).abs().mean())


def held_out_error(model, n: int = 64) -> float:
    """Mean |midpoint - true middle frame| on 0-255 over every even pair of n clean 32x32 clips."""
    errs = []
    for i in range(n):
        fr = sample_clip(EVAL_SEED0 + i, SPEC).video.frames
        mids = W.midframes_even(model, fr)
        errs.extend(np.abs(mids.astype(np.float64) - fr[1:-1:2][:len(mids)]).mean(axis=(1, 2, 3)))
    return float(np.mean(errs))


def train(steps: int, out: Path, ckpt: Path, batch: int = 32, lr: float = 5e-4, resume: bool = False,
          threads: int = 1, init: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    model = W.MidpointNet(**W.DEFAULT_CONFIG)
    phases: list[dict] = []
    if init is not None:
        model.load_state_dict(load_file(str(init)))
        before = Path(init).with_name(W.CONFIG_FILE)
        phases = json.loads(before.read_text()).get("phases", []) if before.exists() else []
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    out.mkdir(parents=True, exist_ok=True)
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    start = 0
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        start = state["step"]
    t0, running = time.time(), []
    for step in range(start, steps):
        model.train()
        loss = loss_of(model, triplets(step, batch, SPEC))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if (step + 1) % 250 == 0 or step + 1 == steps:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "step": step + 1}, ckpt)
            model.eval()
            print(f"step {step + 1}: loss {np.mean(running):.4f}, held-out error {held_out_error(model, 16):.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
            running = []
    model.eval()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / W.WEIGHTS_FILE))
    phase = {"steps": steps, "lr": lr, "init": sha256_file(init) if init else None, "seconds": round(time.time() - t0)}
    card = {"model": W.DEFAULT_CONFIG, "phases": phases + [phase], "batch": batch, "seed": SEED, "flow_weight": FLOW_WEIGHT,
            "threads": threads, "train_specs": [f"{SPEC.height}x{SPEC.width}x{SPEC.frames}"],
            "held_out_error_0_255": held_out_error(model)}
    (out / W.CONFIG_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out", type=Path, default=W.WEIGHTS_DIR)
    p.add_argument("--ckpt", type=Path, default=Path("runs/world_interpolator.ckpt"))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--init", type=Path, default=None, help="start from these weights (safetensors)")
    a = p.parse_args(argv)
    print(json.dumps(train(a.steps, a.out, a.ckpt, lr=a.lr, resume=a.resume, threads=a.threads, init=a.init), indent=2))


if __name__ == "__main__":
    main()
