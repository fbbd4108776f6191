"""Physical plausibility: do objects keep moving, existing and keeping their size and shape?

Failure modes: objects that teleport, vanish and reappear, reverse without a cause, change size
or melt (the primer's object permanence and conservation). No peer metric exists; VBench and
EvalCrafter have nothing that tracks objects. Domain: the shapes world, whose objects are read
from pixels by `world_objects.track_objects` (palette colour segmentation, no learned backbone);
on natural video it finds no objects and returns NaN with a note.

Definition, per tracked object, using only "clean" frames (whole silhouette visible: off the frame
border, and either not touching another object or, drawn on top of it, at least as large as its
largest untouched view), u = min(H, W) / 32 (the world's unit):
  velocity  v_t = c_{t+1} - c_t for consecutive clean frames, c the mask centroid;
            each consecutive pair of velocities with |v_t - v_{t-1}| > 0.75 u is a violation,
            classed as a teleport when either velocity is a spike (it differs from both of its
            neighbours, which agree within 0.75 u: a jump there and on from there), else a
            reversal (v_t . v_{t-1} < 0, both at least 0.5 u), else a teleport when
            |v_t - v_{t-1}| >= 3 u, else an acceleration (a teleport is seen twice: in and out);
  size      each clean frame after the first clean one with |log(area_t / area_ref)| > 0.1;
  shape     each clean frame after the first with IoU < 0.9 between its mask and the first clean
            mask shifted by their rounded centroid difference;
  permanence each unexplained disappearance (present at t, absent at t+1) and each unexplained
            appearance after frame 0: unexplained unless the object touches the frame border in
            the frame it is seen, or its silhouette, carried at its velocity to the missing frame
            (measured on two clean frames; else any move up to 3 u px per axis, the world's
            fastest), would lie at least half outside the frame or under the other objects
            (grown by 1 px) there.
Value: the number of violations in the clip (lower is better; exactly 0 on clean world clips,
where motion is by whole pixels at constant velocity: tests/metrics/test_physical_plausibility.py).
Extras: the count per kind (reversals, teleports, accelerations, size_changes, shape_changes,
vanishings, appearances) and `objects`, the number of objects tracked.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric, NoParams
from vdeval.metrics.world_objects import ObjectTrack, grow, track_objects

KINDS = ("reversals", "teleports", "accelerations", "size_changes", "shape_changes", "vanishings", "appearances")


def velocity_violations(track: ObjectTrack, unit: float) -> dict[str, int]:
    """Counts of reversals, teleports and accelerations between consecutive clean velocities."""
    clean = track.clean
    out = {"reversals": 0, "teleports": 0, "accelerations": 0}
    v = {t: track.centroid[t + 1] - track.centroid[t] for t in range(len(clean) - 1) if clean[t] and clean[t + 1]}
    tol = 0.75 * unit

    def spike(t):  # pair t differs from both neighbours, which agree with each other: a jump and back
        return (t - 1 in v and t + 1 in v and np.hypot(*(v[t - 1] - v[t + 1])) <= tol
                and np.hypot(*(v[t] - v[t - 1])) > tol)

    for t in sorted(v):
        if t - 1 not in v:
            continue
        a, b = v[t - 1], v[t]
        dv = float(np.hypot(*(b - a)))
        if dv <= tol:
            continue
        if spike(t) or spike(t - 1):
            out["teleports"] += 1
        elif float(a @ b) < 0 and min(np.hypot(*a), np.hypot(*b)) >= 0.5 * unit:
            out["reversals"] += 1
        elif dv >= 3 * unit:
            out["teleports"] += 1
        else:
            out["accelerations"] += 1
    return out


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    H, W = mask.shape
    ys, xs = np.nonzero(mask)
    ys, xs = ys + dy, xs + dx
    ok = (ys >= 0) & (ys < H) & (xs >= 0) & (xs < W)
    out[ys[ok], xs[ok]] = True
    return out


def conservation_violations(track: ObjectTrack) -> dict[str, int]:
    """Size and shape changes of each clean frame against the first clean frame."""
    frames = np.flatnonzero(track.clean)
    out = {"size_changes": 0, "shape_changes": 0}
    if frames.size < 2:
        return out
    r = frames[0]
    for t in frames[1:]:
        if abs(np.log(track.area[t] / track.area[r])) > 0.1:
            out["size_changes"] += 1
        d = np.round(track.centroid[t] - track.centroid[r]).astype(int)
        moved = _shift(track.masks[r], int(d[0]), int(d[1]))
        iou = (moved & track.masks[t]).sum() / max((moved | track.masks[t]).sum(), 1)
        if iou < 0.9:
            out["shape_changes"] += 1
    return out


def _hidden(track: ObjectTrack, others: np.ndarray, seen: int, missing: int, step: int, reach: int) -> bool:
    """Could the object seen at `seen` be at least half outside the frame or under the other objects
    at `missing`? Carried at its velocity when the two frames measuring it are clean; otherwise any
    move of up to `reach` px per axis is allowed (the other objects are grown by `reach`)."""
    nb = seen - step
    m = track.masks[seen]
    if 0 <= nb < len(track.area) and track.clean[nb] and track.clean[seen]:
        d = np.round((track.centroid[seen] - track.centroid[nb]) * (missing - seen) / (seen - nb)).astype(int)
        moved, cover = _shift(m, int(d[0]), int(d[1])), others[missing]
    else:
        moved, cover = m, grow(others[missing][None], reach)[0]
    lost = m.sum() - moved.sum()  # pixels carried out of the frame
    return (lost + (moved & cover).sum()) >= 0.5 * m.sum()


def permanence_violations(track: ObjectTrack, others: np.ndarray, reach: int) -> dict[str, int]:
    """Disappearances and late appearances that neither the frame border nor another object explains.
    `others`: bool (T, H, W), the other objects' masks grown by one pixel."""
    present = track.present
    seen = np.flatnonzero(present)
    out = {"vanishings": 0, "appearances": 0}
    if seen.size == 0:
        return out
    border = track.border
    first = int(seen[0])
    if first > 0 and not border[first] and not _hidden(track, others, first, first - 1, 1, reach):
        out["appearances"] += 1
    for t in seen.tolist():
        if t + 1 < len(present) and not present[t + 1] and not border[t] and not _hidden(track, others, t, t + 1, -1, reach):
            out["vanishings"] += 1
    return out
def violations(frames: np.ndarray) -> tuple[dict[str, int], int]:
    """(violation counts by kind, number of objects) for uint8 frames (T, H, W, 3)."""
    tracks = track_objects(frames)
    unit = min(frames.shape[1], frames.shape[2]) / 32
    total = dict.fromkeys(KINDS, 0)
    for tr in tracks:
        others = np.zeros(tr.masks.shape, bool)
        for o in tracks:
            if o is not tr:
                others |= o.masks
        others = grow(others, 1)
        for part in (velocity_violations(tr, unit), conservation_violations(tr), permanence_violations(tr, others, 3 * max(1, round(unit)))):
            for k, n in part.items():
                total[k] += n
    return total, len(tracks)


class PhysicalPlausibility(Metric[NoParams]):
    name = "physical_plausibility"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "pixels"
    allowed_backbones = ("pixels",)
    failure_mode = "physically implausible motion (teleports, vanishing, reversals, size or shape changes)"
    audit_extras = {"reversals": False, "vanishings": False, "size_changes": False, "shape_changes": False}
    audit_extra_corruptions = {"reversals": "reverse", "vanishings": "vanish", "size_changes": "resize",
                               "shape_changes": "geometry_collapse"}

    def working_set(self, frames: int, height: int, width: int) -> int:
        # the tracker's clip-long planes: int8 labels, and per palette colour (up to eight) its
        # mask and two grown copies, and the others' union (bool): about 26 bytes a pixel at
        # worst (measured: 340 MB for 1080x1920 x 240 decoded at 455 x 256, declared 0.9 GB)
        return 32 * frames * height * width

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("frames", self.backbone)]  # the pixels as decoded, nothing learned

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        counts, n = violations(frames)
        extras = {k: float(v) for k, v in counts.items()} | {"objects": float(n)}
        if n == 0:
            return ClipScore(float("nan"), extras=extras,
                             note="no world objects found (this metric reads the shapes world's palette colours)")
        return ClipScore(float(sum(counts.values())), extras=extras)
