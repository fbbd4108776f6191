"""Shared test helpers (tests/ is on sys.path under pytest's default import mode, through conftest.py):
the CLI's exit code, suite files, and results with known effects written as run folders."""
from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np

from vdeval.results import (BackboneRecord, ClipRecord, Failure, GeneratorInfo, MetricRecord, Provenance, Results,
                            SummaryRow, write_results)
from vdeval.stats import bootstrap_mean_ci
from vdeval.store import RunDir, save_array

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent  # the repository


def write_suite(tmp_path: Path, body, name: str = "s.yaml") -> Path:
    """A suite file in tmp_path: YAML text (dedented) or a dict (dumped as YAML)."""
    import yaml

    p = Path(tmp_path) / name
    p.write_text(yaml.safe_dump(body) if isinstance(body, dict) else textwrap.dedent(body))
    return p


def make_suite(tmp_path: Path, body, name: str = "s.yaml"):
    """The Suite loaded from write_suite(tmp_path, body, name)."""
    from vdeval.suite import load_suite

    return load_suite(write_suite(tmp_path, body, name))


def cli_exit_code(args: list[str]) -> int:
    """Run the real CLI entry point and return its exit code (0 when it returns normally)."""
    from vdeval import cli

    try:
        cli.main(args)
    except SystemExit as e:
        return e.code or 0
    return 0


# the smallest complete suite: two 16 x 16 world clips, one metric that needs no backbone weights
TINY_SUITE = """\
name: tiny
world: {height: 16, width: 16, frames: 4}
prompts: {source: world, count: 2}
generators:
  - {name: clean, kind: world}
metrics:
  - {name: frame_difference}
"""


# ---- results builders: a Results with known effects, and its run folder (report, check, log tests)


PROMPTS = [
    "a red circle moves right",
    "two squares swap places",
    "<script>alert('x')</script> & a \"quoted\" | pipe",
    "a blue triangle spins",
]
SEEDS = [0, 1, 2]
METRICS = {
    "warping_error": {"higher_is_better": False, "level": "clip", "backbone": "dis", "curves": True},
    "clip_score": {"higher_is_better": True, "level": "clip", "backbone": "embedded", "curves": False},
    "frozen_motion": {"higher_is_better": False, "level": "clip", "backbone": "dis", "curves": False},
    "fvd": {"higher_is_better": False, "level": "set", "backbone": "embedded", "curves": False},
    "kvd": {"higher_is_better": False, "level": "set", "backbone": "embedded", "curves": False},
}


def _base(metric: str, p: int, s: int) -> float:
    """Per-clip value before any generator effect: varies a lot across prompts (so pairing matters)."""
    return {"warping_error": 0.010 + 0.004 * p + 0.001 * s, "clip_score": 0.25 + 0.03 * p - 0.01 * s,
            "frozen_motion": 0.05 + 0.02 * ((p + s) % 3)}[metric]


def clip_frames(gen: str, p: int, s: int, T: int = 8, size: int = 16) -> np.ndarray:
    """A square moving across a dark background; colour by generator, path by prompt and seed."""
    rng = np.random.default_rng([sum(map(ord, gen)), p, s])
    color = rng.integers(80, 256, 3)
    v = np.full((T, size, size, 3), 20, np.uint8)
    for t in range(T):
        x = (2 * t + p + s) % (size - 4)
        v[t, 5 + p % 4: 9 + p % 4, x: x + 4] = color
    return v


def _clip(g: str, p: int, s: int, prompts, metrics, shift, rng, noise, bad: bool, null_metric) -> ClipRecord:
    clip = ClipRecord(generator=g, clip_id=f"p{p:02d}-s{s}", prompt=prompts[p], seed=s,
                      clip_hash=f"{abs(hash((g, p, s))):016x}")
    if bad:
        clip.error, clip.clip_hash = "RuntimeError: sampler diverged (NaN latents)", None
        return clip
    for m in metrics:
        if METRICS[m]["level"] == "set":
            continue
        v = _base(m, p, s) + shift.get(m, 0.0) + noise * rng.standard_normal()
        if null_metric == m:
            v = math.nan
            clip.notes[m] = "one-frame clip has no motion"
        clip.scores[m] = v
        if METRICS[m]["curves"]:
            clip.curves[m] = list(v * (0.7 + 0.1 * np.arange(7)) + noise * rng.standard_normal(7))
        if m == "frozen_motion":
            clip.extras[m] = {"frozen": float(v > 0.08)}
    return clip


def _summary(g: str, m: str, clips: list[ClipRecord], n_failed: int, shift: dict) -> SummaryRow:
    meta = METRICS[m]
    row = SummaryRow(generator=g, metric=m, backbone=meta["backbone"], higher_is_better=meta["higher_is_better"],
                     level=meta["level"], n_failed=n_failed)
    if meta["level"] == "set":
        row.n, row.n_real = len(clips) - n_failed, 24
        if m == "fvd":
            row.value = 50.0 + shift.get(m, 0.0)
            row.ci_low, row.ci_high = row.value - 3.0, row.value + 4.0
        else:  # kvd: a set-level metric without interval
            row.value = 0.1 + shift.get(m, 0.0)
        return row
    vals = np.asarray([c.scores[m] for c in clips if not c.error], float)
    fin = vals[np.isfinite(vals)]
    ci = bootstrap_mean_ci(fin)
    row.value, row.n = (float(fin.mean()) if fin.size else None), int(fin.size)
    row.ci_low, row.ci_high = (ci[0], ci[1]) if ci else (None, None)
    return row


def make_results(gens: dict, *, noise: float = 0.0005, rng_seed: int = 0, prompts=PROMPTS, seeds=SEEDS,
                 metrics=None, failed: tuple | None = None, null_score: tuple | None = None,
                 checks=None) -> Results:
    """Results built through the typed model, as the runner builds them.

    gens: {name: {"step": int | None, "shift": {metric: additive effect}}}.
    failed: (generator, clip index) of a clip whose generation failed; null_score: (generator, clip
    index, metric) whose score is NaN (stored as null)."""
    metrics = metrics or list(METRICS)
    clips, failures, summary = [], [], []
    for g, spec in gens.items():
        shift = spec.get("shift", {})
        rng = np.random.default_rng([rng_seed, sum(map(ord, g))])
        mine = [_clip(g, p, s, prompts, metrics, shift, rng, noise, failed == (g, k),
                      null_score[2] if null_score and null_score[:2] == (g, k) else None)
                for k, (p, s) in enumerate([(p, s) for p in range(len(prompts)) for s in seeds])]
        failures += [Failure(generator=g, clip_id=c.clip_id, stage="generate", error=c.error) for c in mine if c.error]
        n_failed = sum(1 for c in mine if c.error)
        summary += [_summary(g, m, mine, n_failed, shift) for m in metrics]
        clips += mine
    suite = {"name": "fixture", "world": {"fps": 8.0}}
    if checks is not None:
        suite["checks"] = checks
    return Results(
        created="2026-11-25T12:00:00+00:00", suite=suite, suite_hash="0" * 64, suite_path="suites/fixture.yaml",
        provenance=Provenance(vdeval="0.1.0", torch="2.14.1", python="3.11", platform="linux", device="cpu",
                              command="vdeval run suites/fixture.yaml", seeds=list(seeds)),
        generators={g: GeneratorInfo(kind="reference", step=spec.get("step")) for g, spec in gens.items()},
        backbones={"dis": BackboneRecord(name="dis", version="1"), "embedded": BackboneRecord(name="embedded", version="1")},
        metrics={m: MetricRecord(name=m, version="1", higher_is_better=METRICS[m]["higher_is_better"],
                                 level=METRICS[m]["level"], backbone=METRICS[m]["backbone"],
                                 backbone_label=METRICS[m]["backbone"]) for m in metrics},
        summary=summary, clips=clips, failures=failures)


def write_run(root: Path, results: Results, with_clips: bool = True, version: int | None = None) -> Path:
    """A run directory holding `results` (its version number replaced by `version`, to test
    files this vdeval cannot read) and, with_clips, each clip's frames."""
    run = RunDir(root)
    write_results(run, results)
    if version is not None:
        data = json.loads(run.results.read_text())
        run.results.write_text(json.dumps({**data, "vdeval_results_version": version}))
    if with_clips:
        for c in results.clips:
            if c.error:
                continue
            p = PROMPTS.index(c.prompt) if c.prompt in PROMPTS else 0
            save_array(run.clip_path(c.generator, c.clip_id), clip_frames(c.generator, p, c.seed))
    return run.root


STEPS = {"ckpt_1k": {"step": 1000, "shift": {"warping_error": 0.006, "clip_score": -0.04, "fvd": 30.0}},
         "ckpt_2k": {"step": 2000, "shift": {"warping_error": 0.002, "clip_score": -0.01, "fvd": 10.0}},
         "ckpt_4k": {"step": 4000, "shift": {"warping_error": 0.0, "clip_score": 0.0, "fvd": 1.0}}}


def virtual_camera(frames: np.ndarray, n: int, out_hw: tuple[int, int], shift=(0.0, 0.0), zoom: float = 1.0):
    """n frames seen through a window of out_hw pixels over `frames` (frame t, or the last one):
    its centre moves `shift` source pixels a frame and its scale grows by `zoom` a frame (> 1: the
    window shrinks, so the content grows: a zoom in). Bilinear, borders reflected. A Video at 8 fps."""
    import cv2

    from vdeval.video import Video

    H, W = frames.shape[1:3]
    oh, ow = out_hw
    out = []
    for t in range(n):
        s = zoom ** t
        cx, cy = (W - 1) / 2 + shift[0] * t, (H - 1) / 2 + shift[1] * t
        m = np.array([[1 / s, 0, cx - (ow - 1) / 2 / s], [0, 1 / s, cy - (oh - 1) / 2 / s]])
        out.append(cv2.warpAffine(frames[min(t, len(frames) - 1)], m, (ow, oh),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT))
    return Video(np.stack(out), 8.0)


def large_clip_file(path: Path, frames: int = 4, height: int = 600, width: int = 840, seed: int = 0) -> Path:
    """A clip file larger than the short-side caps backbones used before decoding (448, 512): smooth
    gradients and noise, so resizes of rounded and unrounded values differ."""
    from vdeval.video import Video
    from vdeval.video.io import write_video

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx / width, yy / height, (xx + yy) / (width + height)], -1) * 200
    clip = np.stack([np.clip(base + rng.normal(0, 25, base.shape) + 10 * t, 0, 255) for t in range(frames)])
    return write_video(Video(clip.astype(np.uint8), fps=8.0), path)


def vbench_load_video(path: Path):
    """VBench's load_video on an mp4 without a transform: every frame decoded at its full size
    (VBench: decord; here the project's decoder), then torch.Tensor(buffer).permute(0, 3, 1, 2):
    float32 0-255, T x C x H x W, no rounding or clamping after."""
    import torch

    from vdeval.video.source import FileSource

    return torch.Tensor(FileSource(path).decode().frames).permute(0, 3, 1, 2)


def featurize_recording(path: Path, backbone, kind: str, owner, attr: str, out, batch: int = 2) -> list:
    """Run `backbone` through featurize on the file with `owner.attr` (the network's entry point)
    replaced by a recorder of the tensors it is given, which returns out(x); returns those tensors."""
    from vdeval.features import ClipFeatures, FeatureRequest
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.video.source import FileSource

    seen: list = []

    def record(x, *a, **k):
        seen.append(x.detach().clone())
        return out(x)

    setattr(owner, attr, record)
    backbone.batch_size = batch
    pool = BackbonePool()
    pool._live[(backbone.name, ())] = backbone
    if hasattr(pool, "_cards"):  # the pool keeps a card per backbone beside the live instance
        from vdeval.run.featurize import BackboneCard
        pool._cards[(backbone.name, ())] = BackboneCard.of(backbone)
    featurize([ClipFeatures("c", FileSource(path))], [FeatureRequest(kind, backbone.name)], pool)
    return seen
