"""Quality of reference checkpoints measured against the world's ground truth, not the loss.

For the held-out captions (never seen in training) each checkpoint generates one clip per caption:

- colour match: the dominant colour of the non-background pixels is the caption's colour;
- motion match: the direction of the object's centroid track (least-squares velocity, |v| < 0.5
  px/frame on an axis counts as no motion on it) is the caption's direction, or "still";
- area stability: coefficient of variation of the object's pixel area over frames (0 = constant);
- flicker: mean absolute frame-to-frame difference on still-object captions (grey levels; the
  world's own clips score 0) and the temporal std of background pixels;
- image-to-video: mean absolute error of frame 0 against the given image (grey levels), and of
  all frames against the ground-truth clip the image came from, plus colour/motion match.

    python -m reference_models.evaluate shipped:early shipped:final --out eval.json --markdown eval.md
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from reference_models.data import heldout_captions
from vdeval.errors import VdevalError
from vdeval.world import COLORS, DIRECTIONS, WorldSpec, parse_caption, render_scene, scene_from_caption

PALETTE_NAMES = list(COLORS)
PALETTE = np.array([COLORS[c] for c in PALETTE_NAMES], np.float32)
OBJECT_THRESHOLD = 50  # max-channel distance from the background colour; world colours are >= 120 away


def object_masks(frames: np.ndarray) -> np.ndarray:
    """bool (T, H, W): pixels far from the frame's median colour (the object covers < 15% of a frame)."""
    f = frames.astype(np.float32)
    bg = np.median(f.reshape(f.shape[0], -1, 3), axis=1)[:, None, None, :]
    return np.abs(f - bg).max(-1) > OBJECT_THRESHOLD


def direction_of(velocity: tuple[float, float], threshold: float = 0.5) -> str:
    sx, sy = (0 if abs(v) < threshold else int(np.sign(v)) for v in velocity)
    if (sx, sy) == (0, 0):
        return "still"
    return next(name for name, d in DIRECTIONS.items() if d == (sx, sy))


def analyse(frames: np.ndarray) -> dict:
    """Colour, motion direction, area stability and flicker of one clip, uint8 (T, H, W, 3)."""
    masks = object_masks(frames)
    areas = masks.reshape(masks.shape[0], -1).sum(1).astype(np.float64)
    f = frames.astype(np.float32)
    out = {"area_mean": float(areas.mean()),
           "area_cv": float(areas.std() / areas.mean()) if areas.mean() > 0 else 1.0,
           "frame_diff": float(np.abs(np.diff(f, axis=0)).mean()) if len(f) > 1 else 0.0}
    never = ~masks.any(0)
    out["background_std"] = float(f[:, never].std(0).mean()) if never.any() else 0.0
    if masks.any():
        mean_rgb = f[masks].mean(0)
        out["color"] = PALETTE_NAMES[int(np.argmin(((PALETTE - mean_rgb) ** 2).sum(1)))]
    else:
        out["color"] = None
    ts = [t for t in range(len(masks)) if areas[t] >= 3]
    if len(ts) >= 2:
        ys, xs = zip(*[np.nonzero(masks[t]) for t in ts])
        cx = np.array([x.mean() for x in xs])
        cy = np.array([y.mean() for y in ys])
        tt = np.array(ts, np.float64)
        vx, vy = np.polyfit(tt, cx, 1)[0], np.polyfit(tt, cy, 1)[0]
        out["velocity"] = (float(vx), float(vy))
        out["direction"] = direction_of((vx, vy))
    else:
        out["velocity"], out["direction"] = None, None
    return out


def _summ(rows: list[dict], captions: list[str]) -> dict:
    parsed = [parse_caption(c)["objects"][0] for c in captions]
    color = np.mean([r["color"] == p["color"] for r, p in zip(rows, parsed)])
    motion = np.mean([r["direction"] == p["motion"] for r, p in zip(rows, parsed)])
    still = [r["frame_diff"] for r, p in zip(rows, parsed) if p["motion"] == "still"]
    moving = [r["direction"] == p["motion"] for r, p in zip(rows, parsed) if p["motion"] != "still"]
    kept = [r["direction"] == "still" for r, p in zip(rows, parsed) if p["motion"] == "still"]
    return {
        "color_match": float(color), "motion_match": float(motion),
        # split, because a model that never moves anything still matches every "staying still" caption
        "motion_match_moving": float(np.mean(moving)) if moving else None,
        "motion_match_still": float(np.mean(kept)) if kept else None,
        "area_cv": float(np.mean([r["area_cv"] for r in rows])),
        "still_frame_diff": float(np.mean(still)) if still else None,
        "background_std": float(np.mean([r["background_std"] for r in rows])),
    }


def ground_truth(captions: list[str], spec: WorldSpec, seed0: int = 10_000) -> list[np.ndarray]:
    return [render_scene(scene_from_caption(c, seed0 + i, spec), spec).video.frames for i, c in enumerate(captions)]


def evaluate_frames(t2v: list[np.ndarray], captions: list[str], i2v: list[np.ndarray] | None = None,
                    truth: list[np.ndarray] | None = None) -> dict:
    res = {"t2v": _summ([analyse(v) for v in t2v], captions)}
    if i2v is not None:
        summ = _summ([analyse(v) for v in i2v], captions)
        summ["frame0_mae"] = float(np.mean([np.abs(v[0].astype(np.float32) - g[0]).mean() for v, g in zip(i2v, truth)]))
        summ["clip_mae_vs_truth"] = float(np.mean([np.abs(v.astype(np.float32) - g).mean() for v, g in zip(i2v, truth)]))
        res["i2v"] = summ
    return res


def evaluate_checkpoint(checkpoint: str, count: int = 64, sampler: str = "dpm", steps: int = 20,
                        guidance_scale: float = 3.0, batch: int = 8, i2v: bool = True) -> dict:
    from reference_models.checkpoint import load_checkpoint
    from reference_models.sampling import SamplerSettings, VideoSampler

    lm = load_checkpoint(checkpoint)
    held = lm.config["training"]["heldout"]
    captions = heldout_captions(lm.world, held["count"], held["seed"])[:count]
    truth = ground_truth(captions, lm.world)
    s = VideoSampler(lm, SamplerSettings(sampler, steps, guidance_scale, invariant=False))
    t0 = time.time()
    seeds = list(range(len(captions)))
    t2v, i2v_clips = [], []
    for i in range(0, len(captions), batch):
        t2v += list(s.text_to_video(captions[i:i + batch], seeds[i:i + batch]))
        if i2v:
            i2v_clips += list(s.image_to_video(captions[i:i + batch], [g[0] for g in truth[i:i + batch]], seeds[i:i + batch]))
    res = evaluate_frames(t2v, captions, i2v_clips if i2v else None, truth)
    res.update({"checkpoint": checkpoint, "name": lm.config.get("name"), "step": lm.step, "sha256": lm.sha256,
                "temporal": lm.config["architecture"]["temporal"], "clips": len(captions),
                "sampler": sampler, "steps": steps, "guidance_scale": guidance_scale,
                "seconds": round(time.time() - t0, 1)})
    return res


def markdown_table(results: list[dict]) -> str:
    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    lines = ["| model | step | t2v colour match | t2v motion match (moving / still) | t2v area CV (lower better) | "
             "still-object frame diff | background temporal std | i2v frame-0 MAE | i2v MAE vs truth | i2v colour | "
             "i2v motion (moving / still) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        t, i = r["t2v"], r.get("i2v", {})
        lines.append(f"| {r.get('label', r.get('name'))} | {r.get('step', '-')} | {f(t['color_match'], '.0%')} | "
                     f"{f(t['motion_match'], '.0%')} ({f(t.get('motion_match_moving'), '.0%')} / {f(t.get('motion_match_still'), '.0%')}) | {f(t['area_cv'], '.3f')} | {f(t['still_frame_diff'], '.2f')} | "
                     f"{f(t['background_std'], '.2f')} | {f(i.get('frame0_mae'), '.2f')} | "
                     f"{f(i.get('clip_mae_vs_truth'), '.2f')} | {f(i.get('color_match'), '.0%')} | {f(i.get('motion_match'), '.0%')} "
                     f"({f(i.get('motion_match_moving'), '.0%')} / {f(i.get('motion_match_still'), '.0%')}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate reference checkpoints against world ground truth")
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--sampler", default="dpm")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guidance-scale", type=float, default=3.0)
    ap.add_argument("--no-i2v", action="store_true")
    ap.add_argument("--truth", action="store_true", help="also score the world's own clips (the metric's ceiling)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="JSON file to write (appends to a list already there)")
    ap.add_argument("--markdown", help="Markdown table file to write")
    ap.add_argument("--label", action="append", default=[], help="row label per checkpoint, in order")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    if args.out and Path(args.out).exists():
        results = json.loads(Path(args.out).read_text())
    try:
        if args.truth:
            from reference_models.checkpoint import load_checkpoint

            lm = load_checkpoint(args.checkpoints[0])
            held = lm.config["training"]["heldout"]
            caps = heldout_captions(lm.world, held["count"], held["seed"])[:args.count]
            truth = ground_truth(caps, lm.world)
            r = evaluate_frames(truth, caps, truth, truth)
            r.update({"name": "world (ground truth)", "label": "world (ground truth)", "step": None, "clips": len(caps)})
            results.append(r)
            print(json.dumps(r), flush=True)
        for k, ck in enumerate(args.checkpoints):
            r = evaluate_checkpoint(ck, args.count, args.sampler, args.steps, args.guidance_scale, i2v=not args.no_i2v)
            if k < len(args.label):
                r["label"] = args.label[k]
            results.append(r)
            print(json.dumps(r), flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2))
    except VdevalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(markdown_table(results))
    print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
