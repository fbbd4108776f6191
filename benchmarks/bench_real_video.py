"""Real footage at real size: memory, throughput and overhead of vdeval's decode and featurize path.

Clips: the natural clips in tests/data/natural/ (or --natural DIR, e.g. ../shared/data/natural) and
copies of the carphone clip upscaled to 144p / 480p / 720p / 1080p, at 1x and 4x length (the 4x
copies play forward and back, so no cut appears). Reported, per clip:

  peak RSS      of `vdeval.evaluate(file, [warping_error, frozen_motion, frame_difference, scene_cuts])`,
                alone in a fresh process (after its imports), so it is that call's peak
  clips/s       of that call
  decode ratio  vdeval's decode to the DIS input (short side <= 256, resized in the decoder)
                over a bare PyAV decode of every frame to RGB at source size
  features ratio  vdeval's decode and featurize for those metrics (no metric maths) over the same
                work done by hand: bare PyAV decode, OpenCV resize to
                the same size, DIS forward and backward on every pair, DIS forward and backward on
                the 8 fps sample, colour histograms (the backbones' own forward passes)
  e2e ratio     vdeval.evaluate (features and the metrics' maths) over that same work by hand, in
                wall time and in CPU time (all threads of the process): CPU time is what the work
                costs, and other jobs on a shared machine disturb it far less than wall time

Timings are taken in one process per clip, after one warm-up round: --repeat rounds, each running
every measurement once in turn, and the fastest of each counts. On a shared machine the load
changes from second to second; interleaving puts a measurement and its baseline under the same
load, and the fastest of several rounds is the least disturbed.

    python benchmarks/bench_real_video.py            # all sizes and lengths (several minutes)
    python benchmarks/bench_real_video.py --quick    # 144p and 720p, 1x length
    python benchmarks/bench_real_video.py --per-metric DIR   # every offline metric on DIR's videos

--per-metric: for every per-clip metric that runs offline here (its default backbone on natural
footage needs no weights), `vdeval.evaluate(DIR's videos, [metric])` alone in a fresh process,
cold cache: wall time, seconds per clip-second of video, peak RSS, and clips that failed or
scored NaN; so each metric's cost includes computing its own features.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
METRICS = ["warping_error", "frozen_motion", "frame_difference", "scene_cuts"]


def make_variant(src: Path, dst: Path, height: int, loops: int) -> None:
    """`src` resized to `height` (aspect kept, even width), played forward/back `loops` times."""
    import av
    import numpy as np

    with av.open(str(src)) as c:
        s = c.streams.video[0]
        rate = s.average_rate
        w = int(round(s.codec_context.width * height / s.codec_context.height / 2)) * 2
        frames = [f.to_ndarray(format="rgb24", width=w, height=height, interpolation="BICUBIC") for f in c.decode(s)]
    seq = []
    for k in range(loops):
        seq += frames if k % 2 == 0 else frames[::-1]
    with av.open(str(dst), "w") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, height, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": "20"}
        for f in seq:
            for p in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


MODES = ("bare_decode", "vdeval_decode", "by_hand", "vdeval_features", "vdeval")


def _run(mode: str, path: str) -> None:
    if mode == "bare_decode":
        _bare_decode(path)
    elif mode == "vdeval_decode":
        from vdeval.video.protocol import InputSpec
        from vdeval.video.source import FileSource

        FileSource(path).decode(InputSpec(max_short_side=256))
    elif mode == "by_hand":
        _by_hand(path)
    elif mode == "vdeval_features":
        _vdeval_features(path)
    elif mode == "vdeval":
        import vdeval

        df = vdeval.evaluate([path], metrics=METRICS, device="cpu")
        assert df["error"].isna().all(), df["error"].tolist()


def _child(mode: str, path: str) -> dict:
    """Runs in a fresh process. "memory:<mode>": one call and the process's peak RSS;
    "timing": every mode, interleaved, the fastest of REPEAT rounds (after a warm-up round)."""
    import resource

    if mode.startswith("memory:"):
        mode = mode.split(":", 1)[1]
        _import_first(mode)  # imports are not what is measured: a training loop has them already
        t = time.perf_counter()
        _run(mode, path)
        return {"seconds": time.perf_counter() - t,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    for m in MODES:
        _import_first(m)
    best = {}
    for r in range(REPEAT + 1):
        for m in MODES:
            t, c = time.perf_counter(), time.process_time()
            _run(m, path)
            if r:  # round 0 warms up (first-call costs: lazy imports, page cache)
                best[m] = min(best.get(m, float("inf")), time.perf_counter() - t)
                best[m + "_cpu"] = min(best.get(m + "_cpu", float("inf")), time.process_time() - c)
    return best


def _import_first(mode: str) -> None:
    """Everything the measured call imports on its first use (a training loop has them already)."""
    import av  # noqa: F401
    import cv2  # noqa: F401

    if mode in ("vdeval", "vdeval_features"):
        import vdeval.api  # noqa: F401
        import vdeval.run.featurize  # noqa: F401
        import vdeval.generators.folder  # noqa: F401
        import vdeval.store  # noqa: F401
        from vdeval import registry

        for m in METRICS:
            registry.resolve("metric", m)
        import pandas  # noqa: F401
        import torch  # noqa: F401
    if mode in ("by_hand", "vdeval_features", "vdeval"):
        import vdeval.backbones.dis  # noqa: F401
        import vdeval.backbones.pixels  # noqa: F401


def _vdeval_features(path: str) -> None:
    """vdeval's decode and featurize for the four metrics, without their maths."""
    from vdeval import registry
    from vdeval.features import ClipFeatures
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.generators.folder import open_clip

    reqs = list(dict.fromkeys(r for m in METRICS for r in registry.resolve("metric", m)().requests()))
    featurize([ClipFeatures("c", open_clip(Path(path)))], reqs, BackbonePool())


def _bare_decode(path: str):
    import av

    frames = []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            frames.append(f.to_ndarray(format="rgb24"))
    return frames, float(s.average_rate)


def _by_hand(path: str) -> None:
    import cv2
    import numpy as np

    from vdeval.backbones.dis import dis_flow_video
    from vdeval.backbones.pixels import colour_histogram_embedding

    frames, fps = _bare_decode(path)
    h, w = frames[0].shape[:2]
    s = 256 / min(h, w)
    if s < 1:
        size = (int(round(w * s)), int(round(h * s)))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    clip = np.stack(frames)
    dis_flow_video(clip)
    dis_flow_video(clip[::max(1, round(fps / 8))])
    colour_histogram_embedding(clip)


REPEAT = 3


def measure(mode: str, path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--repeat", str(REPEAT), "--child", mode, str(path)],
                         capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{mode} {path}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def clip_rows(paths: list[Path], timings: bool = True) -> list[dict]:
    import av

    rows = []
    for p in paths:
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            geom = f"{s.codec_context.width}x{s.codec_context.height} x {s.frames}"
        mem, hand = measure("memory:vdeval", p), measure("memory:by_hand", p)
        if not timings:
            rows.append({"clip": p.name, "geometry": geom, "peak_rss_mb": mem["peak_rss_mb"]})
            print(f"{p.name:<28} {geom:<18} RSS {mem['peak_rss_mb']:7.0f} MB (by hand {hand['peak_rss_mb']:5.0f})",
                  flush=True)
            continue
        t = measure("timing", p)
        rows.append({"clip": p.name, "geometry": geom,
                     "peak_rss_mb": mem["peak_rss_mb"], "clips_per_s": 1 / t["vdeval"],
                     "decode_ratio": t["vdeval_decode"] / t["bare_decode"],
                     "e2e_ratio": t["vdeval"] / t["by_hand"],
                     "e2e_cpu_ratio": t["vdeval_cpu"] / t["by_hand_cpu"],
                     "features_ratio": t["vdeval_features"] / t["by_hand"],
                     "by_hand_rss_mb": hand["peak_rss_mb"], "vdeval_s": t["vdeval"],
                     "by_hand_s": t["by_hand"]})
        print(_fmt(rows[-1]), flush=True)
    return rows


def _fmt(r: dict) -> str:
    return (f"{r['clip']:<28} {r['geometry']:<18} RSS {r['peak_rss_mb']:7.0f} MB (by hand {r['by_hand_rss_mb']:5.0f})  "
            f"{r['clips_per_s']:6.3f} clips/s  decode x{r['decode_ratio']:.2f}  features x{r['features_ratio']:.2f}  "
            f"end to end x{r['e2e_ratio']:.2f} (CPU time x{r['e2e_cpu_ratio']:.2f}) "
            f"({r['vdeval_s']:.1f} s vs {r['by_hand_s']:.1f} s)")


def offline_metrics() -> list[str]:
    """Per-clip metrics whose backbone on natural footage (vdeval.evaluate's default domain) loads here."""
    from vdeval import registry
    from vdeval.api import _metrics
    from vdeval.suite import MetricEntry
    from vdeval.errors import VdevalError
    from vdeval.run.featurize import BackbonePool

    out, pool = [], BackbonePool("cpu")
    for name in sorted(registry.names("metric")):
        try:
            ms = _metrics([MetricEntry(name=name)], "natural")
            if all(m.level == "clip" for m in ms.values()):
                for m in ms.values():
                    for r in m.requests():
                        pool.get(r.backbone, r.options)
                out.append(name)
        except VdevalError:
            continue
    return out


def _metric_child(folder: str, metric: str) -> dict:
    import resource

    import vdeval
    from vdeval.generators.folder import list_videos

    files = list_videos(Path(folder))
    t = time.perf_counter()
    df = vdeval.evaluate(files, metrics=[metric], device="cpu", progress=False)
    wall = time.perf_counter() - t
    return {"metric": metric, "seconds": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "failed": int(df["error"].notna().sum()), "nan": int(df[metric].isna().sum()), "clips": len(df)}


def per_metric(folder: Path) -> list[dict]:
    from vdeval.generators.folder import list_videos
    from vdeval.video.source import probe

    video_s = sum(n / (fps or 8.0) for n, fps, _, _ in (probe(p) for p in list_videos(folder)))
    rows = []
    print(f"{len(list_videos(folder))} clips, {video_s:.1f} s of video; load average {os.getloadavg()[0]:.1f}", flush=True)
    print("| metric | wall s | s per video s | peak RSS MB | failed | NaN |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for m in offline_metrics():
        p = subprocess.run([sys.executable, __file__, "--metric-child", str(folder), m], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if p.returncode:
            print(f"| {m} | exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]} | | | | |", flush=True)
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        rows.append(r)
        print(f"| {m} | {r['seconds']:.1f} | {r['seconds'] / video_s:.2f} | {r['peak_rss_mb']:.0f} | {r['failed']} | "
              f"{r['nan']} of {r['clips']} |", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--natural", type=Path, default=ROOT / "tests" / "data" / "natural")
    ap.add_argument("--repeat", type=int, default=3, help="timing rounds per clip; the fastest of each counts")
    ap.add_argument("--heights", type=int, nargs="+", help="upscaled copies to make (default 144 480 720 1080)")
    ap.add_argument("--loops", type=int, nargs="+", help="lengths, in plays of the clip (default 1 4)")
    ap.add_argument("--no-natural", action="store_true", help="skip the natural clips themselves")
    ap.add_argument("--memory-only", action="store_true", help="peak RSS only, no timings")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--per-metric", type=Path, help="folder of videos: every offline metric on them, one at a time")
    ap.add_argument("--metric-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.metric_child:
        print(json.dumps(_metric_child(*args.metric_child)))
        return
    if args.per_metric:
        per_metric(args.per_metric)
        return
    global REPEAT
    REPEAT = args.repeat
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    heights, loops = ([144, 720], [1]) if args.quick else ([144, 480, 720, 1080], [1, 4])
    heights, loops = args.heights or heights, args.loops or loops
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    carphone = next(p for p in sorted(args.natural.glob("carphone*.mp4")))
    with tempfile.TemporaryDirectory() as tmp:
        variants = []
        for n in loops:
            for h in heights:
                v = Path(tmp) / f"carphone_{h}p_x{n}.mp4"
                make_variant(carphone, v, h, n)
                variants.append(v)
        natural = [] if args.no_natural else sorted(args.natural.glob("*.mp4"))
        rows = clip_rows(natural + variants, timings=not args.memory_only)
    by_name = {r["clip"]: r for r in rows}
    for n in loops:
        lo, hi = by_name[f"carphone_144p_x{n}.mp4"], by_name[f"carphone_{max(heights)}p_x{n}.mp4"]
        print(f"{n}x length: peak RSS {max(heights)}p / 144p = {hi['peak_rss_mb'] / lo['peak_rss_mb']:.2f}")
    if args.memory_only:
        return
    worst, cpu = (max(rows, key=lambda r: r[k]) for k in ("e2e_ratio", "e2e_cpu_ratio"))
    print(f"end to end over by hand: at most {worst['e2e_ratio']:.2f} in wall time ({worst['clip']}), "
          f"{cpu['e2e_cpu_ratio']:.2f} in CPU time ({cpu['clip']}); load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
