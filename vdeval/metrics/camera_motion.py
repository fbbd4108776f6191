"""Camera motion: what the camera did (static, pan, tilt, zoom, or a mix), read from dense flow, and
whether that is what the caption asked for.

Failure mode: camera motion that does not follow the prompt (a "pan left" that stays still, a
still scene that drifts, a tilt where a zoom was asked for).

Global motion (per frame pair t -> t+1, forward flow, coordinates centred on the frame):
  the content moves as x -> z x + c, z = (1 + zoom rate) e^{i rotation} and c a translation, in
  complex numbers (a similarity transform: translation, zoom and rotation, 4 parameters). Only
  trackable pixels vote (`trackable`: texture in two directions, so their flow is determined),
  at most MAX_POINTS of them on a regular grid. RANSAC with MSAC scoring (sum of squared
  residuals truncated at `inlier_px`, default max(0.5, min(H, W) / 128) px) over HYPOTHESES
  two-point hypotheses (fixed seed; points at least a quarter of the short side apart), "no
  motion" and "the median translation"; a moving hypothesis must be supported at the frame's
  border on two opposite sides (see `fit_similarity`), so objects moving on a still camera are
  outliers. The winner is refitted by least squares on its inliers (three times); "no motion"
  stays exactly still.
The clip's motion is the composition of the pair transforms, frame 0 -> last frame. Its
displacement at the midpoints of the four frame edges is classified with VBench-2.0's rule
(vbench2/camera_motion.py: a point moves right/left/down/up when its displacement exceeds
`factor` x min(H, W); top and bottom both moving left = pan right, both right = pan
left, both down = tilt up, both up = tilt down, top up and bottom down = zoom in, the reverse =
zoom out, both still = static; the same for the left and right points, with left moving left and
right moving right = zoom in; the union of both pairs' classes, "static" dropped when another
class is present). Labels: static, pan_left, pan_right, tilt_up, tilt_down, zoom_in, zoom_out, or
none of them ("None", e.g. the edges move apart in ways no class describes).

What is NOT VBench's: VBench-2.0 tracks a 10 x 10 grid of points with CoTracker from the first to
the last frame of the first scene and classifies their raw displacement (object motion included);
here the displacement is the fitted camera model's (object motion excluded), from DIS or RAFT flow,
and the threshold factor is 0.02, not VBench's 0.005 (`FACTOR`: at 0.005 DIS's noise calls many
still cameras moving; `params: {factor: 0.005}` gives VBench's). The classification rule and the
0/1 scale are VBench's; the measurement is not, so the number is not VBench-2.0's camera_motion
and is never reported as it.

Caption: camera words are read from the prompt (`requested_motion`): VBench's camera prompts
("pan left", "tilt up", "zoom in", "static shot", "the camera is fixed", ...) and the world's
"with the camera panning DIR" (left/right = pan, up/down = tilt, diagonals both: "panning up-left"
asks for pan_left and tilt_up). A world caption without a pan asks for a still camera (the world
has no other camera). Any other caption without camera words scores NaN with a note, as does one
asking for a motion this metric does not read (orbit, dolly, oblique shots).

Value (VBench-2.0's scale): 1.0 when every requested class is among the predicted ones, else 0.0
(higher is better; a generator's mean is the fraction of clips whose camera did what was asked).
extras: pan (camera moving right, +) and tilt (camera moving up, +) as the displacement of the
frame centre over the clip in fractions of min(H, W); zoom (log of the clip's scale change, +
in); rotation (radians, content turning clockwise on screen +); inlier_fraction (mean over pairs
of the vectors following the camera model); one 0/1 flag per label; misalignment (continuous,
lower is better): the L1 distance in edge-displacement units (fractions of min(H, W)) from the
measured (pan, tilt, zoom, rotation) to what the caption allows, a requested component having to
pass `factor` in its direction and an unrequested one to stay within it. The audit ranks clips by
`misalignment`, beside the 0/1 value. curve: per-pair camera speed (|c| in pixels).

Limits (what no flow can see): a camera moving over a background without texture in two
directions at the frame's border (the world's `plain`, and its diagonal `striped`, whose stripes
move only across themselves) gives no evidence and reads as static; so does a camera whose
motion only objects show.
"""
from __future__ import annotations

import re

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval.features import ClipFeatures, FeatureRequest, input_fps, widen_half
from vdeval.metrics.base import ClipScore, Metric

LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")
VBENCH_FACTOR = 0.005  # VBench-2.0's transform_class factor: a displacement over 0.5% of min(H, W) counts
# ours: on a calibration split of world clips (seeds 1000-1079, 32 and 64 px, 8 frames) 0.005 calls
# 23 (32 px) and 7 (64 px) of 46 still-camera clips moving (DIS noise of ~0.15 px over a clip), 0.02
# calls 3 and 0, and 0.01 and 0.03 no fewer; every pan is read at 0.02
FACTOR = 0.02
MAX_POINTS = 2048
HYPOTHESES = 64
REFITS = 3
TEXTURE = 0.002  # smallest structure-tensor eigenvalue of a trackable pixel (grey in [0, 1])
MIN_SPREAD = 0.5  # share of the evidence-holding border blocks a camera motion's inliers must reach
MIN_COVER = 0.25  # and at least this share of all ring blocks
BLOCKS = 8  # the frame's border ring of BLOCKS x BLOCKS blocks holds a camera motion's evidence
RING_DEPTH = 2  # blocks deep: sparse texture (the world's dots) still reaches every side
_SEED = 0xCA3


# ---- global motion ------------------------------------------------------------------------------

def _ring() -> tuple[np.ndarray, np.ndarray]:
    """(BLOCKS x BLOCKS index of each block on the border ring, RING_DEPTH blocks deep, -1 inside;
    the ring blocks' sides as a (n_ring, 4) 0/1 matrix: top, bottom, left, right)."""
    ids = np.full((BLOCKS, BLOCKS), -1, np.int64)
    sides: list[list[bool]] = []
    last = BLOCKS - RING_DEPTH
    for y in range(BLOCKS):
        for x in range(BLOCKS):
            on = [y < RING_DEPTH, y >= last, x < RING_DEPTH, x >= last]
            if any(on):
                ids[y, x] = len(sides)
                sides.append(on)
    return ids, np.array(sides, np.float64)


_RING_ID, _RING_SIDES = _ring()


def _grid(h: int, w: int, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) indices of a regular grid of at most max_points pixels over an h x w frame."""
    step = max(1, int(np.ceil(np.sqrt(h * w / max_points))))
    ys = np.arange(step // 2, h, step)
    xs = np.arange(step // 2, w, step)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return yy.ravel(), xx.ravel()


def trackable(frame: np.ndarray, threshold: float = TEXTURE) -> np.ndarray:
    """bool (H, W): pixels whose neighbourhood has texture in two directions (the smaller
    eigenvalue of the 5 x 5 structure tensor of the grey image in [0, 1], 3 x 3 Sobel, at least
    `threshold`), so their flow is determined: not on flat colour, not along a straight edge."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey *= np.float32(1 / 255.0)
    return np.asarray(cv2.cornerMinEigenVal(grey, 5, ksize=3)) >= threshold


def fit_similarity(flow: np.ndarray, mask: np.ndarray | None = None, inlier_px: float | None = None,
                   min_spread: float = MIN_SPREAD, max_points: int = MAX_POINTS, hypotheses: int = HYPOTHESES,
                   seed: int = _SEED) -> tuple[complex, complex, float]:
    """(z, c, inlier fraction) of the camera's similarity x -> z x + c (complex, centred pixel
    coordinates) for one pair's flow (H, W, 2) as (dx, dy), from the vectors where `mask` (bool
    H x W, e.g. `trackable`; None: all) is True and the flow finite.

    Where a camera's motion shows is the frame's border: a moving hypothesis is admissible only
    when its inliers reach blocks on two opposite sides of the border ring (RING_DEPTH blocks
    deep in a BLOCKS x BLOCKS grid), at least `min_spread` of the ring blocks holding any evidence
    and MIN_COVER of all ring blocks. An object, even a large one, touches the border on one or two adjacent sides.
    "No motion" is always admissible and wins ties, so a pair without evidence of camera motion
    (flat or one-directional texture at the border) reads as a still camera; a pair with no finite
    flow at all gives (nan, nan, 0)."""
    f = widen_half(flow)
    h, w = f.shape[:2]
    tol = inlier_px if inlier_px is not None else max(0.5, min(h, w) / 128)
    yi, xi = _grid(h, w, max_points)
    d = f[yi, xi].astype(np.float64)
    ok = np.isfinite(d).all(axis=1)
    if not ok.any():  # no flow at all: nothing is known, not even that the camera is still
        return complex(np.nan, np.nan), complex(np.nan, np.nan), 0.0
    if mask is not None:
        ok &= mask[yi, xi]
    p = (xi - (w - 1) / 2.0) + 1j * (yi - (h - 1) / 2.0)
    block = _RING_ID[yi * BLOCKS // h, xi * BLOCKS // w]  # -1 off the border ring
    p, d, block = p[ok], d[ok, 0] + 1j * d[ok, 1], block[ok]
    if p.size < 3:
        return 1.0 + 0j, 0j, 0.0
    q = p + d
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, p.size, (2, hypotheses))
    far = np.abs(p[i] - p[j]) >= min(h, w) / 4.0
    i, j = i[far], j[far]
    z = (q[i] - q[j]) / (p[i] - p[j])
    c = q[i] - z * p[i]
    med = np.median(d.real) + 1j * np.median(d.imag)
    z = np.concatenate([[1.0 + 0j, 1.0 + 0j], z])  # "no motion" first: it wins ties
    c = np.concatenate([[0j, med], c])
    n_ring = _RING_SIDES.shape[0]
    # ring points grouped by block: a hypothesis "hits" a block when any of its points is an inlier
    on_ring = np.flatnonzero(block >= 0)
    order = on_ring[np.argsort(block[on_ring], kind="stable")]
    blocks, starts = np.unique(block[order], return_index=True)
    sides = _RING_SIDES[blocks]  # the sides of the blocks holding evidence
    count_parts: list[np.ndarray] = []
    admissible_parts: list[np.ndarray] = []
    for k in range(0, z.size, 32):  # in blocks of hypotheses: the working set stays small
        r = np.abs(z[k:k + 32, None] * p + c[k:k + 32, None] - q)
        count_parts.append(-np.square(np.minimum(r, tol)).sum(axis=1))  # MSAC: truncated squared residuals
        if blocks.size == 0:
            admissible_parts.append(np.zeros(r.shape[0], bool))
            continue
        hit = np.logical_or.reduceat(r[:, order] <= tol, starts, axis=1)  # (hypotheses, blocks held)
        n_hit = hit.sum(axis=1)
        on = (hit.astype(np.float64) @ sides) > 0  # top, bottom, left, right
        opposite = (on[:, 0] & on[:, 1]) | (on[:, 2] & on[:, 3])
        admissible_parts.append((n_hit >= min_spread * blocks.size) & (n_hit >= MIN_COVER * n_ring) & opposite)
    counts, admissible = np.concatenate(count_parts), np.concatenate(admissible_parts)
    admissible[0] = True
    counts[~admissible] = -np.inf
    best = int(np.argmax(counts))
    if best == 0:
        return 1.0 + 0j, 0j, float(np.mean(np.abs(d) <= tol))
    zb, cb = z[best], c[best]
    inl = np.abs(zb * p + cb - q) <= tol
    for _ in range(REFITS):
        if inl.sum() < 3:
            break
        zb, cb = _least_squares(p[inl], q[inl])
        new = np.abs(zb * p + cb - q) <= tol
        if np.array_equal(new, inl):
            break
        inl = new
    return complex(zb), complex(cb), float(inl.mean())


def _least_squares(p: np.ndarray, q: np.ndarray) -> tuple[complex, complex]:
    """The similarity z p + c closest to q in least squares (closed form in complex numbers)."""
    pm, qm = p.mean(), q.mean()
    pc = p - pm
    den = float(np.sum(np.abs(pc) ** 2))
    z = complex(np.sum(np.conj(pc) * (q - qm)) / den) if den > 0 else 1.0 + 0j
    return z, complex(qm - z * pm)


def compose(pairs: list[tuple[complex, complex]]) -> tuple[complex, complex]:
    """The transform frame 0 -> last frame of per-pair transforms (z_t, c_t), applied in order."""
    Z, C = 1.0 + 0j, 0j
    for z, c in pairs:
        Z, C = z * Z, z * C + c
    return Z, C


# ---- VBench-2.0's classification ------------------------------------------------------------------

def edge_displacements(Z: complex, C: complex, h: int, w: int) -> dict[str, complex]:
    """Displacement (dx + i dy, pixels) of the midpoints of the top, bottom, left and right edges."""
    pts = {"top": -1j * (h - 1) / 2, "bottom": 1j * (h - 1) / 2, "left": -(w - 1) / 2 + 0j, "right": (w - 1) / 2 + 0j}
    return {k: Z * p + C - p for k, p in pts.items()}


def _directions(v: complex, scale: float) -> list[str]:
    out = []
    if v.real > scale:
        out.append("right")
    elif v.real < -scale:
        out.append("left")
    if v.imag > scale:
        out.append("down")
    elif v.imag < -scale:
        out.append("up")
    return out or ["static"]


_COMMON = {"left_left": "pan_right", "right_right": "pan_left", "down_down": "tilt_up", "up_up": "tilt_down",
           "static_static": "static"}
_TOP_BOTTOM = {**_COMMON, "up_down": "zoom_in", "down_up": "zoom_out"}
_LEFT_RIGHT = {**_COMMON, "left_right": "zoom_in", "right_left": "zoom_out"}


def _pair_classes(a: list[str], b: list[str], mapping: dict) -> list[str]:
    found = [mapping[f"{x}_{y}"] for x in a for y in b if f"{x}_{y}" in mapping]
    return found or ["None"]


def classify(edges: dict[str, complex], min_side: int, factor: float = FACTOR) -> set[str]:
    """VBench-2.0's camera classes from the four edge displacements (see module docstring)."""
    s = min_side * factor
    d = {k: _directions(v, s) for k, v in edges.items()}
    out = set(_pair_classes(d["top"], d["bottom"], _TOP_BOTTOM) + _pair_classes(d["left"], d["right"], _LEFT_RIGHT))
    if "static" in out and len(out) > 1:
        out.discard("static")
    if "None" in out and len(out) > 1:
        out.discard("None")
    return out


# ---- the caption's camera words -----------------------------------------------------------------

_WORLD_PAN = re.compile(r"\bwith the camera panning (up-left|up-right|down-left|down-right|left|right|up|down)\b")
_VBENCH = [
    (re.compile(r"\bpan(?:s|ning)?\s+(left|right)\b"), "pan_{}"),
    (re.compile(r"\btilt(?:s|ing)?\s+(up|down)\b"), "tilt_{}"),
    (re.compile(r"\bzoom(?:s|ing)?\s+(in|out)\b"), "zoom_{}"),
]
_STATIC = re.compile(r"\b(static shot|camera is fixed|camera movement is static|static camera|still camera|fixed camera)\b")
_UNREAD = re.compile(r"\b(orbit|orbits|orbiting|dolly|oblique|arc shot|truck(?:s|ing)? (?:left|right)|rack focus)\b")


class CaptionCamera:
    """What a caption asks of the camera: a set of labels, or why it cannot be read."""

    def __init__(self, labels: frozenset[str] | None, why: str | None = None):
        self.labels, self.why = labels, why


def requested_motion(caption: str) -> CaptionCamera:
    """The camera classes a caption asks for (see module docstring)."""
    text = " ".join(caption.lower().split())
    m = _WORLD_PAN.search(text)
    if m:
        from vdeval.world.scene import DIRECTIONS

        dx, dy = DIRECTIONS[m.group(1)]
        labels = {"pan_left" if dx < 0 else "pan_right"} if dx else set()
        labels |= {"tilt_up" if dy < 0 else "tilt_down"} if dy else set()
        return CaptionCamera(frozenset(labels))
    unread = _UNREAD.search(text)
    if unread:
        return CaptionCamera(None, f"the caption asks for camera motion this metric does not read ({unread.group(0)!r})")
    labels = {fmt.format(g) for rx, fmt in _VBENCH for g in rx.findall(text)}
    if labels:
        return CaptionCamera(frozenset(labels))
    if _STATIC.search(text):
        return CaptionCamera(frozenset({"static"}))
    if _is_world_caption(text):
        return CaptionCamera(frozenset({"static"}))  # the world's camera only moves when the caption says so
    return CaptionCamera(None, "the caption names no camera motion (pan, tilt, zoom or a static shot)")


def _is_world_caption(text: str) -> bool:
    from vdeval.errors import VdevalError
    from vdeval.world.scene import parse_caption

    try:
        parse_caption(text)
        return True
    except VdevalError:
        return False


# ---- alignment ------------------------------------------------------------------------------------

def motion_components(Z: complex, C: complex, min_side: int) -> dict[str, float]:
    """The clip's camera motion: pan / tilt (centre displacement, camera right / up +, fractions of
    min_side), zoom (log scale, + in), rotation (radians)."""
    return {"pan": -C.real / min_side, "tilt": C.imag / min_side, "zoom": float(np.log(abs(Z))),
            "rotation": float(np.angle(Z))}


_SIGNS = {"pan_left": ("pan", -1), "pan_right": ("pan", 1), "tilt_up": ("tilt", 1), "tilt_down": ("tilt", -1),
          "zoom_in": ("zoom", 1), "zoom_out": ("zoom", -1)}


def misalignment(components: dict[str, float], requested: frozenset[str], factor: float = FACTOR) -> float:
    """L1 distance (edge displacement, fractions of min side) from the measured motion to what the
    caption allows: requested components past `factor` in their direction, the rest within it."""
    # edge displacement of each component at the frame's half-size: zoom and rotation move the
    # edge midpoints by about (half the short side) x log-scale / angle
    edge = {"pan": components["pan"], "tilt": components["tilt"], "zoom": components["zoom"] / 2,
            "rotation": components["rotation"] / 2}
    want = {comp: sign for lab in requested if lab in _SIGNS for comp, sign in [_SIGNS[lab]]}
    total = 0.0
    for comp, v in edge.items():
        if comp in want:
            total += max(0.0, factor - want[comp] * v)
        else:
            total += max(0.0, abs(v) - factor)
    return float(total)


class CameraMotionParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    factor: float = Field(FACTOR, gt=0)  # VBench-2.0's displacement threshold, fraction of min(H, W)
    inlier_px: float | None = Field(None, gt=0)  # None: max(0.5, min(H, W) / 128)
    texture: float = Field(TEXTURE, ge=0)  # structure-tensor eigenvalue of a trackable pixel
    min_spread: float = Field(MIN_SPREAD, ge=0, le=1)  # share of blocks a camera motion must reach


class CameraMotion(Metric[CameraMotionParams]):
    name = "camera_motion"
    version = "1"
    higher_is_better = True
    level = "clip"
    min_frames = 2
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "camera motion not as prompted"
    audit_corruption = "camera_pan"
    audit_extras = {"misalignment": False}

    Params = CameraMotionParams

    def requests(self) -> list[FeatureRequest]:
        # the frames as the flow backbone saw them: texture is read at the flow's pixels
        return [FeatureRequest("flow", self.backbone), FeatureRequest("frames", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        flow = clip.get("flow", self.backbone)
        fw = flow["forward"]
        h, w = fw.shape[1], fw.shape[2]
        frames = clip.frames_for(self.backbone)
        fits = [fit_similarity(fw[t], trackable(frames[t], self.params.texture), self.params.inlier_px,
                               self.params.min_spread) for t in range(fw.shape[0])]
        good = [(z, c) for z, c, _ in fits if np.isfinite(z) and np.isfinite(c)]
        curve = [float(abs(c)) for _, c, _ in fits]
        if len(good) < len(fits):
            return ClipScore(float("nan"), curve, note=f"{len(fits) - len(good)} of {len(fits)} pairs have no finite flow")
        Z, C = compose(good)
        m = min(h, w)
        predicted = classify(edge_displacements(Z, C, h, w), m, self.params.factor)
        comps = motion_components(Z, C, m)
        extras = {**comps, "inlier_fraction": float(np.mean([f for _, _, f in fits])),
                  **{lab: float(lab in predicted) for lab in LABELS}, **input_fps(flow)}
        asked = requested_motion(clip.prompt or "")
        if asked.labels is None:
            return ClipScore(float("nan"), curve, extras, note=asked.why)
        extras["misalignment"] = misalignment(comps, asked.labels, self.params.factor)
        return ClipScore(float(asked.labels <= predicted), curve, extras)
