"""Runner throughput, overhead and scaling on the CPU, printed as tables.

1. Overhead ratio: the smoke suite's metrics through `Runner.execute` (stored clips, cold
   feature cache) divided by the backbone forward passes alone on the same clips, measured in
   this process. 1.0 would mean vdeval adds nothing around the backbones.
2. Scaling: the same suite at 1x, 4x and 16x clips, each in a fresh process: wall time, time per
   clip and peak resident memory (linear time, flat memory is the goal).
3. Per-stage throughput: world rendering, mp4 decode, DIS flow, metric maths (clips/s).

    python benchmarks/bench_runner.py [--clips 16] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

SUITE = """
name: bench
world: {{height: 32, width: 32, frames: 8, max_objects: 1}}
prompts: {{source: world, count: {count}, seed: 0}}
generators:
  - {{name: clean, kind: world}}
  - {{name: flicker, kind: world, corruption: {{name: flicker, severity: 0.5}}}}
  - {{name: frozen, kind: world, corruption: {{name: freeze, severity: 1.0}}}}
metrics:
  - {{name: frame_difference}}
  - {{name: frozen_motion, backbone: dis}}
{extra}output: {{report: false}}
"""

CHILD = """
import json, resource, sys, time
from vdeval.run.runner import Runner
from vdeval.suite import load_suite
t = time.perf_counter()
out = Runner(load_suite(sys.argv[1]), out=sys.argv[2], progress=False, chunk_size=int(sys.argv[3])).execute()
print(json.dumps({"seconds": time.perf_counter() - t, "clips": out.n_clips,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_suite(folder: Path, count: int, warping: bool = False) -> Path:
    p = folder / f"bench_{count}_{int(warping)}.yaml"
    extra = "  - {name: warping_error, backbone: dis}\n" if warping else ""
    p.write_text(SUITE.format(count=count, extra=extra))
    return p


def overhead(tmp: Path, clips: int, repeats: int) -> None:
    from vdeval.run.featurize import BackbonePool
    from vdeval.features import ClipInput
    from vdeval.run.runner import Runner
    from vdeval.store import load_array
    from vdeval.suite import load_suite
    from vdeval.video import Video

    suite = load_suite(write_suite(tmp, clips))
    run = tmp / "overhead"
    Runner(suite, out=run, progress=False).execute()  # stores the clips once
    stored = sorted((run / "clips").rglob("*.npy"))
    videos = [Video(load_array(p), 8.0) for p in stored]
    best_e2e, best_bb = float("inf"), float("inf")
    for _ in range(repeats):
        shutil.rmtree(run / "features", ignore_errors=True)
        t = time.perf_counter()
        Runner(suite, out=run, progress=False).execute()
        best_e2e = min(best_e2e, time.perf_counter() - t)
        dis = BackbonePool().get("dis")
        inputs = [ClipInput(v) for v in videos]
        t = time.perf_counter()
        for i in range(0, len(inputs), suite.output.batch_size):
            dis.compute("flow", inputs[i:i + suite.output.batch_size])
        best_bb = min(best_bb, time.perf_counter() - t)
    print("## Overhead (the smoke suite's metrics, stored clips, cold feature cache)\n")
    print("| clips | end-to-end s | DIS forward alone s | overhead ratio |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {len(videos)} | {best_e2e:.2f} | {best_bb:.2f} | {best_e2e / best_bb:.3f} |\n")


def scaling(tmp: Path, clips: int) -> None:
    print("## Scaling (fresh process each; world clips generated; smoke metrics + warping_error; chunk 64)\n")
    print("| scale | clips | wall s | ms per clip | peak RSS MB |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for k in (1, 4, 16):
        suite = write_suite(tmp, clips * k, warping=True)
        out = tmp / f"scale_{k}"
        r = subprocess.run([sys.executable, "-c", CHILD, str(suite), str(out), "64"], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"| {k}x | failed: {r.stderr.strip().splitlines()[-1]} |")
            continue
        d = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"| {k}x | {d['clips']} | {d['seconds']:.2f} | {1000 * d['seconds'] / d['clips']:.1f} | {d['peak_mb']:.0f} |")
    print()


def stages(tmp: Path, clips: int) -> None:
    from vdeval.run.featurize import BackbonePool
    from vdeval.features import ClipFeatures, ClipInput
    from vdeval.registry import resolve
    from vdeval.video import read_video, write_video
    from vdeval.world import WorldSpec, sample_clip

    spec = WorldSpec(height=32, width=32, frames=8, max_objects=1)
    n = clips * 3
    t = time.perf_counter()
    worlds = [sample_clip(i, spec) for i in range(n)]
    render = n / (time.perf_counter() - t)
    paths = [write_video(w.video, tmp / f"c{i}.mp4") for i, w in enumerate(worlds)]
    t = time.perf_counter()
    videos = [read_video(p) for p in paths]
    decode = n / (time.perf_counter() - t)
    dis = BackbonePool().get("dis")
    t = time.perf_counter()
    flows = dis.compute("flow", [ClipInput(v) for v in videos])
    flow = n / (time.perf_counter() - t)
    rows = [("world render", render), ("mp4 decode (PyAV)", decode), ("DIS flow fw+bw", flow)]
    for name in ("frame_difference", "frozen_motion", "warping_error"):
        m = resolve("metric", name)(backbone=None if name == "frame_difference" else "dis")
        feats = [ClipFeatures(str(i), v, features={("flow", "dis"): f}) for i, (v, f) in enumerate(zip(videos, flows))]
        t = time.perf_counter()
        for c in feats:
            m.score_clip(c)
        rows.append((f"{name} maths", n / (time.perf_counter() - t)))
    print(f"## Per-stage throughput ({n} clips, 32x32 x 8 frames)\n")
    print("| stage | clips/s |")
    print("| --- | ---: |")
    for name, v in rows:
        print(f"| {name} | {v:.1f} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=16, help="prompts at 1x (each run has 3 generators)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        overhead(tmp, args.clips, args.repeats)
        stages(tmp, args.clips)
        scaling(tmp, args.clips)


if __name__ == "__main__":
    main()
