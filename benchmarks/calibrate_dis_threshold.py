"""Calibrate FrozenMotion's threshold for DIS flow, and measure DIS end-point error.

Static clips: every object "still", no camera pan (truly static: the world renders identical
frames). Moving clips: objects drawn from the moving directions, or a camera pan. For each
resolution we collect per-pair motion scores (mean of top 5% DIS flow magnitudes) expressed in
"pixels at 256 px" (score * 256 / min(H, W)), the unit of VBench's threshold, and report the
largest static score, the smallest moving score, and the clip-level accuracy of candidate scales.

    python benchmarks/calibrate_dis_threshold.py [--n 40]
"""
from __future__ import annotations

import argparse

import numpy as np

from vdeval.backbones.dis import dis_flow_video
from vdeval.metrics.frozen_motion import dynamic_rule, is_dynamic, motion_scores
from vdeval.world import DIRECTIONS, WorldSpec, sample_clip


def collect(spec: WorldSpec, seeds, noise_sigma: float = 0.0) -> tuple[list[np.ndarray], list[float]]:
    scores, epe_moving = [], []
    for s in seeds:
        c = sample_clip(s, spec)
        frames = c.video.frames
        if noise_sigma:
            rng = np.random.default_rng(s)
            frames = np.clip(np.round(frames + rng.normal(0, noise_sigma, frames.shape)), 0, 255).astype(np.uint8)
        f = dis_flow_video(frames)["forward"]
        scores.append(motion_scores(f) * 256.0 / min(spec.height, spec.width))
        moving = np.linalg.norm(c.flow, axis=-1) > 0
        if moving.any():
            epe_moving.append(float(np.linalg.norm(f - c.flow, axis=-1)[moving].mean()))
    return scores, epe_moving


def epe_table(n: int = 20) -> None:
    """DIS end-point error against the world's exact flow, with and without the upscale."""
    print("DIS end-point error vs exact world flow (8 frames, pan_probability 0.3), px: all pixels / moving pixels")
    for res in (32, 64):
        spec = WorldSpec(height=res, width=res, frames=8, pan_probability=0.3)
        clips = [sample_clip(s, spec) for s in range(n)]
        zero = [np.linalg.norm(c.flow, axis=-1) for c in clips]
        print(f"  {res} px zero-flow guess: {np.mean([z.mean() for z in zero]):.3f} / "
              f"{np.mean([z[z > 0].mean() for z in zero if (z > 0).any()]):.3f}")
        for min_side, label in ((1, "no upscale"), (128, "default upscale")):
            alls, moving = [], []
            for c in clips:
                e = np.linalg.norm(dis_flow_video(c.video.frames, min_side=min_side)["forward"] - c.flow, axis=-1)
                alls.append(e.mean())
                m = np.linalg.norm(c.flow, axis=-1) > 0
                if m.any():
                    moving.append(e[m].mean())
            print(f"  {res} px DIS MEDIUM {label:15s}: {np.mean(alls):.3f} / {np.mean(moving):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40, help="clips per class and resolution")
    ap.add_argument("--epe-only", action="store_true", help="only the end-point error table")
    args = ap.parse_args()
    epe_table()
    if args.epe_only:
        return
    seeds = range(1000, 1000 + args.n)
    candidates = (0.5, 1.0, 2.0, 3.0, 6.0, 10.0)
    for res, frames in ((32, 8), (48, 8), (64, 8), (32, 16)):
        static = WorldSpec(height=res, width=res, frames=frames, motions=("still",), pan_probability=0.0)
        moving_objects = WorldSpec(height=res, width=res, frames=frames, motions=tuple(DIRECTIONS), pan_probability=0.0)
        slow_single = WorldSpec(height=res, width=res, frames=frames, motions=tuple(DIRECTIONS), speeds=("slowly",),
                                sizes=("small",), max_objects=1, pan_probability=0.0)
        pan_only = WorldSpec(height=res, width=res, frames=frames, motions=("still",), pan_probability=1.0)
        s_static, _ = collect(static, seeds)
        groups = {"objects": collect(moving_objects, seeds), "slow-small": collect(slow_single, seeds),
                  "pan": collect(pan_only, seeds)}
        st = np.concatenate(s_static)
        print(f"\n{res}x{res}x{frames}: static pair scores (px@256) max {st.max():.3f}, 99th pct {np.quantile(st, .99):.3f}")
        noisy = {}
        for sigma in (2.0, 5.0):
            noisy[sigma] = collect(static, seeds, sigma)[0]
            ns = np.concatenate(noisy[sigma])
            print(f"  static + noise sigma {sigma:.0f}: pair scores median {np.median(ns):.2f}, 90th pct "
                  f"{np.quantile(ns, .9):.2f}, max {ns.max():.2f}")
        for g, (sc, epe) in groups.items():
            allm = np.concatenate(sc)
            print(f"  {g:10s} pair scores min {allm.min():.2f} 5th pct {np.quantile(allm, .05):.2f} median {np.median(allm):.2f}"
                  f"  DIS EPE on moving pixels {np.mean(epe):.3f} px")
        for scale in candidates:
            thr, count = dynamic_rule(res, res, frames, scale)
            thr256 = thr * 256.0 / res
            fp = np.mean([not is_dynamic(s, thr256, count) for s in s_static])  # static called dynamic? (frozen rate)
            acc = {g: np.mean([is_dynamic(s, thr256, count) for s in sc]) for g, (sc, _) in groups.items()}
            nf = {sg: np.mean([not is_dynamic(x, thr256, count) for x in sc]) for sg, sc in noisy.items()}
            print(f"  scale {scale:4.1f}: static judged frozen {fp:.2f} (+noise 2: {nf[2.0]:.2f}, 5: {nf[5.0]:.2f}); "
                  "moving judged dynamic " + ", ".join(f"{g} {a:.2f}" for g, a in acc.items()))


if __name__ == "__main__":
    main()
