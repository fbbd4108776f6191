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
        if f.shape[1] == 0 or f.shape[2] == 0:
            raise ValueError(f"Video frames have no pixels: {f.shape[1]} x {f.shape[2]}")
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


# how far outside its declared range a float video may stray (rounding in a decoder's last
# step) before it is refused rather than clipped: a fraction of the range's span
_RANGE_TOLERANCE = 2 / 255

LAYOUTS = ("THWC", "TCHW")


def _to_numpy(array):
    try:
        import torch

        if isinstance(array, torch.Tensor):
            t = array.detach().cpu()
            if t.dtype in (torch.bfloat16, torch.float16):  # numpy has no bfloat16
                t = t.float()
            return t.numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    return np.asarray(array)


def _channels_last(a: np.ndarray, layout: str | None, source: str) -> np.ndarray:
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS} or None, got {layout!r}")
        a = np.moveaxis(a, 1, -1) if layout == "TCHW" else a
        if a.shape[-1] not in (1, 3, 4):
            raise VideoReadError(f"{source}: declared layout {layout} but the channel axis has size "
                                 f"{a.shape[-1]} (shape {a.shape}); expected 1, 3 or 4 channels")
        return a
    first, last = a.shape[1] in (1, 3, 4), a.shape[-1] in (1, 3, 4)
    if first and last and (a.shape[1] == 3) != (a.shape[-1] == 3):  # RGB wins over gray / RGBA
        first, last = a.shape[1] == 3, a.shape[-1] == 3
    if first and last:
        raise VideoReadError(f"{source}: shape {a.shape} is ambiguous: axis 1 and the last axis could both "
                             "be channels", "declare the layout (layout='THWC' or 'TCHW')")
    if first:
        return np.moveaxis(a, 1, -1)
    if not last:
        raise VideoReadError(f"{source}: cannot find a channel axis of size 1, 3 or 4 in shape {a.shape}")
    return a


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _range_hint(lo: float, hi: float) -> str:
    if lo >= -1 - _RANGE_TOLERANCE * 2 and lo < 0 and hi <= 1 + _RANGE_TOLERANCE * 2:
        return "if it is in [-1, 1], declare value_range=(-1, 1)"
    if lo >= 0 and 1 < hi <= 255:
        return "if it holds 0-255 pixel values, declare value_range=(0, 255) or store it as uint8"
    return "declare its value_range, or store it as uint8 (T, H, W, 3) or floats in [0, 1]"


def _to_uint8(a: np.ndarray, value_range, integer: bool, source: str) -> np.ndarray:
    """Map values from their declared range onto 0..255; values outside it are refused, never
    clipped into a plausible picture (0-255 floats read as [0, 1] would turn all white)."""
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise VideoReadError(f"{source}: unsupported dtype {a.dtype}")
    if np.iscomplexobj(a):  # casting would drop the imaginary part without a word
        raise VideoReadError(f"{source}: complex values ({a.dtype}); a video is real-valued")
    declared = value_range is not None
    lo, hi = (float(v) for v in (value_range if declared else ((0, 255) if integer else (0, 1))))
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        raise ValueError(f"value_range must be two finite numbers (low, high) with low < high, got {value_range!r}")
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise VideoReadError(f"{source}: the video contains NaN or infinite values")
    amin, amax = float(a.min()), float(a.max())
    slack = 0.0 if integer else _RANGE_TOLERANCE * (hi - lo)
    if amin < lo - slack or amax > hi + slack:
        what = "declared" if declared else ("default for integer arrays" if integer else "default for float arrays")
        hint = _range_hint(amin, amax)
        raise VideoReadError(f"{source}: values span [{_fmt(amin)}, {_fmt(amax)}], outside the {what} range "
                             f"[{_fmt(lo)}, {_fmt(hi)}]", hint)
    a = (np.clip(a, lo, hi) - lo) * (255.0 / (hi - lo))
    return np.round(a).astype(np.uint8)


def as_video(array, fps: float = 8.0, source: str = "array", value_range: tuple[float, float] | None = None,
             layout: str | None = None) -> Video:
    """Convert an array-like (numpy or torch) into a Video.

    Layout: (T, H, W), (T, H, W, C) or (T, C, H, W) with C in {1, 3, 4}; `layout` ("THWC" or
    "TCHW") declares it, otherwise it is read from the shape and a shape where both axis 1 and
    the last axis could be channels is refused. Grayscale is repeated to RGB, alpha is
    composited on black.

    Values: `value_range` is the source's convention, (low, high) mapped onto 0..255: (0, 1) for
    most decoders' float output, (-1, 1) for raw VAE output, (0, 255) for float pixels. It is
    never guessed from the data: undeclared, uint8 and other integers mean (0, 255) and floats
    mean (0, 1). Values beyond the range (by more than 2/255 of its span, for floats) are
    refused with a VideoReadError naming `source`, rather than clipped into a wrong picture.
    """
    a = _to_numpy(array)
    if a.ndim == 3 and layout is None:
        a = a[..., None]
    if a.ndim != 4:
        raise VideoReadError(f"{source}: expected a video array of 3 or 4 dimensions, got shape {a.shape}")
    a = _channels_last(a, layout, source)
    if a.shape[0] == 0:
        raise VideoReadError(f"{source}: the video has zero frames")
    if a.shape[1] == 0 or a.shape[2] == 0:
        raise VideoReadError(f"{source}: frames of {a.shape[1]} x {a.shape[2]} pixels (a side of zero)")
    if a.dtype != np.uint8 or value_range not in (None, (0, 255)):
        a = _to_uint8(a, value_range, bool(np.issubdtype(a.dtype, np.integer)), source)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = np.round(a[..., :3].astype(np.float32) * alpha).astype(np.uint8)
    return Video(np.ascontiguousarray(a), float(fps))
