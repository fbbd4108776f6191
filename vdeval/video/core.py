"""The canonical in-memory video."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from vdeval.errors import VideoReadError


@dataclass(frozen=True)
class Video:
    """frames: uint8 array (T, H, W, 3); fps: frames per second."""

    frames: np.ndarray
    fps: float = 8.0

    def __post_init__(self):
        f = self.frames
        if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim != 4 or f.shape[-1] != 3:
            shape = getattr(f, "shape", None)
            dtype = getattr(f, "dtype", type(f).__name__)
            raise ValueError(f"Video frames must be uint8 (T, H, W, 3); got {dtype} {shape}")
        if f.shape[0] == 0:
            raise ValueError("Video has zero frames")
        if not (self.fps > 0):
            raise ValueError(f"Video fps must be positive, got {self.fps}")

    @property
    def num_frames(self) -> int:
        return self.frames.shape[0]

    @property
    def height(self) -> int:
        return self.frames.shape[1]

    @property
    def width(self) -> int:
        return self.frames.shape[2]

    def content_hash(self) -> str:
        """sha256 of shape, fps and pixels: the identity of a clip in caches and results."""
        h = hashlib.sha256()
        h.update(repr((self.frames.shape, float(self.fps))).encode())
        h.update(np.ascontiguousarray(self.frames).tobytes())
        return h.hexdigest()

    def as_float(self) -> np.ndarray:
        """Frames as float32 in [0, 1], (T, H, W, 3)."""
        return self.frames.astype(np.float32) / 255.0


def as_video(array, fps: float = 8.0, source: str = "array") -> Video:
    """Convert an array-like in a common layout into a Video.

    Accepts (T, H, W), (T, H, W, C) or (T, C, H, W) with C in {1, 3, 4}; uint8, or floats in
    [0, 1] (or [-1, 1] when negative values are present). Grayscale is repeated to RGB, alpha
    is composited on black. Anything else raises VideoReadError naming `source`.
    """
    try:
        import torch

        if isinstance(array, torch.Tensor):
            array = array.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    a = np.asarray(array)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4:
        raise VideoReadError(f"{source}: expected a video array of 3 or 4 dimensions, got shape {a.shape}")
    if a.shape[-1] not in (1, 3, 4) and a.shape[1] in (1, 3, 4):
        a = np.moveaxis(a, 1, -1)
    if a.shape[-1] not in (1, 3, 4):
        raise VideoReadError(f"{source}: cannot find a channel axis of size 1, 3 or 4 in shape {a.shape}")
    if a.shape[0] == 0:
        raise VideoReadError(f"{source}: the video has zero frames")
    if a.dtype != np.uint8:
        if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
            raise VideoReadError(f"{source}: unsupported dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise VideoReadError(f"{source}: the video contains NaN or infinite values")
        if np.issubdtype(np.asarray(array).dtype, np.integer):
            a = np.clip(a, 0, 255)
        else:
            if a.min() < 0:
                a = (a + 1.0) / 2.0
            a = np.clip(a, 0.0, 1.0) * 255.0
        a = np.round(a).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = np.round(a[..., :3].astype(np.float32) * alpha).astype(np.uint8)
    return Video(np.ascontiguousarray(a), float(fps))
