"""Small animated GIF previews of the best and worst clips of each per-clip metric.

Frames come from the run dir (clips/<generator>/<clip_id>.npy, uint8 T,H,W,3); a clip that is
missing or unreadable is skipped, never fatal. Upscaling is nearest-neighbour so single
pixels (flicker, swaps) stay visible; GIF bytes depend only on the frames.
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from vdeval.report.tables import Merged, num

PREVIEW_HEIGHT = 96
MAX_FRAMES = 16
DEFAULT_FPS = 8.0


@dataclass
class Preview:
    metric: str
    kind: str  # "best" or "worst"
    generator: str
    clip_id: str
    prompt: str
    seed: object
    value: float
    gif: bytes | None  # None: the clip's frames are not in the run dir
    missing: str = ""


def clip_file(run_dir: Path, generator: str, clip_id: str) -> Path | None:
    """The clip's .npy path, or None when the names would lead outside clips/."""
    base = (Path(run_dir) / "clips").resolve()
    p = (base / str(generator) / f"{clip_id}.npy").resolve()
    return p if p.is_relative_to(base) else None


def _fps(run_dir: Path, generator: str, clip_id: str, suite: dict) -> float:
    meta = Path(run_dir) / "clips" / str(generator) / f"{clip_id}.json"
    try:  # the runner records each clip's fps beside its frames
        fps = num(json.loads(meta.read_text()).get("fps"))
        if math.isfinite(fps) and fps > 0:
            return fps
    except (OSError, ValueError, AttributeError):
        pass
    world = (suite or {}).get("world") if isinstance(suite, dict) else None
    fps = num(world.get("fps")) if isinstance(world, dict) else math.nan
    return fps if math.isfinite(fps) and fps > 0 else DEFAULT_FPS


def gif_bytes(frames: np.ndarray, fps: float = DEFAULT_FPS, height: int = PREVIEW_HEIGHT,
              max_frames: int = MAX_FRAMES) -> bytes:
    """Animated GIF of uint8 (T, H, W, 3) frames, nearest-neighbour scaled to `height` pixels."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    T, H, W, _ = frames.shape
    step = max(1, math.ceil(T / max_frames))  # keep the whole clip's span, fewer frames
    picked = frames[::step]
    w = max(1, round(W * height / H))
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8), "RGB").resize((w, height), Image.NEAREST)
              for f in picked]
    # one shared palette from all frames so colours do not jump between frames
    strip = Image.new("RGB", (w, height * len(images)))
    for i, im in enumerate(images):
        strip.paste(im, (0, i * height))
    palette = strip.quantize(colors=255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buf = io.BytesIO()
    duration = int(round(1000 * step / max(fps, 0.1)))
    frames_p[0].save(buf, format="GIF", save_all=True, append_images=frames_p[1:], duration=duration,
                     loop=0, optimize=False, disposal=1)
    return buf.getvalue()


def load_frames(path: Path) -> np.ndarray:
    a = np.load(path, allow_pickle=False)
    if a.dtype != np.uint8:
        raise ValueError(f"dtype {a.dtype}, expected uint8")
    return a


def select_previews(merged: Merged, k: int = 3) -> list[Preview]:
    """The k best and k worst clips (across generators) of each per-clip metric, with GIFs."""
    out: list[Preview] = []
    cache: dict[tuple, tuple[bytes | None, str]] = {}
    for m in merged.clip_metrics():
        hib = bool(merged.metrics[m].get("higher_is_better", True))
        scored = []
        for c in merged.clips:
            if c.get("error"):
                continue
            v = num((c.get("scores") or {}).get(m))
            if math.isfinite(v):
                scored.append((v, c["generator"], str(c.get("clip_id")), c))
        if not scored:
            continue
        # ties broken by generator and clip id so the choice is deterministic
        scored.sort(key=lambda t: (t[0], t[1], t[2]))
        low, high = scored[:k], scored[::-1][:k]
        best, worst = (high, low) if hib else (low, high)
        if len(scored) < 2 * k:  # few clips: show each once
            worst = [s for s in worst if s not in best]
        for kind, chosen in (("best", best), ("worst", worst)):
            for v, g, cid, c in chosen:
                key = (g, cid)
                if key not in cache:
                    cache[key] = _render(merged, g, cid)
                gif, missing = cache[key]
                out.append(Preview(m, kind, g, cid, str(c.get("prompt", "")), c.get("seed"), v, gif, missing))
    return out


def _render(merged: Merged, display: str, clip_id: str) -> tuple[bytes | None, str]:
    gen = merged.generators[display]
    path = clip_file(gen.run.dir, gen.source, clip_id)
    if path is None:
        return None, "clip path outside the run directory"
    if not path.exists():
        return None, "frames not in the run directory"
    try:
        frames = load_frames(path)
        return gif_bytes(frames, _fps(gen.run.dir, gen.source, clip_id, gen.run.results.get("suite"))), ""
    except Exception as e:  # a preview is best-effort: a bad file must not stop the report
        return None, f"unreadable frames ({type(e).__name__}: {str(e)[:80]})"
