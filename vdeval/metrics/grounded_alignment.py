"""Grounded alignment: does the clip show what its world caption says, read from the pixels?

Failure mode: prompt misalignment (wrong colour, shape, size, count, motion or background).
Peer: T2V-CompBench's attribute-binding checks, which read attributes with detectors and VLMs;
here every attribute is read exactly from the shapes world's pixels, with no learned backbone
(objects from `world_objects.track_objects`). The caption must follow the world's grammar
(`vdeval.world.parse_caption`); any other prompt gives NaN with a note.

Reading, per clip (u = min(H, W) / 32, the world's unit speed):
  count      the number of palette colours tracked anywhere in the clip;
  color      each caption object is looked up by its colour (absent: every attribute of it fails);
  shape, size  the (shape, size) whose silhouette, rendered as the world renders it at integer
             centres within 2 px of the centroid, has the highest IoU with the object's largest
             whole view (off the border and untouched, or on top; else an untouched view clipped
             by the border, searching centres within radius + 2 px); unreadable if always touched;
  motion     the object's mean velocity in the frame over consecutive whole views, each axis
             rounded to its sign with a dead zone of 0.5 u, against the caption's velocity minus
             the camera pan's (what the pixels must show); `speed` compares the magnitude per
             axis within 0.5 u (an extra, not in the value);
  background plain when the object-free pixels of frame 0 have one grey level, else the texture
             (striped, checkered, dotted, rendered at every phase) agreeing with most of them.
Value: the mean over the six attributes (count, color, shape, size, motion, background) of the
fraction of caption objects matching (count and background: 0 or 1), in [0, 1], higher is
better. A caption object whose colour is absent fails every attribute of its own; an attribute
no object could be read for (never seen whole) is left out of the mean, with a note. Exactly
1 on clean world clips whose objects are all seen (tests/metrics/test_grounded_alignment.py). Extras:
each attribute's score (NaN when unreadable), and `speed`.
"""
from __future__ import annotations

import numpy as np

from vdeval.errors import VdevalError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams
from vdeval.metrics.world_objects import ObjectTrack, track_objects
from vdeval.world.render import _shape_at, background_texture
from vdeval.world.scene import DIRECTIONS, SHAPES, SIZES, SPEEDS, parse_caption

ATTRIBUTES = ("count", "color", "shape", "size", "motion", "background")


def best_view(track: ObjectTrack) -> int | None:
    """A frame showing the object unhidden at its largest: a clean view, else an untouched view
    clipped by the frame border (templates are clipped the same way), else None."""
    for ok in (track.clean, track.present & ~track.touching):
        if ok.any():
            return int(np.flatnonzero(ok)[np.argmax(track.area[ok])])
    return None


def read_shape(mask: np.ndarray) -> tuple[str, str]:
    """(shape, size) of the world template with the highest IoU with `mask` (H, W); centres within
    2 px of the centroid, or within radius + 2 px when the mask is clipped by the frame border."""
    H, W = mask.shape
    ys, xs = np.nonzero(mask)
    cx0, cy0 = int(round(xs.mean())), int(round(ys.mean()))
    clipped = mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any()
    r = 2 + (int(np.ceil(SIZES["large"] * min(H, W))) if clipped else 0)
    offsets = np.arange(-r, r + 1)
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    # every candidate centre at once: (n_centres, H, W) centre-relative coordinates
    cy = (cy0 + offsets)[:, None].repeat(offsets.size, 1).reshape(-1, 1, 1)
    cx = (cx0 + offsets)[None, :].repeat(offsets.size, 0).reshape(-1, 1, 1)
    dx, dy = xs[None] - cx, ys[None] - cy
    best, best_iou = ("circle", "small"), -1.0
    for shape in SHAPES:
        for size, frac in SIZES.items():
            tpl = _shape_at(shape, dx, dy, frac * min(H, W))
            iou = ((tpl & mask).sum((1, 2)) / np.maximum((tpl | mask).sum((1, 2)), 1)).max()
            if iou > best_iou:
                best, best_iou = (shape, size), iou
    return best


def frame_velocity(track: ObjectTrack) -> np.ndarray | None:
    """Mean centroid step (dx, dy) per frame over consecutive clean frames; None without such a pair."""
    ok = track.clean
    steps = [track.centroid[t + 1] - track.centroid[t] for t in range(len(ok) - 1) if ok[t] and ok[t + 1]]
    return np.mean(steps, axis=0) if steps else None


def _sign(v: np.ndarray, dead: float) -> tuple[int, ...]:
    return tuple(int(np.sign(x)) if abs(x) > dead else 0 for x in v)


def read_background(frame: np.ndarray, objects: np.ndarray) -> str:
    """plain / striped / checkered / dotted from the object-free pixels of one frame (H, W, 3)."""
    H, W = frame.shape[:2]
    grey = frame.astype(np.float64).mean(-1)
    bg = ~objects
    vals = grey[bg]
    if vals.size == 0 or np.ptp(vals) < 10:
        return "plain"
    lo, hi = vals.min(), vals.max()
    on = grey > (lo + hi) / 2
    period = max(2, round(4 * min(H, W) / 32))
    ys, xs = np.mgrid[0:H, 0:W]
    phases = np.arange(2 * period)
    pv, pu = np.meshgrid(phases, phases, indexing="ij")
    u = xs[None] + pu.reshape(-1, 1, 1)
    v = ys[None] + pv.reshape(-1, 1, 1)
    best, best_agree = "plain", -1.0
    for kind in ("striped", "checkered", "dotted"):
        tex = background_texture(kind, (0, 1), u, v, period).astype(bool)  # every phase at once
        agree = (tex[:, bg] == on[bg]).mean(1).max()
        if agree > best_agree:
            best, best_agree = kind, agree
    return best


def _expected_velocity(motion: str, speed: str, pan: str | None, unit: int) -> np.ndarray:
    v = np.zeros(2) if motion == "still" else np.asarray(DIRECTIONS[motion], np.float64) * SPEEDS[speed] * unit
    if pan:
        v = v - np.asarray(DIRECTIONS[pan], np.float64) * SPEEDS["slowly"] * unit
    return v


def grounded_scores(frames: np.ndarray, caption: str) -> dict[str, float]:
    """Per-attribute agreement of the clip (uint8 (T, H, W, 3)) with its world caption, plus speed."""
    parsed = parse_caption(caption)
    H, W = frames.shape[1:3]
    unit = max(1, round(min(H, W) / 32))
    tracks = {t.color: t for t in track_objects(frames)}
    wanted = parsed["objects"]
    hits: dict[str, list[bool]] = {a: [] for a in ("color", "shape", "size", "motion", "speed")}
    for obj in wanted:
        tr = tracks.get(obj["color"])
        hits["color"].append(tr is not None)
        if tr is None:  # the object is not there: nothing else about it can match
            for a in ("shape", "size", "motion", "speed"):
                hits[a].append(False)
            continue
        view = best_view(tr)
        if view is not None:  # never seen whole (always partly hidden): shape and size unreadable
            shape, size = read_shape(tr.masks[view])
            hits["shape"].append(shape == obj["shape"])
            hits["size"].append(size == obj["size"])
        v = frame_velocity(tr)
        if v is not None:
            want = _expected_velocity(obj["motion"], obj["speed"], parsed["pan"], unit)
            hits["motion"].append(_sign(v, 0.5 * unit) == _sign(want, 0.5 * unit))
            hits["speed"].append(bool(np.all(np.abs(v - want) <= 0.5 * unit)))
    out = {a: (float(np.mean(h)) if h else float("nan")) for a, h in hits.items()}
    out["count"] = float(len(tracks) == len(wanted))
    objects = np.zeros(frames.shape[1:3], bool)
    for tr in tracks.values():
        objects |= tr.masks[0]
    out["background"] = float(read_background(frames[0], objects) == parsed["background"])
    return out


class GroundedAlignment(Metric[NoParams]):
    name = "grounded_alignment"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 2
    default_backbone = "pixels"
    allowed_backbones = ("pixels",)
    failure_mode = "prompt misalignment, attribute by attribute (world captions)"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frames", self.backbone)]  # the pixels as decoded, nothing learned

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        try:
            scores = grounded_scores(frames, clip.prompt)
        except VdevalError as e:
            return ClipScore(float("nan"), note=f"not a world caption, nothing to ground: {e.message}")
        read = [scores[a] for a in ATTRIBUTES if np.isfinite(scores[a])]
        value = float(np.mean(read))
        unread = [a for a in ATTRIBUTES if not np.isfinite(scores[a])]
        note = f"unreadable (objects never seen whole): {', '.join(unread)}" if unread else None
        return ClipScore(value, extras={k: float(v) for k, v in scores.items()}, note=note)
