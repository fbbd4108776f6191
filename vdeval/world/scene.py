"""What a world clip contains (pure data), its caption grammar, and sampling scenes from a seed.

Caption grammar (one fixed form, so a caption parses back into its scene attributes):

    caption  := object ("and" object)? "on a" BACKGROUND "background" ("with the camera panning" DIR)?
    object   := "a" SIZE COLOR SHAPE ("moving" DIR SPEED | "staying still")

e.g. "a small red circle moving left slowly on a striped background".
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from vdeval.errors import VdevalError

SHAPES = ("circle", "square", "triangle", "diamond")
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 80, 235),
    "yellow": (230, 210, 40),
    "purple": (160, 60, 205),
    "cyan": (40, 205, 215),
    "orange": (245, 135, 30),
    "white": (240, 240, 240),
}
SIZES = {"small": 0.12, "large": 0.2}  # radius as a fraction of min(H, W)
# unit direction vectors (dx, dy) in image coordinates (y grows downwards)
DIRECTIONS = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1),
}
MOTIONS = tuple(DIRECTIONS) + ("still",)
SPEEDS = {"slowly": 1, "quickly": 2}  # pixels per frame at 32 px, scaled with resolution
BACKGROUNDS = ("plain", "striped", "checkered", "dotted")

_FIXED_WORDS = ("a", "and", "on", "background", "moving", "staying", "still", "with", "the", "camera", "panning")


def vocabulary() -> list[str]:
    """Every word a world caption can contain, in a fixed order (index = token id order)."""
    words = list(_FIXED_WORDS) + list(SIZES) + list(COLORS) + list(SHAPES) + list(DIRECTIONS) + list(SPEEDS)
    words += list(BACKGROUNDS)
    return words


@dataclass(frozen=True)
class WorldSpec:
    """Resolution, length and the attribute sets scenes are drawn from."""

    height: int = 32
    width: int = 32
    frames: int = 8
    fps: float = 8.0
    min_objects: int = 1
    max_objects: int = 2
    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = tuple(COLORS)
    sizes: tuple[str, ...] = tuple(SIZES)
    motions: tuple[str, ...] = MOTIONS
    speeds: tuple[str, ...] = tuple(SPEEDS)
    backgrounds: tuple[str, ...] = BACKGROUNDS
    pan_probability: float = 0.0

    def __post_init__(self):
        checks = [
            (self.height >= 8 and self.width >= 8, "height and width must be at least 8"),
            (self.frames >= 1, "frames must be at least 1"),
            (1 <= self.min_objects <= self.max_objects <= 2, "objects must be 1 or 2 (min_objects <= max_objects)"),
            (0.0 <= self.pan_probability <= 1.0, "pan_probability must be in [0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise VdevalError(f"invalid world spec: {msg}")
        for name, chosen, allowed in (
            ("shapes", self.shapes, SHAPES), ("colors", self.colors, tuple(COLORS)),
            ("sizes", self.sizes, tuple(SIZES)), ("motions", self.motions, MOTIONS),
            ("speeds", self.speeds, tuple(SPEEDS)), ("backgrounds", self.backgrounds, BACKGROUNDS),
        ):
            bad = [c for c in chosen if c not in allowed]
            if bad or not chosen:
                raise VdevalError(f"invalid world spec: {name} {list(chosen)} must be a non-empty subset of {list(allowed)}")

    @property
    def unit_speed(self) -> int:
        return max(1, round(min(self.height, self.width) / 32))

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> WorldSpec:
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    color: str
    size: str
    motion: str  # a DIRECTIONS key or "still"
    speed: str  # a SPEEDS key (ignored when still)
    start: tuple[int, int] = (0, 0)  # (x, y) of the centre in frame 0, in pixels

    def phrase(self) -> str:
        move = "staying still" if self.motion == "still" else f"moving {self.motion} {self.speed}"
        return f"a {self.size} {self.color} {self.shape} {move}"

    def velocity(self, unit: int) -> tuple[int, int]:
        if self.motion == "still":
            return (0, 0)
        dx, dy = DIRECTIONS[self.motion]
        s = SPEEDS[self.speed] * unit
        return (dx * s, dy * s)


@dataclass(frozen=True)
class Scene:
    objects: tuple[ObjectSpec, ...]
    background: str
    bg_levels: tuple[int, int] = (50, 110)  # the two grey levels of the background texture
    pan: str | None = None  # camera pan direction (a DIRECTIONS key) or None
    pan_speed: str = "slowly"
    texture_phase: tuple[int, int] = (0, 0)
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def caption(self) -> str:
        return caption_of(self)


def caption_of(scene: Scene) -> str:
    text = " and ".join(o.phrase() for o in scene.objects) + f" on a {scene.background} background"
    if scene.pan:
        text += f" with the camera panning {scene.pan}"
    return text


_OBJ = (
    rf"a (?P<size>{'|'.join(SIZES)}) (?P<color>{'|'.join(COLORS)}) (?P<shape>{'|'.join(SHAPES)}) "
    rf"(?:moving (?P<dir>{'|'.join(map(re.escape, DIRECTIONS))}) (?P<speed>{'|'.join(SPEEDS)})|staying still)"
)
_CAPTION = re.compile(
    rf"^(?P<o1>{_OBJ.replace('?P<', '?P<a')})(?: and (?P<o2>{_OBJ.replace('?P<', '?P<b')}))? on a "
    rf"(?P<bg>{'|'.join(BACKGROUNDS)}) background(?: with the camera panning (?P<pan>{'|'.join(map(re.escape, DIRECTIONS))}))?$"
)


def parse_caption(caption: str) -> dict:
    """Caption -> {"objects": [{shape, color, size, motion, speed}], "background", "pan"}.

    Raises VdevalError for text outside the grammar, naming the first unknown word if any.
    """
    text = " ".join(caption.strip().lower().split())
    m = _CAPTION.match(text)
    if not m:
        vocab = set(vocabulary())
        unknown = [w for w in text.split() if w not in vocab]
        why = f"unknown word {unknown[0]!r}" if unknown else "words in an order the grammar does not allow"
        raise VdevalError(
            f"caption {caption!r} is not a world caption: {why}",
            "captions look like 'a small red circle moving left slowly on a striped background'",
        )
    objects = []
    for p in ("a", "b"):
        if m.group(f"{p}size") is None:
            continue
        motion = m.group(f"{p}dir") or "still"
        objects.append({
            "size": m.group(f"{p}size"), "color": m.group(f"{p}color"), "shape": m.group(f"{p}shape"),
            "motion": motion, "speed": m.group(f"{p}speed") or "slowly",
        })
    return {"objects": objects, "background": m.group("bg"), "pan": m.group("pan")}


def _start_position(rng: np.random.Generator, spec: WorldSpec, radius: float, vel: tuple[int, int]) -> tuple[int, int]:
    """A start that keeps the whole object inside the frame for the whole clip when possible."""
    out = []
    for extent, v in ((spec.width, vel[0]), (spec.height, vel[1])):
        travel = v * (spec.frames - 1)
        lo = int(np.ceil(radius)) - min(0, travel)
        hi = extent - 1 - int(np.ceil(radius)) - max(0, travel)
        if hi < lo:  # cannot stay inside all clip long: start from the side it moves away from
            lo = hi = (int(np.ceil(radius)) if v > 0 else extent - 1 - int(np.ceil(radius))) if v else extent // 2
        out.append(int(rng.integers(lo, hi + 1)))
    return (out[0], out[1])


def _background_levels(rng: np.random.Generator) -> tuple[int, int]:
    c0 = int(rng.integers(25, 80))
    return (c0, c0 + int(rng.integers(45, 80)))


def _pick(rng: np.random.Generator, options) -> str:
    options = list(options)
    return options[int(rng.integers(len(options)))]


def sample_scene(seed: int, spec: WorldSpec) -> Scene:
    """A random scene, a pure function of (seed, spec)."""
    rng = np.random.default_rng([int(seed), 0x5EED])
    n = int(rng.integers(spec.min_objects, spec.max_objects + 1))
    attrs = []
    for _ in range(n):
        attrs.append({
            "shape": _pick(rng, spec.shapes), "color": _pick(rng, spec.colors), "size": _pick(rng, spec.sizes),
            "motion": _pick(rng, spec.motions), "speed": _pick(rng, spec.speeds),
        })
    if n == 2 and attrs[1]["color"] == attrs[0]["color"] and len(spec.colors) > 1:
        attrs[1]["color"] = _pick(rng, [c for c in spec.colors if c != attrs[0]["color"]])
    background = _pick(rng, spec.backgrounds)
    pan = _pick(rng, DIRECTIONS) if rng.random() < spec.pan_probability else None
    return _place(rng, spec, attrs, background, pan)


def _place(rng, spec: WorldSpec, attrs: list[dict], background: str, pan: str | None) -> Scene:
    objects = []
    for a in attrs:
        radius = SIZES[a["size"]] * min(spec.height, spec.width)
        proto = ObjectSpec(**a)
        start = _start_position(rng, spec, radius, proto.velocity(spec.unit_speed))
        objects.append(replace(proto, start=start))
    phase = (int(rng.integers(0, 64)), int(rng.integers(0, 64)))
    return Scene(tuple(objects), background, _background_levels(rng), pan, "slowly", phase)


def scene_from_caption(caption: str, seed: int, spec: WorldSpec) -> Scene:
    """A scene that matches `caption`; positions and grey levels come from `seed`."""
    parsed = parse_caption(caption)
    rng = np.random.default_rng([int(seed), 0xCA9])
    return _place(rng, spec, parsed["objects"], parsed["background"], parsed["pan"])
