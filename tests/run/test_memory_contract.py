"""The memory contract: every backbone declares the input it decodes and its working set per clip,
none decodes at source size unless its protocol needs it, and each one that runs offline is held
to its declaration on long 1080p clips (landscape and portrait, 240 frames) in a fresh process.
Every offline metric, run through vdeval.evaluate on the same clips, stays within the memory the
planner (vdeval/memory.py) reserves for it. The measured runs are slow (minutes): `-m slow`."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vdeval import registry
from vdeval.backbones.base import Backbone
from vdeval.errors import VdevalError
from vdeval.metrics.base import Metric

ROOT = Path(__file__).resolve().parents[2]
MB = 1 << 20
# beyond the declaration: the decoder's own frames at source size and threads (PyAV holds a few
# 1080p frames per thread), the allocator's slack. Measured under 60 MB at 1080p.
SLACK = 96 * MB
# backbones whose protocol needs the frames at their own size (flow in whole pixels, VBench's
# own sizes), and why; every other one caps the size it decodes
SOURCE_SIZE = {
    "raft": "VBench's RAFT reads frames at their own size (option max_short_side caps it)",
    "raft_vbench": "VBench's dynamic degree runs RAFT on frames at their own size",
    "amt": "VBench's motion_smoothness interpolates frames at their own size",
    "world_interpolator": "world clips (at most 1024 px): midpoints in whole pixels at the clip's own size",
    "videomae": "cd-fvd resizes the first 16 frames as stored (no antialias): 16 frames, never the whole clip",
    "dino_vbench": "VBench's load_video hands its transform full-size float32 frames (streamed a batch at a time)",
    "clip_vbench": "VBench's load_video hands its clip_transform full-size float32 frames (streamed a batch at a time)",
    "laion_aesthetic": "VBench's aesthetic quality resizes full-size float32 frames (streamed a batch at a time)",
    "musiq": "VBench's imaging quality reads full-size frames (streamed a batch at a time; max_short_side to cap)",
    "blockiness": "Wang et al.'s blockiness measures the 8x8 block grid where the encoder laid it (streamed a frame at a time)",
}


def _builtin_backbones():
    return sorted(registry.BACKBONES)


@pytest.mark.parametrize("name", _builtin_backbones())
def test_every_backbone_declares_its_working_set_and_caps_its_input(name):
    cls = registry.resolve("backbone", name)
    assert cls.working_set is not Backbone.working_set, f"{name} declares no working set"
    if name in SOURCE_SIZE:
        return
    try:
        bb = cls()
    except VdevalError:  # published weights not installed: the spec is read from the class
        import inspect

        bb = cls.__new__(cls)
        defaults = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
                    if v.default is not inspect.Parameter.empty}
        bb.options, bb.device = dict(defaults), "cpu"
        for k, v in defaults.items():
            setattr(bb, k, v)
    for kind in cls.provides:
        spec = bb.input_spec(kind)
        if kind in ("text_embedding", "reference_embedding"):
            continue
        assert spec.max_short_side or spec.short_side, f"{name} decodes {kind} at source size"


def test_every_metric_with_pixel_state_declares_it():
    for name in registry.METRICS:
        cls = registry.resolve("metric", name)
        assert hasattr(cls, "working_set")
    assert registry.resolve("metric", "physical_plausibility").working_set is not Metric.working_set


def test_readme_decode_table_lists_every_backbone():
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| backbone | decoded input |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"`([a-z_0-9]+)`", table))
    missing = set(registry.BACKBONES) - listed
    assert not missing, f"README decode table misses {sorted(missing)}"


def test_planner_counts_inputs_features_and_working_sets():
    """A 1080p clip of 240 frames through dis and colorfulness: decoded inputs at 256 and 512 px,
    float16 flow, and the larger working set on top; groups split long 1080p clips."""
    from vdeval.features import ClipFeatures, FeatureRequest
    from vdeval.run.featurize import BackbonePool
    from vdeval.run.memory import clip_need, plan_groups
    from vdeval.video.core import Video
    from vdeval.video.source import ArraySource

    class Tall(ArraySource):  # geometry of a 1080x1920 x 240 clip without holding it
        def __init__(self):
            super().__init__(Video(np.zeros((1, 8, 8, 3), np.uint8), 24.0), "h")
            self.num_frames, self.height, self.width = 240, 1920, 1080

    pool = BackbonePool("cpu")
    reqs = [FeatureRequest("flow", "dis"), FeatureRequest("frame_score", "colorfulness")]
    c = ClipFeatures("a", Tall())
    n = clip_need(c, reqs, pool)
    dis_in, col_in = 240 * 455 * 256 * 3, 240 * 910 * 512 * 3
    flow = 239 * 455 * 256 * 2 * 2 * 2
    assert n.held == dis_in + col_in + flow
    assert n.peak == max(pool.get("dis").working_set("flow", 240, 455, 256),
                         pool.get("colorfulness").working_set("frame_score", 240, 910, 512))
    clips = [ClipFeatures(str(i), Tall()) for i in range(4)]
    assert [len(g) for g in plan_groups(clips, reqs, pool, 1.0)] == [1, 1, 1, 1]
    assert [len(g) for g in plan_groups(clips, reqs, pool, 2.0)] == [2, 2]


# -- measured, in a fresh process -----------------------------------------------------------

def make_long_clip(path: Path, width: int, height: int, frames: int = 240, fps: int = 24) -> Path:
    """A textured scene panning and a bright square crossing it: detail at every scale, motion."""
    import av
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (height // 8 + 8, width // 8 + 40, 3), dtype=np.uint8),
                      (width + 320, height + 64), interpolation=cv2.INTER_CUBIC)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"preset": "ultrafast", "crf": "28"}
        for t in range(frames):
            x = (t * 320) // frames
            f = np.ascontiguousarray(base[:height, x:x + width])
            s = min(width, height) // 6
            y0, x0 = height // 3, (t * (width - s)) // frames
            f[y0:y0 + s, x0:x0 + s] = (250, 40, 40)
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


PROBE_BACKBONE = r"""
import json, resource, sys
import numpy as np
from pathlib import Path
from vdeval import registry
from vdeval.features import ClipFeatures, ClipInput
from vdeval.generators.folder import open_clip
from vdeval.video.core import Video
path, name, kind = sys.argv[1:4]
bb = registry.resolve("backbone", name)()
warm = Video(np.random.default_rng(0).integers(0, 255, (6, 128, 160, 3), dtype=np.uint8), 8.0)
bb.compute(kind, [ClipInput(warm)])  # libraries and lazy state loaded before the baseline
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = rss()
video = ClipFeatures("c", open_clip(Path(path))).decoded(bb.input_spec(kind))
t, h, w = video.frames.shape[:3]
bb.compute(kind, [ClipInput(video, clip_hash="c")])
print(json.dumps({"used": rss() - base, "declared": t * h * w * 3 + bb.working_set(kind, t, h, w), "geometry": [t, h, w]}))
"""

PROBE_METRIC = r"""
import json, resource, sys
from pathlib import Path
import vdeval
from vdeval import registry
from vdeval.api import _metrics
from vdeval.suite import MetricEntry
from vdeval.run.featurize import BackbonePool
from vdeval.features import ClipFeatures
from vdeval.generators.folder import open_clip
from vdeval.run.memory import clip_need, group_need
path, metric = sys.argv[1:3]
warm = vdeval.evaluate([sys.argv[3]], metrics=[metric], progress=False)  # imports and backbones loaded
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = rss()
df = vdeval.evaluate([path], metrics=[metric], progress=False)
used = rss() - base
ms = _metrics([MetricEntry(name=metric)], "natural")
pool = BackbonePool("cpu")
reqs = [r for m in ms.values() for r in m.requests()]
need = group_need([clip_need(ClipFeatures("c", open_clip(Path(path))), reqs, pool, list(ms.values()))])
print(json.dumps({"used": used, "declared": need, "error": df["error"].iloc[0]}))
"""


def _offline_backbones() -> list[tuple[str, str]]:
    out = []
    for name in _builtin_backbones():
        cls = registry.resolve("backbone", name)
        try:
            cls()
        except VdevalError:
            continue  # published weights not installed here: not offline
        out += [(name, k) for k in cls.provides if k not in ("text_embedding", "reference_embedding")]
    return out


def _offline_metrics() -> list[str]:
    from vdeval.api import _metrics
    from vdeval.suite import MetricEntry
    from vdeval.run.featurize import BackbonePool

    out = []
    for name in sorted(registry.METRICS):
        try:
            ms = _metrics([MetricEntry(name=name)], "natural")
            if any(m.level != "clip" for m in ms.values()):
                continue  # set-level: scored against a real set (FVD, KVD), not one clip
            for m in ms.values():
                for r in m.requests():
                    BackbonePool("cpu").get(r.backbone, r.options)
        except VdevalError:
            continue
        out.append(name)
    return out


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    return {"landscape": make_long_clip(d / "landscape.mp4", 1920, 1080),
            "portrait": make_long_clip(d / "portrait.mp4", 1080, 1920),
            "landscape_short": make_long_clip(d / "landscape_short.mp4", 1920, 1080, frames=24),
            "portrait_short": make_long_clip(d / "portrait_short.mp4", 1080, 1920, frames=24),
            "small": make_long_clip(d / "small.mp4", 320, 180, frames=12)}


def _probe(code: str, *args) -> dict:
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=1800,
                       cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_offline_backbones_stay_within_their_declared_memory(long_clips, orientation):
    for name, kind in _offline_backbones():
        clip = long_clips[orientation]
        if name == "world_interpolator":
            # a world backbone that reads frames at their own size: its working set is one pair's
            # and its output grows with the frames; 1080p pairs take seconds each on a CPU, so it
            # runs on the first 24 frames
            clip = long_clips[f"{orientation}_short"]
        r = _probe(PROBE_BACKBONE, clip, name, kind)
        assert r["used"] <= r["declared"] + SLACK, (name, kind, orientation, r)


@pytest.mark.slow
@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_offline_metrics_stay_within_the_planned_memory(long_clips, orientation):
    for metric in _offline_metrics():
        r = _probe(PROBE_METRIC, long_clips[orientation], metric, long_clips["small"])
        assert r["error"] is None
        assert r["used"] <= r["declared"] + SLACK, (metric, orientation, r)
