"""Small animated GIF previews of the best and worst clips of each per-clip metric.

Frames come from the run dir (clips/<generator>/<clip_id>.npy, uint8 T,H,W,3), or, for clips
referenced by path (folders of videos), from the file their metadata names while its fingerprint
still matches; a clip that is missing or unreadable is skipped, never fatal. Upscaling is nearest-neighbour so single
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
from vdeval.results import ClipRecord

PREVIEW_HEIGHT = 96
PREVIEW_WIDTH = 144  # wide footage is scaled to fit this box, keeping its aspect ratio
MAX_FRAMES = 16
DEFAULT_FPS = 8.0


@dataclass
class Preview:
    metric: str
    kind: str  # "best", "worst", "same" (every clip of the generator scores alike) or "grid"
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


def _fps(run_dir: Path, generator: str, clip_id: str, world_fps: float) -> float:
    meta = Path(run_dir) / "clips" / str(generator) / f"{clip_id}.json"
    try:  # the runner records each clip's fps beside its frames
        fps = num(json.loads(meta.read_text()).get("fps"))
        if math.isfinite(fps) and fps > 0:
            return fps
    except (OSError, ValueError, AttributeError):
        pass
    return world_fps if math.isfinite(world_fps) and world_fps > 0 else DEFAULT_FPS


def gif_bytes(frames: np.ndarray, fps: float = DEFAULT_FPS, height: int = PREVIEW_HEIGHT,
              max_frames: int = MAX_FRAMES, max_width: int = PREVIEW_WIDTH) -> bytes:
    """Animated GIF of uint8 (T, H, W, 3) frames, nearest-neighbour scaled to `height` pixels,
    or less where that would make it wider than `max_width` (aspect ratio kept)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or 0 in frames.shape:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    T, H, W, _ = frames.shape
    step = max(1, math.ceil(T / max_frames))  # keep the whole clip's span, fewer frames
    picked = frames[::step]
    scale = min(height / H, max_width / W)
    w, height = max(1, round(W * scale)), max(1, round(H * scale))
    images = [Image.fromarray(np.ascontiguousarray(f, dtype=np.uint8), "RGB").resize((w, height), Image.Resampling.NEAREST)
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


def _scored(merged: Merged, metric: str, generator: str) -> list[tuple[float, str, ClipRecord]]:
    out = []
    for c in merged.clips:
        if c.error or c.generator != generator:
            continue
        v = num(c.scores.get(metric))
        if math.isfinite(v):
            out.append((v, c.clip_id, c))
    # ties broken by clip id so the choice is deterministic
    return sorted(out, key=lambda t: (t[0], t[1]))


def select_previews(merged: Merged, k: int = 3) -> list[Preview]:
    """For each per-clip metric and each generator: its k best and k worst clips, with GIFs.

    Picked within each generator, so one generator (say a frozen control) cannot fill every slot.
    A generator whose clips all score the same gets one "same" preview instead: best and worst
    of a constant say nothing."""
    out: list[Preview] = []
    cache: dict[tuple, tuple[bytes | None, str]] = {}
    if k <= 0:
        return out
    for m in merged.clip_metrics():
        hib = merged.metrics[m].higher_is_better
        for g in merged.generators:
            scored = _scored(merged, m, g)
            if not scored:
                continue
            if scored[0][0] == scored[-1][0]:
                groups = [("same", scored[:1])]
            else:
                low, high = scored[:k], scored[::-1][:k]
                best, worst = (high, low) if hib else (low, high)
                worst = [s for s in worst if s[1] not in {b[1] for b in best}]  # few clips: show each once
                groups = [("best", best), ("worst", worst)]
            for kind, chosen in groups:
                for v, cid, c in chosen:
                    out.append(_preview(merged, cache, m, kind, g, cid, c, v))
    return out


def grid_previews(merged: Merged, prompts: list[str]) -> list[Preview]:
    """The same-prompt grid: for each prompt and generator, the clip with the lowest seed."""
    cache: dict[tuple, tuple[bytes | None, str]] = {}
    out = []
    for p in prompts:
        for g in merged.generators:
            clips = [c for c in merged.clips if c.generator == g and c.prompt == p and not c.error]
            if not clips:
                continue
            c = min(clips, key=lambda c: (c.seed, c.clip_id))
            out.append(_preview(merged, cache, "", "grid", g, c.clip_id, c, math.nan))
    return out


def _preview(merged, cache, metric, kind, g, cid, c, v) -> Preview:
    key = (g, cid)
    if key not in cache:
        cache[key] = _render(merged, g, cid)
    gif, missing = cache[key]
    return Preview(metric, kind, g, cid, c.prompt, c.seed, v, gif, missing)


def _render(merged: Merged, display: str, clip_id: str) -> tuple[bytes | None, str]:
    gen = merged.generators[display]
    path = clip_file(gen.run.dir, gen.source, clip_id)
    if path is None:
        return None, "clip path outside the run directory"
    try:
        if path.exists():
            frames = load_frames(path)
        else:  # a clip referenced by path (a folder of real videos), not copied into the run
            referenced, why = _referenced_frames(path.with_suffix(".json"))
            if referenced is None:
                return None, why
            frames = referenced
        return gif_bytes(frames, _fps(gen.run.dir, gen.source, clip_id, gen.run.results.world_fps)), ""
    except Exception as e:  # a preview is best-effort: a bad file must not stop the report
        return None, f"unreadable frames ({type(e).__name__}: {str(e)[:80]})"


def _referenced_frames(meta_path: Path) -> tuple[np.ndarray | None, str]:
    """The first MAX_FRAMES * 4 frames of the file a clip's metadata names, if the file is still
    the one that was scored (same fingerprint); else None and why."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None, "frames not in the run directory"
    file = meta.get("file") if isinstance(meta, dict) else None
    if not file:
        return None, "frames not in the run directory"
    if not Path(file).exists():
        return None, "the clip's file is gone"
    from vdeval.video.io import read_video
    from vdeval.video.source import fingerprint

    if meta.get("fingerprint") and fingerprint(file) != meta["fingerprint"]:
        return None, "the clip's file changed since it was scored"
    return read_video(file).frames[: MAX_FRAMES * 4], ""
