"""Sampling throughput of the reference models (clips per second), printed as a table.

    python benchmarks/bench_sampling.py                       # shipped:final, CPU, 1 thread
    python benchmarks/bench_sampling.py --checkpoint shipped:ablation --threads 2 --clips 16

Rows: task x sampler x (batch size, invariant). `invariant` is the default generator mode: the
network runs one sample (and its unconditional twin) at a time so clips are bit-identical in any
batch; `batched` runs the whole batch at once, which is faster on a GPU but not batch invariant.
"""
from __future__ import annotations

import argparse
import time

import torch

from reference_models.checkpoint import load_checkpoint
from reference_models.data import heldout_captions
from reference_models.sampling import SamplerSettings, VideoSampler


def bench(lm, task: str, sampler: str, steps: int, guidance: float, clips: int, batch: int, invariant: bool,
          device: str, dtype: str) -> float:
    s = VideoSampler(lm, SamplerSettings(sampler, steps, guidance, dtype, invariant=invariant), device)
    caps = (heldout_captions(lm.world) * clips)[:clips]
    imgs = None
    if task == "i2v":
        from reference_models.evaluate import ground_truth

        imgs = [v[0] for v in ground_truth(caps, lm.world)]
    t0 = time.perf_counter()
    for i in range(0, clips, batch):
        c, seeds = caps[i:i + batch], list(range(i, i + len(caps[i:i + batch])))
        if task == "t2v":
            s.text_to_video(c, seeds)
        elif task == "i2v":
            s.image_to_video(c, imgs[i:i + batch], seeds)
        else:
            s.long_video(c, seeds, num_frames=2 * lm.world.frames)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clips / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="shipped:final")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--samplers", default="dpm,ddim")
    ap.add_argument("--tasks", default="t2v,i2v,long")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_checkpoint(args.checkpoint)
    w = lm.world
    print(f"checkpoint {args.checkpoint} (step {lm.step}), clips {w.frames}x{w.height}x{w.width}, "
          f"{args.steps} steps, guidance {args.guidance_scale}, device {args.device} {args.dtype}, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(f"| task | sampler | batch | mode | clips/s | s/clip |")
    print(f"|---|---|---|---|---|---|")
    for task in args.tasks.split(","):
        for sampler in args.samplers.split(","):
            for batch, invariant in ((1, True), (8, True), (8, False)):
                if task != "t2v" and (batch, invariant) != (8, True):
                    continue  # i2v/long cost like t2v per window; one row each is enough
                r = bench(lm, task, sampler, args.steps, args.guidance_scale, args.clips, batch, invariant,
                          args.device, args.dtype)
                mode = "invariant" if invariant else "batched"
                print(f"| {task} | {sampler} | {batch} | {mode} | {r:.3f} | {1 / r:.2f} |", flush=True)


if __name__ == "__main__":
    main()
