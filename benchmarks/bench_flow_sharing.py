"""Flow metrics the vdeval way against the common per-metric loop, on the same DIS backbone.

vdeval: one featurize pass computes forward and backward flow once per clip (each frame
upscaled once, one DIS instance per clip, clips on worker threads), and all three flow metrics
(warping_error, frozen_motion, motion_jitter) read it. The one-worker row isolates the sharing.
Per-metric loop (how per-metric scripts usually run): for each metric, for each clip, for each
frame pair, compute the flow that metric needs (warping error: forward and backward; the others:
forward), then score. Both produce identical scores; the table shows the time ratio.

    python benchmarks/bench_flow_sharing.py [--n 24] [--size 32] [--frames 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from vdeval.backbones.dis import dis_flow_pair, to_gray
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.features import ClipFeatures
from vdeval.registry import resolve
from vdeval.world import WorldSpec, sample_clip

FLOW_METRICS = {"warping_error": True, "frozen_motion": False, "motion_jitter": False}  # name -> needs backward


def per_metric_loop(videos, metrics):
    scores = {}
    for name, metric in metrics.items():
        needs_backward = FLOW_METRICS[name]
        for i, v in enumerate(videos):
            grays = [to_gray(f) for f in v.frames]
            fw = np.stack([dis_flow_pair(grays[t], grays[t + 1]) for t in range(len(grays) - 1)])
            flow = {"forward": fw}
            if needs_backward:
                flow["backward"] = np.stack([dis_flow_pair(grays[t + 1], grays[t]) for t in range(len(grays) - 1)])
            clip = ClipFeatures(str(i), v, features={("flow", "dis"): flow})
            scores[(name, i)] = metric.score_clip(clip).value
    return scores


def shared(videos, metrics):
    clips = [ClipFeatures(str(i), v) for i, v in enumerate(videos)]
    reqs = [r for m in metrics.values() for r in m.requests()]
    computed = featurize(clips, reqs, BackbonePool())
    scores = {(name, i): m.score_clip(c).value for name, m in metrics.items() for i, c in enumerate(clips)}
    return scores, computed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    spec = WorldSpec(height=args.size, width=args.size, frames=args.frames, pan_probability=0.3)
    videos = [sample_clip(s, spec).video for s in range(args.n)]
    metrics = {name: resolve("metric", name)(backbone="dis") for name in FLOW_METRICS}
    import vdeval.backbones.dis as dis_module

    workers = dis_module._workers()
    t_loop = t_shared = t_one = float("inf")
    for _ in range(args.repeats):
        t = time.perf_counter()
        a = per_metric_loop(videos, metrics)
        t_loop = min(t_loop, time.perf_counter() - t)
        t = time.perf_counter()
        b, computed = shared(videos, metrics)
        t_shared = min(t_shared, time.perf_counter() - t)
        dis_module._workers = lambda: 1  # sharing alone: clips one after another
        t = time.perf_counter()
        c, _ = shared(videos, metrics)
        t_one = min(t_one, time.perf_counter() - t)
        dis_module._workers = lambda: workers
    same = all(np.isclose(a[k], b[k], equal_nan=True) and np.isclose(a[k], c[k], equal_nan=True) for k in a)
    print(f"{args.n} world clips {args.size}x{args.size} x {args.frames} frames; metrics: {', '.join(FLOW_METRICS)}\n")
    print("| path | seconds | clips/s | flow passes per clip |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| per-metric loop | {t_loop:.2f} | {args.n / t_loop:.1f} | 4 (fw+bw, fw, fw) |")
    print(f"| vdeval, one worker | {t_one:.2f} | {args.n / t_one:.1f} | 2 (fw+bw once) |")
    print(f"| vdeval, {workers} workers | {t_shared:.2f} | {args.n / t_shared:.1f} | 2 (fw+bw once): {computed} |")
    print(f"\nspeed-up {t_loop / t_shared:.2f}x ({t_loop / t_one:.2f}x with one worker); identical scores: {same}")


if __name__ == "__main__":
    main()
