"""Motion jitter: camera shake, measured as the frame-to-frame change of the global motion.

Failure mode: camera shake (noisy motion patterns: the whole view jumps, turns or zooms from frame to
frame). Definition: per frame pair t, the global motion G_t is a similarity transform (shift, rotation,
zoom: u = p x - b y + tx, v = b x + p y + ty about the frame centre) fitted to the forward flow by
trimmed least squares (fitted on every pixel, then twice more on the half that fits best: moving
objects, a minority of pixels, drop out). Per clip: value = mean over t of the root-mean-square over the
frame of G_{t+1}(x) - G_t(x), in pixels at a 256 px short side (flow is scaled by 256 / min(H, W), as
VBench scales dynamic degree), lower is better; curve = those changes. A steady camera, still, panning,
turning or zooming at a constant rate, scores 0; random whole-frame shifts of amplitude a score about a
(for a pure shift the field difference is the shift difference, as in version 1, which fitted shifts
only and so missed a camera that shakes by turning: grid AUROC 0.50 on rotation shake). Clips with
fewer than 3 frames have no second difference: NaN with a note. Flow from "dis" (default) or "raft".
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest, input_fps, widen_half
from vdeval.metrics.base import ClipScore, Metric, NoParams

FIT_POINTS = 4096  # flow vectors sampled on a regular grid per pair: the fit is over-determined by far
TRIM_ROUNDS = 2


def _grid(h: int, w: int) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    step = max(1, int(np.sqrt(h * w / FIT_POINTS)))
    ys, xs = np.mgrid[0:h:step, 0:w:step].astype(np.float64)
    return slice(0, h, step), slice(0, w, step), xs - (w - 1) / 2, ys - (h - 1) / 2


def similarity_motion(flow_pair: np.ndarray) -> np.ndarray:
    """(p, b, tx, ty) of the similarity displacement u = p x - b y + tx, v = b x + p y + ty (x, y about
    the frame centre, pixels) fitted to one pair's flow (H, W, 2) by trimmed least squares."""
    h, w = flow_pair.shape[:2]
    rows, cols, x, y = _grid(h, w)
    uv = np.asarray(widen_half(flow_pair[rows, cols]), np.float64).reshape(-1, 2)
    x, y = x.ravel(), y.ravel()
    ok = np.isfinite(uv).all(axis=1)
    if ok.sum() < 2:
        return np.full(4, np.nan)
    one, zero = np.ones_like(x), np.zeros_like(x)
    a = np.stack([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)], 1)  # (N, 2, 4)
    keep = ok
    for _ in range(TRIM_ROUNDS + 1):
        theta = np.linalg.lstsq(a[keep].reshape(-1, 4), uv[keep].reshape(-1), rcond=None)[0]
        resid = np.linalg.norm(a @ theta - uv, axis=1)
        keep = ok & (resid <= np.nanmedian(np.where(ok, resid, np.nan)))
    return theta


def global_motion(flow: np.ndarray) -> np.ndarray:
    """(T-1, 4) per-pair similarity motion (p, b, tx, ty) of forward flow (T-1, H, W, 2)."""
    n = flow.shape[0]
    if n == 0 or flow[0].size == 0:
        return np.zeros((n, 4))
    # a pair at a time: a long clip's flow (float16 from DIS) is never copied whole to float64
    return np.stack([similarity_motion(flow[t]) for t in range(n)])


def jitter_curve(flow: np.ndarray) -> np.ndarray:
    """(T-2,) root-mean-square over the frame of G_{t+1}(x) - G_t(x), in pixels of the clip. With x, y
    centred the cross terms vanish: RMS^2 = |d(tx, ty)|^2 + (dp^2 + db^2) mean(x^2 + y^2)."""
    g = global_motion(flow)
    if len(g) < 2:
        return np.zeros((0,))
    h, w = flow.shape[1:3]
    r2 = ((w * w - 1) + (h * h - 1)) / 12.0  # mean of x^2 + y^2 over the pixel centres
    d = np.diff(g, axis=0)
    return np.sqrt(d[:, 2] ** 2 + d[:, 3] ** 2 + (d[:, 0] ** 2 + d[:, 1] ** 2) * r2)


class MotionJitter(Metric[NoParams]):
    name = "motion_jitter"
    version = "2"  # 2: similarity motion (shift, turn, zoom), was the median shift
    higher_is_better = False
    level = "clip"
    min_frames = 3
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "camera shake"

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("flow", self.backbone, directions=("forward",))]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        arrays = clip.get("flow", self.backbone)
        flow = arrays["forward"]
        scale = 256.0 / min(flow.shape[1], flow.shape[2])
        curve = jitter_curve(flow) * scale
        value = float(np.nanmean(curve)) if np.isfinite(curve).any() else float("nan")
        return ClipScore(value, curve=curve.tolist(), extras=input_fps(arrays))  # per pair at this frame rate
