"""Corruptions of world clips, each imitating one failure mode of video generation.

Every corruption is `fn(clip: WorldClip, severity: float, seed: int) -> Video`, deterministic in
(clip, severity, seed), the identity at severity 0, and changing only what its name says:
  flicker         per-frame brightness/colour gain and independent per-frame noise
  freeze          the clip stops moving: frames from a point on repeat that frame
  identity_swap   the object's colour (and, from severity 0.5, shape) switches mid-clip
  identity_morph  the object's colour drifts gradually towards another colour
  shuffle         a fraction of frames change places (temporal order broken)
  scene_cut       from mid-clip, frames are blended into (at 1: replaced by) an unrelated clip
  camera_shake    per-frame random whole-frame jitter
  blur            Gaussian blur of every frame (spatial quality)
  noise           Gaussian pixel noise, independent per frame (spatial quality)
  texture_swim    the background texture slides against the camera while objects move as before
  motion_blur     each frame integrates the scene over an open shutter: moving things smear along
                  their motion, still things stay sharp
  stutter         some frames are held (replaced by the frame before): dropped frames, jerky motion
  teleport        the top object jumps mid-clip to where it stays clear of borders and others
  vanish          the top object disappears for some frames mid-clip and reappears where it would be
  reverse         the top object turns back mid-clip without cause (a still one starts moving first)
  resize          the top object grows suddenly mid-clip
  geometry_collapse  the top object's silhouette melts: a deformation growing over the clip
  color_wash      colours and contrast fade towards each frame's mean grey (washed-out frames)
  compression     every frame JPEG-compressed at a quality falling with severity (blocking, ringing)
  video_compression  the clip through H.264 (inter-frame prediction) at a CRF rising with severity
  camera_pan      from late in the clip the camera pans in a direction the caption does not say
The last five change only the top object (the last drawn, so the change is never hidden under
another object); the physical ones act from frame k = T // 2 on (vanish: from T // 4).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
from scipy.ndimage import gaussian_filter

from vdeval.errors import VdevalError, closest
from vdeval.video import Video
from vdeval.world.render import Pose, WorldClip, pan_velocity, render_scene
from vdeval.world.scene import COLORS, DIRECTIONS, SHAPES, sample_scene


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), sum(map(ord, name)), 0xC0])


def _check(severity: float) -> float:
    s = float(severity)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"severity must be in [0, 1], got {severity}")
    return s


def _same(clip: WorldClip, frames: np.ndarray) -> Video:
    return Video(np.ascontiguousarray(np.clip(np.round(frames), 0, 255).astype(np.uint8)), clip.video.fps)


def flicker(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "flicker")
    f = clip.video.frames.astype(np.float64)
    T = f.shape[0]
    gain = 1.0 + rng.normal(0.0, 0.25 * s, size=(T, 1, 1, 1))
    tint = rng.normal(0.0, 0.08 * s, size=(T, 1, 1, 3))
    noise = rng.normal(0.0, 12.0 * s, size=f.shape)
    return _same(clip, f * (gain + tint) + noise)


def freeze(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From frame k = round((1 - severity) * (T - 1)) on, every frame equals frame k."""
    s = _check(severity)
    f = clip.video.frames.copy()
    k = int(round((1.0 - s) * (f.shape[0] - 1)))
    f[k:] = f[k]
    return Video(f, clip.video.fps)


def _other(rng, options, current):
    choices = [o for o in options if o != current]
    return choices[int(rng.integers(len(choices)))]


def _colour_change(clip: WorldClip, rng) -> tuple[np.ndarray, np.ndarray]:
    """(object 0's colour, a different colour drawn from rng), as float RGB."""
    obj = clip.scene.objects[0]
    return np.asarray(COLORS[obj.color], np.float64), np.asarray(COLORS[_other(rng, COLORS, obj.color)], np.float64)


def identity_swap(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From mid-clip, object 0 takes a colour `severity` of the way to another colour; from
    severity 0.5 its shape changes too. Background, motion and other objects are untouched."""
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "identity_swap")
    old_color, new_color = _colour_change(clip, rng)
    new_shape = _other(rng, SHAPES, clip.scene.objects[0].shape)
    cut = clip.spec.frames // 2

    def color_at(t, i):
        c = COLORS[clip.scene.objects[i].color]
        return tuple(old_color + s * (new_color - old_color)) if (i == 0 and t >= cut) else c

    def shape_at(t, i):
        return new_shape if (i == 0 and t >= cut and s >= 0.5) else clip.scene.objects[i].shape

    return render_scene(clip.scene, clip.spec, color_at=color_at, shape_at=shape_at).video


def identity_morph(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Object 0's colour moves linearly over the clip to `severity` of the way to another colour."""
    s = _check(severity)
    if s == 0:
        return clip.video
    old_color, new_color = _colour_change(clip, _rng(seed, "identity_morph"))
    T = clip.spec.frames

    def color_at(t, i):
        if i != 0:
            return COLORS[clip.scene.objects[i].color]
        return tuple(old_color + s * (t / max(T - 1, 1)) * (new_color - old_color))

    return render_scene(clip.scene, clip.spec, color_at=color_at).video


def shuffle(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """round(severity * T) frames (at least 2 when severity > 0) change places, none staying put."""
    s = _check(severity)
    f = clip.video.frames
    T = f.shape[0]
    k = min(T, max(2, int(round(s * T)))) if s > 0 and T >= 2 else 0
    if k == 0:
        return clip.video
    rng = _rng(seed, "shuffle")
    chosen = np.sort(rng.choice(T, size=k, replace=False))
    # a random derangement of the chosen frames: every one moves, and more frames mean more
    # temporal jumps (a single cycle would make severity 1 a mere roll by one frame)
    perm = np.roll(np.arange(k), 1)
    for _ in range(100):
        candidate = rng.permutation(k)
        if not np.any(candidate == np.arange(k)):
            perm = candidate
            break
    order = np.arange(T)
    order[chosen] = chosen[perm]
    return Video(np.ascontiguousarray(f[order]), clip.video.fps)


def scene_cut(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Frames from mid-clip are blended (weight `severity`) with an unrelated clip of the same spec."""
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "scene_cut")
    other_seed = int(rng.integers(1 << 30))
    other_scene = sample_scene(other_seed, clip.spec)
    other = render_scene(other_scene, clip.spec).video.frames.astype(np.float64)
    f = clip.video.frames.astype(np.float64)
    cut = clip.spec.frames // 2
    f[cut:] = (1 - s) * f[cut:] + s * other[cut:]
    return _same(clip, f)


def camera_shake(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Each frame shifted by a random whole-pixel offset up to severity * 10% of the frame size."""
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "camera_shake")
    f = clip.video.frames
    T, H, W, _ = f.shape
    amp = max(1, int(round(s * 0.1 * min(H, W))))
    out = np.empty_like(f)
    for t in range(T):
        dy, dx = rng.integers(-amp, amp + 1, size=2)
        padded = np.pad(f[t], ((amp, amp), (amp, amp), (0, 0)), mode="edge")
        out[t] = padded[amp + dy: amp + dy + H, amp + dx: amp + dx + W]
    return Video(out, clip.video.fps)


def blur(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    s = _check(severity)
    if s == 0:
        return clip.video
    sigma = 2.0 * s * min(clip.spec.height, clip.spec.width) / 32
    f = clip.video.frames.astype(np.float64)
    return _same(clip, gaussian_filter(f, sigma=(0, sigma, sigma, 0)))


def noise(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "noise")
    f = clip.video.frames.astype(np.float64)
    return _same(clip, f + rng.normal(0.0, 40.0 * s, size=f.shape))


def texture_swim(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """The background texture drifts by up to 2 px/frame (at 32 px, scaled) in a random axis direction,
    relative to the camera; objects are redrawn exactly where they were."""
    s = _check(severity)
    if s == 0:
        return clip.video
    rng = _rng(seed, "texture_swim")
    # axis-aligned only: a diagonal drift along diagonal stripes would leave them unchanged
    dx, dy = DIRECTIONS[("left", "right", "up", "down")[int(rng.integers(4))]]
    speed = 2.0 * s * clip.spec.unit_speed

    def shift_at(t):
        return (int(round(dx * speed * t)), int(round(dy * speed * t)))

    return render_scene(clip.scene, clip.spec, texture_shift_at=shift_at).video


def camera_pan(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From frame k = round((1 - severity) * (T - 1)) the camera pans 1 px/frame (at 32 px, scaled) in
    an axis direction other than the clip's own pan (which it replaces from k on); background and
    objects move together by the camera's displacement, objects keep their own motion. The caption
    is unchanged, so it no longer says what the camera does."""
    s = _check(severity)
    T = clip.spec.frames
    if s == 0 or T < 2:
        return clip.video
    k = int(round((1.0 - s) * (T - 1)))
    own = pan_velocity(clip.scene, clip.spec)
    axes = [d for d in ("left", "right", "up", "down") if d != clip.scene.pan]
    dx, dy = DIRECTIONS[axes[int(_rng(seed, "camera_pan").integers(len(axes)))]]
    u = clip.spec.unit_speed

    def cam(t: int) -> tuple[int, int]:
        a, b = min(t, k), max(0, t - k)
        return (own[0] * a + dx * u * b, own[1] * a + dy * u * b)

    still = replace(clip.scene, pan=None)  # the camera's path is drawn through the shift and poses below
    return render_scene(still, clip.spec, texture_shift_at=cam,
                        pose_at=lambda t, i: Pose(offset=(-cam(t)[0], -cam(t)[1]))).video


def stutter(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """k = max(1, round(severity * (T - 1) / 2)) random frames among 1 .. T-1 repeat the frame before
    them (in order, so neighbouring picks hold one frame longer): motion that stops and jumps."""
    s = _check(severity)
    f = clip.video.frames
    T = f.shape[0]
    if s == 0 or T < 2:
        return clip.video
    k = max(1, int(round(s * (T - 1) / 2)))
    held = np.sort(_rng(seed, "stutter").choice(np.arange(1, T), size=k, replace=False))
    out = f.copy()
    for t in held:
        out[t] = out[t - 1]
    return Video(out, clip.video.fps)


def _posed(clip: WorldClip, pose_top) -> Video:
    """Re-render the clip with the top object posed by pose_top(t) and every other object untouched."""
    top = len(clip.scene.objects) - 1
    return render_scene(clip.scene, clip.spec, pose_at=lambda t, i: pose_top(t) if i == top else Pose()).video


def teleport(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From frame k = T // 2, the top object is displaced by severity * 0.4 * min(H, W) pixels (rounded) in
    the one of 8 directions that keeps its remaining path farthest from the frame border and from
    the other objects (ties: the first of DIRECTIONS)."""
    s = _check(severity)
    if s == 0:
        return clip.video
    T, H, W = clip.spec.frames, clip.spec.height, clip.spec.width
    k = T // 2
    dist = s * 0.4 * min(H, W)
    path = clip.positions[k:, -1]
    others = clip.positions[k:, :-1]

    def clearance(jump):
        p = path + jump
        edge = np.minimum.reduce([p[:, 0], W - 1 - p[:, 0], p[:, 1], H - 1 - p[:, 1]]).min()
        gap = np.linalg.norm(others - p[:, None], axis=-1).min() if others.size else np.inf
        return min(edge, gap / 2)

    units = [np.asarray(d, np.float64) / np.hypot(*d) for d in DIRECTIONS.values()]
    jump = max((np.round(u * dist) for u in units), key=clearance)
    return _posed(clip, lambda t: Pose(offset=tuple(jump) if t >= k else (0.0, 0.0)))


def vanish(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """The top object is not drawn in frames k .. k + n - 1, k = T // 4, n = max(1, round(severity * (T - 2 - k)));
    it reappears where its motion would have taken it."""
    s = _check(severity)
    T = clip.spec.frames
    if s == 0 or T < 3:
        return clip.video
    k = T // 4
    n = max(1, int(round(s * (T - 2 - k))))
    return _posed(clip, lambda t: Pose(visible=not (k <= t < k + n)))


def reverse(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From frame k = T // 2, the top object moves back with m = max(1, round(2 * severity)) times its speed.
    A still object first moves (one unit per frame, a random direction) and then turns back."""
    s = _check(severity)
    if s == 0:
        return clip.video
    T, unit = clip.spec.frames, clip.spec.unit_speed
    k = T // 2
    m = max(1, int(round(2 * s)))
    obj = clip.scene.objects[-1]
    v = np.asarray(obj.velocity(unit), np.float64)
    extra0 = np.zeros(2)
    if not v.any():  # give the still object a motion to reverse
        extra0 = np.asarray(DIRECTIONS[_other(_rng(seed, "reverse"), DIRECTIONS, None)], np.float64) * unit
        v = extra0

    def pose(t):
        # actual path: v * t for t <= k, then v * k - m * v * (t - k); the renderer adds obj velocity itself
        path = v * t if t <= k else v * k - m * v * (t - k)
        base = np.asarray(obj.velocity(unit), np.float64) * t
        return Pose(offset=tuple(path - base))

    return _posed(clip, pose)


def resize(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """From frame k = T // 2, the top object's radius is (1 + 0.5 * severity) times its own."""
    s = _check(severity)
    if s == 0:
        return clip.video
    k = clip.spec.frames // 2
    return _posed(clip, lambda t: Pose(scale=1.0 + 0.5 * s if t >= k else 1.0))


def geometry_collapse(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """The top object's silhouette melts: its coordinates are displaced by a wave whose amplitude grows
    linearly from 0 at the first frame to severity * 0.6 * radius at the last, and the shape sags
    (is stretched down and squeezed sideways) by up to severity * 40%. Position and colour unchanged."""
    s = _check(severity)
    if s == 0:
        return clip.video
    from vdeval.world.scene import SIZES

    T = clip.spec.frames
    radius = SIZES[clip.scene.objects[-1].size] * min(clip.spec.height, clip.spec.width)
    phase = float(_rng(seed, "geometry_collapse").uniform(0, 2 * np.pi))
    wavelength = radius * 1.3

    def pose(t):
        a = s * t / max(T - 1, 1)

        def deform(dx, dy):
            wobble = a * 0.6 * radius
            ddx = dx * (1 + 0.4 * a) + wobble * np.sin(2 * np.pi * dy / wavelength + phase)
            ddy = dy / (1 + 0.4 * a) - 0.4 * a * radius + wobble * np.sin(2 * np.pi * dx / wavelength + phase)
            return ddx, ddy

        return Pose(deform=deform)

    return _posed(clip, pose)


MOTION_BLUR_EXPOSURE = 3.0  # frame intervals the shutter stays open at severity 1 (1/3: a 360-degree shutter)
MOTION_BLUR_SAMPLES = 9  # sub-frame renders averaged per frame


def _constant_shift(d: tuple[float, float]) -> Callable[[int], tuple[float, float]]:
    return lambda t: d


def motion_blur(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Each frame is the mean of MOTION_BLUR_SAMPLES renders of the scene at times t + tau, tau evenly
    spaced over an exposure of MOTION_BLUR_EXPOSURE * severity frame intervals centred on t: an
    object (or a panning background) moving v px/frame smears over exposure * |v| px along its
    motion; still content is untouched, so a still clip is unchanged. Deterministic; seed unused."""
    from dataclasses import replace

    s = _check(severity)
    if s == 0:
        return clip.video
    scene, spec = clip.scene, clip.spec
    pan = pan_velocity(scene, spec)
    exposure = MOTION_BLUR_EXPOSURE * s
    acc = np.zeros(clip.video.frames.shape, np.float64)
    for tau in np.linspace(-exposure / 2, exposure / 2, MOTION_BLUR_SAMPLES):
        # the scene at t + tau: objects advance by (v - pan) tau on screen, the background by pan tau
        objs = []
        for o in scene.objects:
            v = o.velocity(spec.unit_speed)
            objs.append(replace(o, start=(o.start[0] + (v[0] - pan[0]) * tau, o.start[1] + (v[1] - pan[1]) * tau)))
        shifted = replace(scene, objects=tuple(objs))
        acc += render_scene(shifted, spec, texture_shift_at=_constant_shift((pan[0] * tau, pan[1] * tau))).video.frames
    return _same(clip, acc / MOTION_BLUR_SAMPLES)


def color_wash(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Each frame is blended with weight `severity` into a flat grey at its own mean luma (BT.601):
    saturation and contrast shrink by (1 - severity), mean brightness is kept (so it is not a
    brightness change); severity 1 leaves a uniform grey frame. Deterministic; seed unused."""
    s = _check(severity)
    if s == 0:
        return clip.video
    f = clip.video.frames.astype(np.float64)
    grey = (f @ np.array([0.299, 0.587, 0.114])).mean(axis=(1, 2))[:, None, None, None]
    return _same(clip, (1.0 - s) * f + s * grey)


def jpeg_quality(severity: float) -> int:
    """The JPEG quality `compression` uses: 100 - 95 * severity, rounded (76 at 0.25, 52 at 0.5, 5 at 1)."""
    return int(round(100 - 95 * _check(severity)))


def compression(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """Every frame through baseline JPEG (OpenCV's libjpeg, 4:2:0 chroma, 8x8 DCT blocks) at quality
    jpeg_quality(severity): intra-frame compression as in MJPEG or an I-frame, with its blocking,
    ringing and loss of fine texture. Each frame is coded alone, so static content codes alike in
    every frame and moving content's artefacts change from frame to frame. Deterministic; seed unused."""
    import cv2

    s = _check(severity)
    if s == 0:
        return clip.video
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality(s)]
    out = np.empty_like(clip.video.frames)
    for t, frame in enumerate(clip.video.frames):
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), params)
        if not ok:  # cannot happen for uint8 RGB frames; kept so a failure is not silent
            raise RuntimeError("JPEG encoding failed")
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        if decoded is None:  # as above
            raise RuntimeError("JPEG decoding failed")
        out[t] = decoded[..., ::-1]
    return Video(out, clip.video.fps)


def h264_crf(severity: float) -> int:
    """The x264 CRF `video_compression` uses: 23 + 28 * severity, rounded (30 at 0.25, 37 at 0.5, 51 at 1)."""
    return int(round(23 + 28 * _check(severity)))


def video_compression(clip: WorldClip, severity: float, seed: int = 0) -> Video:
    """The clip encoded in memory with libx264 (PyAV; yuv420p, preset medium, one thread, default GOP: an
    I-frame then predicted frames) at CRF h264_crf(severity), and decoded back: the codec of real
    footage, whose inter-frame prediction and deblocking smooth detail consistently over time (unlike
    `compression`, which codes each frame alone). 4:2:0 chroma alone changes hard colour edges even at
    CRF 0. Deterministic for a given x264 build; seed unused."""
    import io

    import av

    s = _check(severity)
    if s == 0:
        return clip.video
    frames = clip.video.frames
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=max(1, int(round(clip.video.fps))))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(h264_crf(s)), "preset": "medium", "threads": "1"}
        # one encoder thread, set on the context too: PyAV 18 sizes the thread pool itself and
        # ignores the option, and x264's threaded lookahead makes the output vary run to run
        stream.codec_context.thread_count = 1
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, mode="r") as inp:
        decoded = np.stack([fr.to_ndarray(format="rgb24") for fr in inp.decode(video=0)])
    if decoded.shape != frames.shape:  # x264 needs even sizes; the world's are, other sizes say so
        raise ValueError(f"H.264 round trip gave {decoded.shape}, not {frames.shape}")
    return Video(decoded, clip.video.fps)


CORRUPTIONS: dict[str, Callable[[WorldClip, float, int], Video]] = {
    "flicker": flicker,
    "freeze": freeze,
    "identity_swap": identity_swap,
    "identity_morph": identity_morph,
    "shuffle": shuffle,
    "scene_cut": scene_cut,
    "camera_shake": camera_shake,
    "blur": blur,
    "noise": noise,
    "texture_swim": texture_swim,
    "motion_blur": motion_blur,
    "stutter": stutter,
    "teleport": teleport,
    "vanish": vanish,
    "reverse": reverse,
    "resize": resize,
    "geometry_collapse": geometry_collapse,
    "color_wash": color_wash,
    "compression": compression,
    "video_compression": video_compression,
    "camera_pan": camera_pan,
}


def corrupt(clip: WorldClip, name: str, severity: float, seed: int = 0) -> Video:
    if name not in CORRUPTIONS:
        guess = closest(name, CORRUPTIONS)
        raise VdevalError(f"unknown corruption {name!r}", f"did you mean {guess!r}?" if guess else f"one of {sorted(CORRUPTIONS)}")
    return CORRUPTIONS[name](clip, severity, seed)
