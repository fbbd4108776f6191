"""Failure forms for the generalization audit (`vdeval audit --grid`), written apart from the
world's corruptions (vdeval/world/corruptions.py) and on plain uint8 frames, so they apply to
natural footage as well as to world clips. Each family has at least two forms that make the
failure differently; a metric that holds on one form and not on the other has learnt the form.

Every form is f(frames, severity, rng) -> frames with frames uint8 (T, H, W, 3) and severity in
(0, 1]; forms that take frames away (skip-ahead) get T + SKIP_SPARE source frames and return T.

  motion_blur   smear   each frame convolved with a line kernel (length 3 + severity x 12% of the
                        short side) along the direction the frame content moves (mean Farneback flow
                        of the fastest 10% of pixels to the next frame; horizontal where none moves)
                blend   frame blending (ghosting): f_t' = (1 - a) f_t + a (f_{t-1} + f_{t+1}) / 2,
                        a = 0.3 + 0.6 x severity, ends replicated
  compression   jpeg    each frame through JPEG (OpenCV), quality 55 - 50 x severity
                h264    the clip through H.264 (libx264, yuv420p, one thread), crf 30 + 21 x severity
  stutter       hold    k = max(1, round(severity x (T - 1) / 2)) frames (drawn among 1 .. T-1)
                        replaced by the frame before them (exact repeats)
                near_dup the same frames replaced by the frame before plus Gaussian noise (sigma 3)
  skip          skip    k = 1 + round(3 x severity) frames dropped after mid-clip (the clip jumps
                        ahead; length kept from the spare source frames); the grid's world
                        conditions move slow or fast objects, so one form meets both speeds
                skip_hold the same jump, preceded by k held frames (a stall, then a jump)
  freeze        tail    the last 25% + 50% x severity of the clip holds one frame
                middle  a span of the same length, centred, holds one frame
  flicker       gain    each frame's brightness scaled by its own gain 1 + N(0, 0.04 + 0.16 x severity)
                        (no tint, no noise: the world's flicker adds both)
                local   a soft region (Gaussian, sigma 1/6 of the short side, at a random place) whose
                        colour moves each frame by N(0, 8 + 32 x severity) levels per channel
  shake         translate each frame moved by a sub-pixel offset drawn uniformly within
                        (1% + 5% x severity) of the short side, mirrored at the borders (the world's
                        shake is whole-pixel, edge-padded)
                rotate  each frame turned about its centre by N(0, 0.5 + 2.5 x severity) degrees
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

SKIP_SPARE = 4  # source frames beyond T that the skip forms may jump over

Form = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


def _motion_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Direction (radians) in which the content of frame a moves to frame b: the mean Farneback
    flow of the 10% fastest pixels; horizontal where nothing moves."""
    import cv2

    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
    flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 9, 3, 5, 1.1, 0).reshape(-1, 2)
    mag = np.hypot(flow[:, 0], flow[:, 1])
    top = mag >= np.quantile(mag, 0.9)
    dx, dy = flow[top].mean(0)
    return float(np.arctan2(dy, dx)) if np.hypot(dx, dy) > 0.25 else 0.0


def line_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised line of `length` pixels through the centre at `angle` (anti-aliased by supersampling)."""
    size = length if length % 2 else length + 1
    k = np.zeros((size, size), np.float32)
    c = (size - 1) / 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        x, y = c + t * np.cos(angle), c + t * np.sin(angle)
        k[int(round(y)), int(round(x))] += 1
    return k / k.sum()


def smear(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    t, h, w = frames.shape[:3]
    length = 3 + int(round(severity * 0.12 * min(h, w)))
    out = np.empty_like(frames)
    for i in range(t):
        j = i + 1 if i + 1 < t else i - 1
        angle = _motion_angle(frames[i], frames[j]) if j >= 0 and t > 1 else 0.0
        if j < i:
            angle += np.pi
        blurred = cv2.filter2D(frames[i].astype(np.float32), -1, line_kernel(length, angle), borderType=cv2.BORDER_REFLECT)
        out[i] = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
    return out


def blend(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    f = frames.astype(np.float32)
    prev = np.concatenate([f[:1], f[:-1]])
    nxt = np.concatenate([f[1:], f[-1:]])
    a = 0.3 + 0.6 * severity
    return np.clip(np.rint((1 - a) * f + a * (prev + nxt) / 2), 0, 255).astype(np.uint8)


def jpeg(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    q = int(round(55 - 50 * severity))
    out = np.empty_like(frames)
    for i, fr in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(fr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise ValueError(f"JPEG round trip failed at quality {q}")
        out[i] = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    return out


def h264(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    import io

    import av

    t, h, w = frames.shape[:3]
    he, we = h + h % 2, w + w % 2  # yuv420p needs even sides: replicate one row / column
    padded = np.pad(frames, ((0, 0), (0, he - h), (0, we - w), (0, 0)), mode="edge")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = we, he, "yuv420p"
        stream.options = {"crf": str(int(round(30 + 21 * severity))), "preset": "medium", "threads": "1"}
        stream.codec_context.thread_count = 1  # deterministic output (PyAV 18 ignores the option)
        for fr in padded:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, "r") as inp:
        got = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
    return np.stack(got)[:t, :h, :w]


def _held_positions(t: int, severity: float, rng: np.random.Generator) -> np.ndarray:
    k = max(1, int(round(severity * (t - 1) / 2)))
    return np.sort(rng.choice(np.arange(1, t), size=min(k, t - 1), replace=False))


def hold(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    out = frames.copy()
    for i in _held_positions(len(frames), severity, rng):
        out[i] = out[i - 1]
    return out


def near_dup(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    out = frames.copy()
    for i in _held_positions(len(frames), severity, rng):
        noisy = out[i - 1].astype(np.float32) + rng.normal(0, 3.0, out[i - 1].shape)
        out[i] = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    return out


def _skip_len(severity: float) -> int:
    return 1 + int(round(3 * severity))


def skip(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """frames: T + SKIP_SPARE source frames; returns T with a jump of k frames after mid-clip."""
    t = len(frames) - SKIP_SPARE
    k, m = _skip_len(severity), t // 2
    return np.concatenate([frames[:m], frames[m + k:t + k]])


def skip_hold(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    t = len(frames) - SKIP_SPARE
    k, m = _skip_len(severity), t // 2
    stall = np.repeat(frames[m - 1:m], k, axis=0)
    return np.concatenate([frames[:m], stall, frames[m + k:t]])[:t]


def _freeze_span(t: int, severity: float) -> int:
    return max(1, int(round((0.25 + 0.5 * severity) * t)))


def freeze_tail(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    t = len(frames)
    start = t - _freeze_span(t, severity)
    out = frames.copy()
    out[start:] = frames[max(start - 1, 0)]
    return out


def freeze_middle(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    t = len(frames)
    n = _freeze_span(t, severity)
    start = max(1, (t - n) // 2)
    out = frames.copy()
    out[start:start + n] = frames[start - 1]
    return out


def gain_flicker(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    gain = 1.0 + rng.normal(0.0, 0.04 + 0.16 * severity, size=(len(frames), 1, 1, 1))
    return np.clip(np.rint(frames.astype(np.float32) * gain), 0, 255).astype(np.uint8)


def local_flicker(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    t, h, w = frames.shape[:3]
    sigma = min(h, w) / 6
    cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)).astype(np.float32)[..., None]
    shift = rng.normal(0.0, 8 + 32 * severity, size=(t, 1, 1, 3)).astype(np.float32)
    return np.clip(np.rint(frames.astype(np.float32) + blob[None] * shift), 0, 255).astype(np.uint8)


def _warp_each(frames: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    return np.stack([cv2.warpAffine(f, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
                     for f, m in zip(frames, matrices)])


def translate_shake(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    amp = (0.01 + 0.05 * severity) * min(frames.shape[1:3])
    offsets = rng.uniform(-amp, amp, size=(len(frames), 2))
    return _warp_each(frames, [np.array([[1, 0, dx], [0, 1, dy]], np.float32) for dx, dy in offsets])


def rotate_shake(frames: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = frames.shape[1:3]
    angles = rng.normal(0.0, 0.5 + 2.5 * severity, size=len(frames))
    return _warp_each(frames, [cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), float(a), 1.0) for a in angles])


# family -> {form: function}
FAMILIES: dict[str, dict[str, Form]] = {
    "motion_blur": {"smear": smear, "blend": blend},
    "compression": {"jpeg": jpeg, "h264": h264},
    "stutter": {"hold": hold, "near_dup": near_dup},
    "skip": {"skip": skip, "skip_hold": skip_hold},
    "freeze": {"tail": freeze_tail, "middle": freeze_middle},
    "flicker": {"gain": gain_flicker, "local": local_flicker},
    "shake": {"translate": translate_shake, "rotate": rotate_shake},
}
NEEDS_SPARE = {"skip", "skip_hold"}


def apply(family: str, form: str, source: np.ndarray, frames: int, severity: float, seed: int) -> np.ndarray:
    """The form applied to a clip: `source` holds frames + SKIP_SPARE frames; the clean clip is
    source[:frames]."""
    rng = np.random.default_rng([int(seed), sum(map(ord, family + form)), 0x6A1D])
    fn = FAMILIES[family][form]
    out = fn(source if form in NEEDS_SPARE else source[:frames], float(severity), rng)
    if out.shape != source[:frames].shape:
        raise ValueError(f"form {family}.{form} gave {out.shape}, not {source[:frames].shape}")
    return out
