"""Reading the shapes world's objects straight from pixels: no learned backbone, no ground truth.

World objects are drawn in one of eight saturated palette colours on a grey background whose
levels stay below 160, so a pixel belongs to an object when it is coloured (max - min channel
> 50) or near-white (min channel > 200), and it takes the nearest palette colour within 80 (RGB
Euclidean). Each palette colour is one object (the world never gives two objects one colour); per
frame the object is that colour's largest 8-connected component, kept when it covers at least
`min_area(H, W)` pixels. On clean world clips the masks equal the renderer's silhouettes exactly
for objects that nothing hides (tests/metrics/test_physical_plausibility.py); a partly hidden object keeps
its largest visible piece. Valid for the shapes world domain only: natural video has no palette.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from vdeval.world.scene import COLORS, SIZES

PALETTE_NAMES = tuple(COLORS)
PALETTE = np.asarray([COLORS[c] for c in PALETTE_NAMES], np.float64)
_EIGHT = np.ones((3, 3), bool)


def min_area(height: int, width: int) -> int:
    """Half the area of a small object's bounding square, at least 3 pixels."""
    return max(3, int(round(0.5 * (SIZES["small"] * min(height, width)) ** 2)))


def palette_labels(frames: np.ndarray) -> np.ndarray:
    """int8 (T, H, W): palette index of each object pixel, -1 for background; a frame at a time
    (a clip-sized float64 copy of a long clip would be gigabytes)."""
    out = np.full(frames.shape[:3], -1, np.int8)
    for t, frame in enumerate(frames):
        f = np.asarray(frame, np.float64)
        chroma = f.max(-1) - f.min(-1)
        candidate = (chroma > 50) | (f.min(-1) > 200)
        px = f[candidate]  # only coloured pixels need the palette search
        d2 = (px * px).sum(-1)[:, None] - 2 * px @ PALETTE.T + (PALETTE * PALETTE).sum(-1)
        idx = d2.argmin(-1)
        out[t][candidate] = np.where(d2.min(-1) < 80 ** 2, idx, -1)
    return out


@dataclass
class ObjectTrack:
    """One palette colour through the clip: per-frame mask (T, H, W), area, centroid (x, y), and
    flags for frames where it touches the frame border, touches another object (8-neighbours:
    it may be partly hidden), or comes within `margin` px of one (it may be hidden next frame)."""

    color: str
    masks: np.ndarray
    area: np.ndarray
    centroid: np.ndarray
    border: np.ndarray
    touching: np.ndarray
    near_other: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return self.area > 0

    @property
    def clean(self) -> np.ndarray:
        """Frames where the whole silhouette is seen: present, off the border, and either not touching
        another object or (drawn on top of it) at least as large as its largest untouched view."""
        inside = self.present & ~self.border
        alone = inside & ~self.touching
        if not alone.any():
            return alone
        return alone | (inside & (self.area >= self.area[alone].max()))

    @property
    def exposed(self) -> np.ndarray:
        """Clean frames with no other object within the margin: nothing could hide it next frame."""
        return self.clean & ~self.near_other


def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask, structure=_EIGHT)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def grow(masks: np.ndarray, r: int) -> np.ndarray:
    """Each frame's mask (T, H, W) dilated by r pixels (8-neighbourhood)."""
    return np.stack([ndimage.binary_dilation(f, _EIGHT, iterations=r) if f.any() else f for f in masks])


_RECENT: dict = {}  # the last few clips' tracks: several world metrics read the same clip in turn


def track_objects(frames: np.ndarray, margin: int | None = None) -> list[ObjectTrack]:
    """The world objects of a clip (uint8 (T, H, W, 3)), one track per palette colour seen anywhere.
    Treat the result as read-only: it may be shared with the next caller asking for the same clip."""
    import hashlib

    key = (frames.shape, margin, hashlib.sha1(np.ascontiguousarray(frames).tobytes()).hexdigest())
    if key not in _RECENT:
        if len(_RECENT) >= 2:  # the metrics of one clip read it in turn; tracks of a long clip are large
            _RECENT.pop(next(iter(_RECENT)))
        _RECENT[key] = _track(frames, margin)
    return _RECENT[key]


def _track(frames: np.ndarray, margin: int | None) -> list[ObjectTrack]:
    T, H, W = frames.shape[:3]
    labels = palette_labels(frames)
    floor = min_area(H, W)
    margin = margin if margin is not None else 3 * max(1, round(min(H, W) / 32))
    per_colour = {}
    for c in np.unique(labels[labels >= 0]):
        masks = np.zeros((T, H, W), bool)
        for t in range(T):
            m = _largest_component(labels[t] == c)
            if m.sum() >= floor:
                masks[t] = m
        if masks.any():
            per_colour[int(c)] = masks
    near_zone = {c: grow(m, margin) for c, m in per_colour.items()}
    touch_zone = {c: grow(m, 1) for c, m in per_colour.items()}
    tracks = []
    for c, m in per_colour.items():
        others = np.zeros((T, H, W), bool)
        for c2, m2 in per_colour.items():
            if c2 != c:
                others |= m2
        area = m.reshape(T, -1).sum(1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # through row and column counts: no (T, H, W) int copy
            cx = m.sum(1, dtype=np.int64) @ np.arange(W, dtype=np.float64) / area
            cy = m.sum(2, dtype=np.int64) @ np.arange(H, dtype=np.float64) / area
        # asarray: numpy's stubs type .any(axis) as a bool or an array
        border = np.asarray(m[:, 0, :].any(1) | m[:, -1, :].any(1) | m[:, :, 0].any(1) | m[:, :, -1].any(1))
        near = np.asarray((near_zone[c] & others).reshape(T, -1).any(1))
        touching = np.asarray((touch_zone[c] & others).reshape(T, -1).any(1))
        tracks.append(ObjectTrack(PALETTE_NAMES[c], m, area, np.stack([cx, cy], 1), border, touching, near))
    return tracks
