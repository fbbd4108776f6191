"""Rendering scenes into pixels with exact ground truth (masks, positions, optical flow).

All motion is by whole pixels per frame and shapes are hard-edged, so the ground-truth flow
warps frame t+1 exactly onto frame t wherever a pixel stays visible.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vdeval.video import Video
from vdeval.world.scene import COLORS, DIRECTIONS, SIZES, SPEEDS, Scene, WorldSpec, caption_of, sample_scene


@dataclass
class WorldClip:
    """A rendered clip with its caption and exact ground truth.

    masks: bool (T, n_objects, H, W), each object's full silhouette;
    positions: float32 (T, n_objects, 2), object centres (x, y) in pixels;
    flow: float32 (T-1, H, W, 2), forward flow (dx, dy) from frame t to t+1 of the visible surface.
    """

    video: Video
    caption: str
    scene: Scene
    spec: WorldSpec
    masks: np.ndarray
    positions: np.ndarray
    flow: np.ndarray
    seed: int | None = None

    @property
    def reference_image(self) -> np.ndarray:
        """The first frame: the image-to-video conditioning image, uint8 (H, W, 3)."""
        return self.video.frames[0]

    def flow_between(self, pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Exact forward (a -> b) and backward (b -> a) flow, float64 (len(pairs), H, W, 2), between
        rendered frames a and b of each pair, from the masks and positions: the background moves by
        the pan, each object's silhouette by its centre's displacement (later objects on top, as
        drawn). E.g. pairs (2i, 2i+2) give the flow between even frames a frame interpolator sees."""
        pan = np.asarray(pan_velocity(self.scene, self.spec), np.float64)
        fw = np.zeros((len(pairs), self.spec.height, self.spec.width, 2))
        bw = np.zeros_like(fw)
        for i, (a, b) in enumerate(pairs):
            fw[i][...], bw[i][...] = -(b - a) * pan, (b - a) * pan
            for j in range(self.masks.shape[1]):
                d = self.positions[b, j] - self.positions[a, j]
                fw[i][self.masks[a, j]], bw[i][self.masks[b, j]] = d, -d
        return fw, bw


def shape_mask(shape: str, cx: float, cy: float, radius: float, height: int, width: int) -> np.ndarray:
    """Hard silhouette of a shape centred at (cx, cy); pixel centres sit on integer coordinates."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return _shape_at(shape, xs - cx, ys - cy, radius)


def background_texture(kind: str, levels: tuple[int, int], u: np.ndarray, v: np.ndarray, period: int) -> np.ndarray:
    """Grey level of the background at integer world coordinates (u, v)."""
    lo, hi = levels
    if kind == "plain":
        on = np.zeros(u.shape, bool)
    elif kind == "striped":
        on = ((u + v) // period) % 2 == 1
    elif kind == "checkered":
        on = ((u // period) + (v // period)) % 2 == 1
    elif kind == "dotted":
        on = ((u % (2 * period)) < max(1, period // 2 + 1)) & ((v % (2 * period)) < max(1, period // 2 + 1))
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.where(on, hi, lo).astype(np.uint8)


@dataclass(frozen=True)
class Pose:
    """Per-frame changes to one object: an extra displacement (pixels), a radius factor, whether it
    is drawn, and a deformation deform(dx, dy) -> (dx, dy) of the coordinates relative to its centre
    (the silhouette is the shape evaluated at the deformed coordinates)."""

    offset: tuple[float, float] = (0.0, 0.0)
    scale: float = 1.0
    visible: bool = True
    deform: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None


def deformed_mask(shape: str, cx: float, cy: float, radius: float, height: int, width: int, deform) -> np.ndarray:
    """The silhouette of `shape` whose centre-relative coordinates pass through `deform` first."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    dx, dy = deform(xs - cx, ys - cy)
    return _shape_at(shape, dx, dy, radius)


def _shape_at(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """bool mask of `shape` of `radius` at centre-relative coordinates (dx, dy)."""
    if shape == "circle":
        return dx * dx + dy * dy <= radius * radius
    if shape == "square":
        half = radius * 0.85
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= radius * 1.2
    if shape == "triangle":  # apex up
        top, bottom = -radius, radius * 0.75
        frac = (dy - top) / (bottom - top)
        return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= frac * radius * 1.05)
    raise ValueError(f"unknown shape {shape!r}")


def pan_velocity(scene: Scene, spec: WorldSpec) -> tuple[int, int]:
    """The camera's motion in pixels per frame (0, 0 without a pan); the background moves by minus it."""
    if not scene.pan:
        return (0, 0)
    dx, dy = DIRECTIONS[scene.pan]
    s = SPEEDS[scene.pan_speed] * spec.unit_speed
    return (dx * s, dy * s)


def render_scene(
    scene: Scene,
    spec: WorldSpec,
    *,
    seed: int | None = None,
    color_at: Callable[[int, int], tuple[float, float, float]] | None = None,
    shape_at: Callable[[int, int], str] | None = None,
    texture_shift_at: Callable[[int], tuple[float, float]] | None = None,
    pose_at: Callable[[int, int], Pose] | None = None,
) -> WorldClip:
    """Render `scene`. The optional callables let corruptions alter one property over time:
    color_at(t, i) / shape_at(t, i) replace object i's colour / shape at frame t;
    texture_shift_at(t) slides the background texture against the camera by (du, dv) pixels;
    pose_at(t, i) moves, scales, hides or deforms object i at frame t (see Pose).
    Masks, positions and flow follow what is drawn (with a deforming Pose the flow of the
    object is its centre's motion, no longer exact on its pixels)."""
    H, W, T = spec.height, spec.width, spec.frames
    n = len(scene.objects)
    unit = spec.unit_speed
    pan = pan_velocity(scene, spec)
    period = max(2, round(4 * min(H, W) / 32))
    ys, xs = np.mgrid[0:H, 0:W]
    frames = np.empty((T, H, W, 3), np.uint8)
    masks = np.zeros((T, n, H, W), bool)
    positions = np.zeros((T, n, 2), np.float32)
    flow = np.zeros((max(T - 1, 0), H, W, 2), np.float32)
    for t in range(T):
        cam = (pan[0] * t, pan[1] * t)
        shift = texture_shift_at(t) if texture_shift_at else (0, 0)
        u = xs + cam[0] + scene.texture_phase[0] + shift[0]
        v = ys + cam[1] + scene.texture_phase[1] + shift[1]
        grey = background_texture(scene.background, scene.bg_levels, u, v, period)
        img = np.repeat(grey[..., None], 3, axis=-1)
        if t < T - 1:
            flow[t, ..., 0] = -pan[0]
            flow[t, ..., 1] = -pan[1]
        for i, obj in enumerate(scene.objects):
            pose = pose_at(t, i) if pose_at else _PLAIN
            cx, cy = _centre(obj, t, unit, cam, pose)
            radius = SIZES[obj.size] * min(H, W) * pose.scale
            shape = shape_at(t, i) if shape_at else obj.shape
            if not pose.visible:
                m = np.zeros((H, W), bool)
            elif pose.deform is not None:
                m = deformed_mask(shape, cx, cy, radius, H, W, pose.deform)
            else:
                m = shape_mask(shape, cx, cy, radius, H, W)
            color = color_at(t, i) if color_at else COLORS[obj.color]
            img[m] = np.round(np.asarray(color, np.float64)).astype(np.uint8)
            masks[t, i] = m
            positions[t, i] = (cx, cy)
            if t < T - 1:
                nxt = _centre(obj, t + 1, unit, (pan[0] * (t + 1), pan[1] * (t + 1)), pose_at(t + 1, i) if pose_at else _PLAIN)
                flow[t][m] = (nxt[0] - cx, nxt[1] - cy)
        frames[t] = img
    return WorldClip(Video(frames, spec.fps), caption_of(scene), scene, spec, masks, positions, flow, seed)


_PLAIN = Pose()


def _centre(obj, t: int, unit: int, cam: tuple[int, int], pose: Pose) -> tuple[float, float]:
    vel = obj.velocity(unit)
    return (obj.start[0] + vel[0] * t - cam[0] + pose.offset[0], obj.start[1] + vel[1] * t - cam[1] + pose.offset[1])


def sample_clip(seed: int, spec: WorldSpec | None = None) -> WorldClip:
    """The world clip of `seed`: deterministic for a given (seed, spec)."""
    spec = spec or WorldSpec()
    return render_scene(sample_scene(seed, spec), spec, seed=seed)
