"""Training data drawn on the fly from the shapes world, with a fixed set of held-out captions.

Every batch is a pure function of (seed, step), so a resumed run sees exactly the data the
uninterrupted run would have seen. Held-out captions never appear in training; evaluation
uses them to measure generalisation to unseen attribute combinations.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from vdeval.world import COLORS, DIRECTIONS, SHAPES, SIZES, SPEEDS, WorldSpec, sample_clip
from vdeval.world.render import pan_velocity
from vdeval.world.scene import ObjectSpec, Scene, caption_of

TASKS = ("t2v", "i2v", "continue")


def caption_space(spec: WorldSpec) -> list[str]:
    """Every one-object caption the world spec can produce, in a fixed order."""
    out = []
    for bg, color, shape, size in itertools.product(spec.backgrounds, spec.colors, spec.shapes, spec.sizes):
        for motion in spec.motions:
            for speed in (spec.speeds if motion != "still" else ("slowly",)):
                obj = ObjectSpec(shape, color, size, motion, speed)
                out.append(caption_of(Scene((obj,), bg)))
    return out


def heldout_captions(spec: WorldSpec, count: int = 64, seed: int = 1234, still_fraction: float = 0.25) -> list[str]:
    """`count` captions kept out of training; a quarter are still objects so flicker has enough clips."""
    space = caption_space(spec)
    still = [c for c in space if "staying still" in c]
    moving = [c for c in space if "staying still" not in c]
    rng = np.random.default_rng(seed)
    n_still = min(len(still), int(round(count * still_fraction)))
    pick = [still[i] for i in rng.choice(len(still), n_still, replace=False)]
    pick += [moving[i] for i in rng.choice(len(moving), count - n_still, replace=False)]
    return pick


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (..., T, H, W, 3) -> float (..., T, 3, H, W) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 127.5 - 1.0
    return x.movedim(-1, -3)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (..., T, 3, H, W) in [-1, 1] -> uint8 (..., T, H, W, 3)."""
    x = ((x.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


class WorldStream:
    """Batches of (clip, caption, known-frame mask, screen velocity) for training step `step`.

    The velocity is the first object's on-screen motion (its own minus the camera's) as a
    fraction of the frame's width and height per frame: what motion-aligned models condition on."""

    def __init__(self, spec: WorldSpec, seed: int, heldout: set[str], task_probs: dict[str, float],
                 caption_dropout: float):
        self.spec, self.seed, self.heldout = spec, seed, heldout
        self.task_probs = np.array([task_probs.get(t, 0.0) for t in TASKS], dtype=np.float64)
        self.task_probs /= self.task_probs.sum()
        self.caption_dropout = caption_dropout

    def batch(self, step: int, batch_size: int):
        rng = np.random.default_rng([self.seed, 0xDA7A, step])
        frames: list[np.ndarray] = []
        captions, masks, velocities = [], [], []
        T = self.spec.frames
        k = 0
        while len(frames) < batch_size:
            clip_seed = int(self.seed * 1_000_003 + step * 4 * batch_size + k)  # disjoint per step for k < 4B
            k += 1
            clip = sample_clip(clip_seed, self.spec)
            if clip.caption in self.heldout:
                continue
            frames.append(clip.video.frames)
            velocities.append(screen_velocity(clip.scene, self.spec))
            task = TASKS[int(rng.choice(len(TASKS), p=self.task_probs))]
            known = {"t2v": 0, "i2v": 1, "continue": int(rng.integers(2, max(3, T - 1)))}[task]
            m = np.zeros(T, np.float32)
            m[:known] = 1.0
            masks.append(m)
            captions.append(None if rng.random() < self.caption_dropout else clip.caption)
        return (to_tensor(np.stack(frames)), captions, torch.from_numpy(np.stack(masks)),
                torch.tensor(velocities, dtype=torch.float32))


def screen_velocity(scene: Scene, spec: WorldSpec) -> tuple[float, float]:
    """The first object's on-screen velocity (object minus camera pan) in frame widths/heights per frame."""
    (vx, vy), (px, py) = scene.objects[0].velocity(spec.unit_speed), pan_velocity(scene, spec)
    return ((vx - px) / spec.width, (vy - py) / spec.height)


__all__ = ["TASKS", "caption_space", "heldout_captions", "to_tensor", "to_uint8", "WorldStream",
           "screen_velocity", "COLORS", "DIRECTIONS", "SHAPES", "SIZES", "SPEEDS"]
