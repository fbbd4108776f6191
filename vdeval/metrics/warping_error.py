"""Warping error: flicker measured where motion is accounted for (Lai et al., ECCV 2018).

Failure mode: flicker (appearance changing frame to frame beyond what motion explains).
Definition, per consecutive pair (t, t+1), all in frame t's pixel grid:
  warped = frame t+1 sampled bilinearly at x + F(x), F the forward flow t -> t+1;
  B_w    = backward flow (t+1 -> t) sampled at x + F(x);
  occluded where |F + B_w|^2 > 0.01 (|F|^2 + |B_w|^2) + 0.5 (forward-backward inconsistency),
  or at a motion boundary |grad F_x|^2 + |grad F_y|^2 > 0.01 |F|^2 + 0.002 (forward differences),
  or where x + F(x) falls outside the frame;
  error  = mean over unoccluded pixels and the 3 channels of (warped - frame t)^2, RGB in [0, 1].
Lai et al.'s released code (fast_blind_video_consistency bce0c7e: evaluate_WarpError.py, utils.py
detect_occlusion, the Resample2d kernel) has the same warp, forward-backward test, motion-boundary
rule, [0, 1] scale and channel average (its mask is read as a 3-channel image and the squared
difference divided by its sum), but no out-of-frame rule: a sample outside the frame takes the
border pixel (its warp clamps the corners) and counts unless the other two tests mask it, and a
pair with nothing unoccluded counts as 0 in the clip mean. We mask samples that leave the frame
(what enters the frame is not flicker: their form scores a clean camera pan as flickering) and
leave fully occluded pairs out. extras["lai2018"] is their number on the same flows (the pairs'
errors their way, averaged over all pairs); equal to ours where no sample leaves the frame, to
float32 rounding (their sample point x + F is rounded to float32, ours is exact):
tests/metrics/test_warping_error_parity.py.
Per clip: value = mean of the pair errors (lower is better), curve = pair errors,
extras["occluded_fraction"] = mean fraction of pixels masked. Flow from "dis" (default) or "raft".
A pair with every pixel masked has no error (NaN) and is left out of the mean; NaN pixel values
propagate into their pair's error.
"""
from __future__ import annotations

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest, input_fps, widen_half
from vdeval.metrics.base import ClipScore, Metric, NoParams


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


STRIP_PIXELS = 1 << 14  # pixels per strip of rows: the per-pixel working set stays in cache
_EPS = 1e-6  # a sample point this far outside the frame still counts as inside (as `warp`)
_F32 = np.float32


def warping_errors(frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair (errors, occluded fractions), each (T-1,), for frames (T, H, W, 3): float in [0, 1]
    or uint8; the flow may be float16 or float32. The numbers of `warp` and `occlusion_mask` pair by
    pair (the same float32 arithmetic, bit for bit), computed a strip of rows at a time, a run of
    consecutive pairs per worker thread: nothing larger than one frame's planes is allocated."""
    errs, occ, _ = pair_errors(frames, forward, backward)
    return errs, occ


def pair_errors(frames: np.ndarray, forward: np.ndarray, backward: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`warping_errors` and, third, each pair's error as Lai et al.'s evaluate_WarpError.py has it:
    no out-of-frame rule (a sample outside takes the border pixel, as their Resample2d clamps, and
    counts unless the forward-backward or motion-boundary test masks it) and 0 for a pair with
    nothing unoccluded (their N = H W C). Non-finite flow stays masked (their code has no rule)."""
    n = max(frames.shape[0] - 1, 0)
    if forward.shape[0] != n or backward.shape[0] != n:
        raise ValueError(f"flow has {forward.shape[0]}/{backward.shape[0]} pairs for {frames.shape[0]} frames")
    if n == 0:
        return np.full(0, np.nan), np.ones(0), np.zeros(0)
    grid = _Grid(frames.shape[1], frames.shape[2])
    workers = min(n, _cores())
    edges = np.linspace(0, n, workers + 1).astype(int)
    runs = [(frames, forward, backward, grid, a, b) for a, b in zip(edges[:-1], edges[1:])]
    if workers < 2:
        out = [_run_errors(*r) for r in runs]
    else:  # numpy releases the GIL in its loops: runs of pairs go side by side
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            out = list(pool.map(lambda r: _run_errors(*r), runs))
    pairs = np.array([p for run in out for p in run], np.float64).reshape(n, 3)
    return pairs[:, 0].copy(), pairs[:, 1].copy(), pairs[:, 2].copy()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _Grid:
    """Pixel coordinates of an H x W frame and, per column and per row, the float32 bounds a flow
    component must lie within for x + flow to be inside [-eps, n - 1 + eps] (exactly the float64
    test of `warp`: a float32 compares with a bound rounded towards the inside)."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.xs = np.arange(w, dtype=_F32)
        self.ys = np.arange(h, dtype=_F32)[:, None]
        self.x_lo, self.x_hi = _bounds(np.arange(w, dtype=np.float64), w)
        self.y_lo, self.y_hi = _bounds(np.arange(h, dtype=np.float64)[:, None], h)
        self.index_dtype = _F32 if h * w < (1 << 24) else np.float64  # y * w + x exact in it
        self.rows = max(1, STRIP_PIXELS // w)


def _bounds(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = -_EPS - coords, n - 1 + _EPS - coords
    lo32, hi32 = lo.astype(_F32), hi.astype(_F32)
    lo32 = np.where(lo32 < lo, np.nextafter(lo32, _F32(np.inf)), lo32)
    hi32 = np.where(hi32 > hi, np.nextafter(hi32, _F32(-np.inf)), hi32)
    return lo32, hi32


def _axis(f: np.ndarray, coords: np.ndarray, n: int, lo: np.ndarray, hi: np.ndarray):
    """(lower neighbour, weight of the upper one, inside) along one axis: what `warp` gets by
    clipping x + f to [0, n - 1] in float64, as floor and fraction (f - floor(f) rounds as it does).
    The neighbour is a whole number held in float32."""
    inside = f >= lo
    inside &= f <= hi  # NaN: outside
    if n == 1:
        return np.zeros_like(f), np.zeros_like(f), inside
    i = np.floor(f)
    a = f - i
    i += coords
    np.copyto(a, 0, where=i < 0)  # clipped to 0
    np.copyto(a, 1, where=i > n - 2)  # clipped to n - 1: the last pair of pixels, all weight on the far one
    np.fmax(i, 0, out=i)  # NaN -> 0
    np.fmin(i, n - 2, out=i)
    return i, a, inside


def _planes(frame: np.ndarray) -> list[np.ndarray]:
    """Float32 channel planes of one frame, uint8 scaled to [0, 1] as `astype(float32) / 255`."""
    out = []
    for c in range(frame.shape[-1]):
        if frame.dtype == np.uint8:
            p = frame[..., c].astype(_F32)
            p /= _F32(255.0)
        else:
            p = np.array(frame[..., c], _F32)
        out.append(p)
    return out


def _run_errors(frames, forward, backward, g: _Grid, start: int, stop: int) -> list[tuple[float, float, float]]:
    """(error, occluded fraction, Lai et al.'s error) of pairs start..stop-1; each frame's planes are made once."""
    out = []
    nxt = _planes(frames[start])
    for t in range(start, stop):
        cur, nxt = nxt, _planes(frames[t + 1])
        out.append(_pair_errors(cur, nxt, forward[t], backward[t], g))
    return out


def _pair_errors(cur, nxt, forward, backward, g: _Grid) -> tuple[float, float, float]:
    """(error, occluded fraction, Lai et al.'s error) of one pair, as `warp` + `_occluded` define
    the first two; the third leaves the out-of-frame rule out (see `pair_errors`)."""
    h, w = g.h, g.w
    forward = widen_half(forward)
    fx, fy = (np.array(forward[..., k], _F32) for k in (0, 1))
    sources = [p.ravel() for p in nxt + _planes(widen_half(backward))]
    shifts: tuple[int, ...] = (0, 1 if w > 1 else 0, w if h > 1 else 0)
    shifts += (shifts[1] + shifts[2],)
    # corner k of sample point i is source[i + shift k]: the same index into shifted views
    views = [[src[k:] for k in shifts] for src in sources]
    sq_all = np.empty((h, w), _F32)
    sq_lai = np.empty((h, w), _F32)
    occluded = occluded_lai = 0
    for r0 in range(0, h, g.rows):
        s = slice(r0, min(h, r0 + g.rows))
        x0, ax, inside = _axis(fx[s], g.xs, w, g.x_lo, g.x_hi)
        y0, ay, in_y = _axis(fy[s], g.ys[s], h, g.y_lo[s], g.y_hi[s])
        inside &= in_y
        y0 = y0.astype(g.index_dtype, copy=False)
        y0 *= w
        y0 += x0
        base = y0.astype(np.intp)
        warped = [_bilinear(v, base, ax, ay) for v in views]
        occ = _inconsistent(fx[s], fy[s], warped[3], warped[4])
        occ |= _motion_boundary_rows(fx, fy, s)
        sq = _sq_diff(warped[:3], [c[s] for c in cur])
        sq[occ] = 0
        sq_lai[s] = sq  # outside samples read the clamped border pixel, as Lai et al.'s Resample2d
        occluded_lai += int(np.count_nonzero(occ))
        occ |= ~inside
        sq[occ] = 0
        sq_all[s] = sq
        occluded += int(np.count_nonzero(occ))
    err = _masked_mean(sq_all, h * w - occluded, float("nan"))
    err_lai = _masked_mean(sq_lai, h * w - occluded_lai, 0.0)  # theirs: N = H W C, and every term 0
    return err, occluded / (h * w), err_lai


def _masked_mean(sq: np.ndarray, keep: int, empty: float) -> float:
    total = float(sq.reshape(1, -1).sum(1, dtype=np.float64)[0])  # the reduction of the whole-clip form
    if keep == 0:
        return empty
    return total / keep if not np.isnan(total) else float("nan")


def _motion_boundary_rows(fx: np.ndarray, fy: np.ndarray, s: slice) -> np.ndarray:
    """motion_boundary of the rows `s` of float32 flow planes: the same operations in the same order
    (forward differences; the next row is read, the last row and column have none)."""
    ext = slice(s.start, min(fx.shape[0], s.stop + 1))
    ax, ay = fx[ext], fy[ext]
    rows = s.stop - s.start
    gx = np.zeros((rows, fx.shape[1]), _F32)
    for c in (ax, ay):
        d = c[:rows, 1:] - c[:rows, :-1]
        d *= d
        gx[:, :-1] += d
    gy = np.zeros_like(gx)
    for c in (ax, ay):
        d = c[1:] - c[:-1]  # rows - 1, or rows when the next row exists
        d *= d
        gy[:d.shape[0]] += d
    gx += gy
    m = ax[:rows] * ax[:rows]
    m += ay[:rows] * ay[:rows]
    m *= _F32(0.01)
    m += _F32(0.002)
    return gx > m


def _bilinear(corners, base: np.ndarray, ax: np.ndarray, ay: np.ndarray) -> np.ndarray:
    """`warp`'s interpolation: (a (1 - ax) + b ax)(1 - ay) + (c (1 - ax) + d ax) ay, in float32."""
    a, b, c, d = (np.take(v, base, mode="clip") for v in corners)  # indices are in range: no checks
    bx, by = 1 - ax, 1 - ay
    a *= bx
    b *= ax
    a += b
    c *= bx
    d *= ax
    c += d
    a *= by
    c *= ay
    a += c
    return a


def _inconsistent(fx, fy, bx, by) -> np.ndarray:
    """|F + B_w|^2 > 0.01 (|F|^2 + |B_w|^2) + 0.5, or not finite (as `_occluded`)."""
    s = fx + bx
    s *= s
    t = fy + by
    t *= t
    s += t
    m = fx * fx
    m += fy * fy
    b2 = bx * bx
    b2 += by * by
    m += b2
    m *= _F32(0.01)
    m += _F32(0.5)
    out = s > m
    out |= ~np.isfinite(s)
    return out


def _sq_diff(warped, cur) -> np.ndarray:
    """Mean over the 3 channels of (warped - frame t)^2."""
    sq = None
    for wc, cc in zip(warped, cur):
        wc -= cc
        wc *= wc
        sq = wc if sq is None else sq + wc
    assert sq is not None  # frames have three channels
    sq /= _F32(3)
    return sq


class WarpingError(Metric[NoParams]):
    name = "warping_error"
    # 2: per-pixel arithmetic in float32 (sums in float64); values agree to ~1e-6.
    # 3: extras["lai2018"], Lai et al.'s released number (value unchanged)
    version = "3"
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
        flow = clip.get("flow", self.backbone)
        errs, occ, lai = pair_errors(frames, flow["forward"], flow["backward"])
        curve = [float(e) for e in errs]
        extras = {"occluded_fraction": float(occ.mean()), "lai2018": float(lai.mean()),
                  **input_fps(flow)}  # per pair at this frame rate
        ok = np.isfinite(errs)
        if not ok.any():
            return ClipScore(float("nan"), curve, extras, note="every pixel of every pair is occluded or out of frame")
        note = None if ok.all() else f"{int((~ok).sum())} of {errs.size} pairs fully occluded, left out"
        return ClipScore(float(errs[ok].mean()), curve, extras, note)
