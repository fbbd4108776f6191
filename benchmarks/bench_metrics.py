"""Throughput of every per-clip metric on CPU, and evidence that flow is computed once per clip.

For each metric: featurize its requests on N fresh world clips (no cache), then score them;
prints clips/s for features, scoring, and both. Then asks for all flow metrics together and shows,
from featurize's return value (clips computed per (kind, backbone)) and a count of
backbone.compute calls, that the flow pass runs once per clip however many flow metrics want it.

    python benchmarks/bench_metrics.py [--n 32] [--size 32] [--frames 8]
"""
from __future__ import annotations

import argparse
import time

from vdeval import registry
from vdeval.audit import default_metrics
from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.world import WorldSpec, sample_clip

FLOW_METRICS = tuple(m for m in ("warping_error", "frozen_motion", "motion_jitter") if m in registry.names("metric"))


def fresh(videos):
    return [ClipFeatures(str(i), v, cap, v.frames[0]) for i, (v, cap) in enumerate(videos)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args()
    spec = WorldSpec(height=args.size, width=args.size, frames=args.frames)
    videos = [(c.video, c.caption) for c in (sample_clip(s, spec) for s in range(args.n))]
    print(f"{args.n} world clips {args.size}x{args.size} x {args.frames} frames, CPU\n")
    print(f"{'metric':22s} {'backbone':9s} {'features/s':>11s} {'score/s':>9s} {'total/s':>9s}")
    for name, bb in [(m, None) for m in default_metrics()] + [("identity_drift", "pixels")]:
        metric = registry.resolve("metric", name)(backbone=bb)
        pool = BackbonePool()
        try:
            for r in metric.requests():
                pool.get(r.backbone, r.options)
        except (VdevalError, ImportError) as e:
            print(f"{name:22s} {metric.backbone or '-':9s} skipped: {getattr(e, 'message', e)}")
            continue
        clips = fresh(videos)
        t0 = time.perf_counter()
        featurize(clips, metric.requests(), pool)
        t1 = time.perf_counter()
        for c in clips:
            metric.score_clip(c)
        t2 = time.perf_counter()
        feat = f"{args.n / (t1 - t0):11.1f}" if metric.requests() else f"{'(none)':>11s}"
        print(f"{name:22s} {metric.backbone or '-':9s} {feat} {args.n / (t2 - t1):9.1f} {args.n / (t2 - t0):9.1f}")

    # flow sharing: every flow metric's requests together, one featurize call
    pool = BackbonePool()
    calls = {"n": 0, "clips": 0}
    backbone = pool.get("dis")
    original = backbone.compute

    def counting(kind, batch):
        calls["n"] += 1
        calls["clips"] += len(batch)
        return original(kind, batch)

    backbone.compute = counting
    metrics = [registry.resolve("metric", m)() for m in FLOW_METRICS]
    requests = [r for m in metrics for r in m.requests()]
    clips = fresh(videos)
    computed = featurize(clips, requests, pool)
    print(f"\nflow sharing: {len(metrics)} flow metrics ({', '.join(FLOW_METRICS)}) made {len(requests)} requests "
          f"{[f'{r.kind}[{r.backbone}]' for r in requests]}")
    print(f"  featurize returned {computed}: flow computed for {computed[('flow', 'dis')]} of {args.n} clips")
    print(f"  dis.compute called {calls['n']} times (batches of <= 16) on {calls['clips']} clips in total")
    assert computed[("flow", "dis")] == args.n and calls["clips"] == args.n


if __name__ == "__main__":
    main()
