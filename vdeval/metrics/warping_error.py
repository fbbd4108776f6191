"""Warping error: flicker measured where motion is accounted for (Lai et al., ECCV 2018).

Failure mode: flicker (appearance changing frame to frame beyond what motion explains).
Definition, per consecutive pair (t, t+1), all in frame t's pixel grid:
  warped = frame t+1 sampled bilinearly at x + F(x), F the forward flow t -> t+1;
  B_w    = backward flow (t+1 -> t) sampled at x + F(x);
  occluded where |F + B_w|^2 > 0.01 (|F|^2 + |B_w|^2) + 0.5 (forward-backward inconsistency),
  or at a motion boundary |grad F_x|^2 + |grad F_y|^2 > 0.01 |F|^2 + 0.002 (forward differences),
  or where x + F(x) falls outside the frame;
  error  = mean over unoccluded pixels and the 3 channels of (warped - frame t)^2, RGB in [0, 1].
(Lai et al.'s released evaluate_WarpError.py also averages the channels: its non-occlusion mask is
read as a 3-channel image and the squared difference is divided by its sum, so our number is theirs.)
Per clip: value = mean of the pair errors (lower is better), curve = pair errors,
extras["occluded_fraction"] = mean fraction of pixels masked. Flow from "dis" (default) or "raft".
A pair with every pixel masked has no error (NaN) and is left out of the mean; NaN pixel values
propagate into their pair's error.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest, input_fps
from vdeval.metrics.base import ClipScore, Metric


def warp(image: np.ndarray, flow: np.ndarray, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Backward warp: out(x) = image(x + flow(x)), bilinear.

    image (..., H, W) or (..., H, W, C); flow (..., H, W, 2) as (dx, dy) pixels, with the same
    leading (batch) shape. Returns (warped, inside), inside a bool (..., H, W) that is False where
    the sample point leaves the frame or the flow is not finite. Sample points are computed in
    float64; the image, the interpolation weights and the result are in `dtype`."""
    flow = np.asarray(flow, np.float64)
    img = np.asarray(image, dtype)
    squeeze = img.ndim == flow.ndim - 1
    if squeeze:
        img = img[..., None]
    h, w = img.shape[-3], img.shape[-2]
    lead = flow.shape[:-3]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = xs + flow[..., 0]
    sy = ys + flow[..., 1]
    eps = 1e-6
    inside = (sx >= -eps) & (sx <= w - 1 + eps) & (sy >= -eps) & (sy <= h - 1 + eps)  # NaN -> False
    sx = np.clip(np.nan_to_num(sx), 0, w - 1)
    sy = np.clip(np.nan_to_num(sy), 0, h - 1)
    # sx, sy >= 0 here, so truncation is floor; the last row/column pairs with the one before it
    x0 = np.minimum(sx.astype(np.int64), w - 2) if w > 1 else np.zeros_like(sx, np.int64)
    y0 = np.minimum(sy.astype(np.int64), h - 2) if h > 1 else np.zeros_like(sy, np.int64)
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    ax = (sx - x0).astype(dtype)[..., None]
    ay = (sy - y0).astype(dtype)[..., None]
    # one linear index into all images at once: np.take on it is ~3x faster than fancy indexing
    c = img.shape[-1]
    flat = img.reshape(-1, c)
    n = int(np.prod(lead)) if lead else 1
    base = ((np.arange(n, dtype=np.int64).reshape(lead + (1, 1)) * h + y0) * w + x0).ravel()

    def at(offset):
        return np.take(flat, base + offset, axis=0).reshape(ax.shape[:-1] + (c,))

    top = at(0) * (1 - ax) + at(dx) * ax
    bot = at(dy) * (1 - ax) + at(dy + dx) * ax
    out = top * (1 - ay) + bot * ay
    return (out[..., 0] if squeeze else out), inside


def motion_boundary(flow: np.ndarray) -> np.ndarray:
    """bool (..., H, W): |grad F_x|^2 + |grad F_y|^2 > 0.01 |F|^2 + 0.002, forward differences (0 at the last row/column)."""
    f = np.asarray(flow)
    f = f if f.dtype in (np.float32, np.float64) else f.astype(np.float64)
    dx = np.zeros_like(f)
    dy = np.zeros_like(f)
    dx[..., :, :-1, :] = f[..., :, 1:, :] - f[..., :, :-1, :]
    dy[..., :-1, :, :] = f[..., 1:, :, :] - f[..., :-1, :, :]
    grad = _sq2(dx) + _sq2(dy)
    return grad > 0.01 * _sq2(f) + 0.002


def _sq2(v: np.ndarray) -> np.ndarray:
    """|v|^2 over a last axis of 2 (written out: numpy's reduce over a 2-wide axis is slow)."""
    return v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1]


def occlusion_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """bool (..., H, W) in frame t: True where pixel x of frame t has no reliable match in frame t+1
    (forward-backward inconsistent, on a motion boundary, warped outside the frame, or NaN flow)."""
    bw_w, inside = warp(backward, forward)
    return _occluded(np.asarray(forward, np.float64), bw_w, inside)


def _occluded(fw: np.ndarray, bw_w: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """occlusion_mask given the backward flow already warped by the forward flow."""
    s = _sq2(fw + bw_w)
    inconsistent = s > 0.01 * (_sq2(fw) + _sq2(bw_w)) + 0.5
    bad = ~np.isfinite(s)
    return inconsistent | motion_boundary(fw) | ~inside | bad


def pair_warping_error(frame_t: np.ndarray, frame_t1: np.ndarray, forward: np.ndarray,
                       backward: np.ndarray) -> tuple[float, float]:
    """(masked mean squared error, occluded fraction) for float frames (H, W, 3) in [0, 1]."""
    errs, occ = warping_errors(np.stack([frame_t, frame_t1]), forward[None], backward[None])
    return float(errs[0]), float(occ[0])


PAIRS_PER_BLOCK = 8  # pairs warped together: vectorised, yet memory stays flat on long clips


def warping_errors(frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (errors, occluded fractions), each (T-1,), for frames (T, H, W, 3): float in [0, 1]
    or uint8. Pairs are warped in vectorised blocks (the per-pair definition is unchanged)."""
    n = max(frames.shape[0] - 1, 0)
    if forward.shape[0] != n or backward.shape[0] != n:
        raise ValueError(f"flow has {forward.shape[0]}/{backward.shape[0]} pairs for {frames.shape[0]} frames")
    if n == 0:
        return np.full(0, np.nan), np.ones(0)
    errs, occ = [], []
    for i in range(0, n, PAIRS_PER_BLOCK):
        j = min(n, i + PAIRS_PER_BLOCK)
        block = frames[i:j + 1]
        if block.dtype == np.uint8:
            block = block.astype(np.float32) / 255.0
        e, o = _block_errors(block, forward[i:j], backward[i:j])
        errs.append(e)
        occ.append(o)
    return np.concatenate(errs), np.concatenate(occ)


def _block_errors(frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = frames.shape[0] - 1
    # frame t+1 and the backward flow sample the same points: warp them together (one gather).
    # Pixels, flow and per-pixel errors in float32 (as Lai et al.'s own code), sums in float64.
    f32 = np.float32
    both, inside = warp(np.concatenate([np.asarray(frames[1:], f32), np.asarray(backward, f32)], -1), forward, f32)
    warped, bw_w = both[..., :3], both[..., 3:]
    occ = _occluded(np.asarray(forward, f32), bw_w, inside)
    keep = ~occ
    d = warped - np.asarray(frames[:-1], f32)
    d *= d
    sq = (d[..., 0] + d[..., 1] + d[..., 2]) / 3
    counts = keep.reshape(n, -1).sum(1)
    sums = np.where(keep, sq, 0.0).reshape(n, -1).sum(1, dtype=np.float64)
    # NaN pixels propagate into their pair's error, as in the per-pair definition
    nan_pairs = np.isnan(np.where(keep, sq, 0.0)).reshape(n, -1).any(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        errs = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    errs[nan_pairs & (counts > 0)] = np.nan
    return errs, occ.reshape(n, -1).mean(1)


class WarpingError(Metric):
    name = "warping_error"
    version = "2"  # 2: per-pixel arithmetic in float32 (sums in float64); values agree to ~1e-6
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "dis"
    allowed_backbones = ("dis", "raft", "raft_vbench")
    failure_mode = "flicker"

    def requests(self) -> list[FeatureRequest]:
        # the frames as the flow backbone saw them: on real footage both are at its working size
        return [FeatureRequest("flow", self.backbone), FeatureRequest("frames", self.backbone)]

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        frames = clip.frames_for(self.backbone)
        if len(frames) < 2:
            return ClipScore(float("nan"), note="one-frame clip: no frame pairs to warp")
        flow = clip.get("flow", self.backbone)
        errs, occ = warping_errors(frames, flow["forward"], flow["backward"])
        curve = [float(e) for e in errs]
        extras = {"occluded_fraction": float(occ.mean()), **input_fps(flow)}  # per pair at this frame rate
        ok = np.isfinite(errs)
        if not ok.any():
            return ClipScore(float("nan"), curve, extras, note="every pixel of every pair is occluded or out of frame")
        note = None if ok.all() else f"{int((~ok).sum())} of {errs.size} pairs fully occluded, left out"
        return ClipScore(float(errs[ok].mean()), curve, extras, note)
