"""Where a real-footage run spends its time: cProfile of one `vdeval.evaluate` call on the natural
clips (../shared/data/natural, or --natural DIR), cold feature cache in a temporary folder, split
into decode, resize, network forwards, metric maths, hashing, cache, results and the rest.

Each part is the cumulative time of the functions that do it (cProfile's own overhead inflates
Python-heavy parts a little, so shares are what to read, not seconds):

  decode    vdeval.video.source.decode_frames less its resize (PyAV demux, decode, RGB conversion)
  resize    vdeval.video.protocol.resize_frames (in-memory clips); files are resized by PyAV's
            frame conversion inside the decode, so for files it is counted in decode
  forwards  every backbone's compute (DIS flow, colour histograms, the networks)
  metrics   the score stage (every metric's score_clip, through vdeval.run.scoring)
  hashing   content hashes of the files (sha256 of their bytes)
  cache     FeatureCache.load and save (safetensors, integrity records, atomic writes)
  results   the per-clip rows (less the metrics' maths inside them) and the DataFrame
  rest      everything else inside evaluate (requests, groups, bookkeeping): the overhead
            beside decode, resize and forwards is rest + metrics + hashing + cache + results

    python benchmarks/profile_real_footage.py [--metrics warping_error frozen_motion ...]
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NATURAL = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.exists()),
               ROOT.parent / "shared") / "data" / "natural"
PARTS = {
    "decode": [("vdeval/video/source.py", "decode_frames")],
    "resize": [("vdeval/video/protocol.py", "resize_frames"), ("~", "<method 'reformat' of 'av.video.frame.VideoFrame' objects>")],
    "forwards": [("vdeval/backbones/", "compute")],
    "metrics": [("vdeval/run/scoring.py", "score_clip")],
    "hashing": [("vdeval/video/source.py", "content_hash"), ("vdeval/store.py", "sha256_file")],
    "cache": [("vdeval/run/featurize.py", "load"), ("vdeval/run/featurize.py", "save")],
    "results": [("vdeval/api.py", "_score"), ("pandas/core/frame.py", "__init__")],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--natural", type=Path, default=NATURAL)
    ap.add_argument("--metrics", nargs="+", default=["warping_error", "frozen_motion", "frame_difference", "scene_cuts",
                                                      "motion_jitter"])
    a = ap.parse_args()
    import vdeval

    files = sorted(str(p) for p in a.natural.glob("*.mp4"))
    with tempfile.TemporaryDirectory() as cache:
        prof = cProfile.Profile()
        prof.enable()
        df = vdeval.evaluate(files, metrics=a.metrics, cache_dir=cache, device="cpu")
        prof.disable()
    assert not df["error"].any(), df["error"]
    st = pstats.Stats(prof)
    total = max(v[3] for k, v in st.stats.items() if k[2] == "evaluate")
    got = {}
    for part, anchors in PARTS.items():
        got[part] = sum(v[3] for (f, _, fn), v in st.stats.items()
                        if any(path in f.replace(os.sep, "/") and fn == name for path, name in anchors))
    got["decode"] -= min(got["decode"], sum(v[3] for (f, _, fn), v in st.stats.items()
                                             if fn == "resize_frames" or "reformat" in fn))
    got["results"] -= got["metrics"]  # _score (the per-clip row) calls every score_clip
    got["rest"] = total - sum(got.values())
    print(f"files: {', '.join(Path(f).name for f in files)}; metrics: {', '.join(a.metrics)}; "
          f"load average {os.getloadavg()[0]:.1f}")
    for part, s in got.items():
        print(f"  {part:9s} {s:7.2f} s  {100 * s / total:5.1f}%")
    overhead = sum(got[k] for k in ("metrics", "hashing", "cache", "results", "rest"))
    print(f"total {total:.2f} s; overhead (all but decode, resize, forwards) {100 * overhead / total:.1f}%")


if __name__ == "__main__":
    main()
