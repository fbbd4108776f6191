"""Parity of `warping_error` with Lai et al.'s released evaluation code (ECCV 2018, "Learning Blind
Video Temporal Consistency"), github.com/phoenix104104/fast_blind_video_consistency at commit
bce0c7eff41747ad4870f906c4b31cf96061ed80.

Their code cannot run here (its Resample2d is a CUDA extension built for torch 0.4, and FlowNet2
needs weights), so its code path is written out below from these files, function by function, in
their dtypes (float32 images, flows and masks; float64 flow gradients; the kernel's double weights):
  - networks/resample2d_package/src/Resample2d_kernel.cu, kernel_Resample2d_updateOutput (the warp);
  - utils.py: detect_occlusion, compute_flow_gradients, compute_flow_magnitude, save_img / read_img
    (the occlusion mask goes through a PNG file and back as a 3-channel image);
  - compute_flow_occlusion.py: `fw_occ = utils.detect_occlusion(bw_flow, fw_flow)` (the arguments
    swapped, so the backward flow is warped by the forward flow into frame t's grid);
  - evaluate_WarpError.py: per pair sum((warp - img1)^2 * noc) / sum(noc) (N = H W C when nothing is
    unoccluded), accumulated over the pairs and divided by their number.
The flows are given (their FlowNet2 estimate is not part of the definition), so both sides see the
very same frames, forward and backward flows.
"""
import cv2
import numpy as np
import pytest

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.warping_error import WarpingError, motion_boundary, pair_errors, warp
from vdeval.video import Video

F32 = np.float32


def lai_resample2d(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """kernel_Resample2d_updateOutput (kernel_size 1): img (H, W, C) float32, flow (H, W, 2) float32.
    xf = float(x) + dx in float32; alpha = xf - floor(xf); the four corners clamped to the frame
    (so a sample outside takes the border pixel); each term (1. - alpha)(1. - beta) * pixel in
    double, added to the float accumulator `val` (val += term: rounded to float after each add)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    xf = xs.astype(F32) + flow[..., 0].astype(F32)
    yf = ys.astype(F32) + flow[..., 1].astype(F32)
    alpha = (xf - np.floor(xf)).astype(np.float64)[..., None]
    beta = (yf - np.floor(yf)).astype(np.float64)[..., None]
    x0 = np.floor(xf).astype(np.int64)
    y0 = np.floor(yf).astype(np.int64)
    xL, xR = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    yT, yB = np.clip(y0, 0, h - 1), np.clip(y0 + 1, 0, h - 1)
    px = img.astype(np.float64)
    val = np.zeros(img.shape[:2] + (img.shape[2],), F32)
    for term in ((1.0 - alpha) * (1.0 - beta) * px[yT, xL], alpha * (1.0 - beta) * px[yT, xR],
                 (1.0 - alpha) * beta * px[yB, xL], alpha * beta * px[yB, xR]):
        val = (val.astype(np.float64) + term).astype(F32)
    return val


def lai_compute_flow_magnitude(flow):
    return flow[:, :, 0] ** 2 + flow[:, :, 1] ** 2


def lai_compute_flow_gradients(flow):
    H, W = flow.shape[:2]
    flow_x_du, flow_x_dv = np.zeros((H, W)), np.zeros((H, W))
    flow_y_du, flow_y_dv = np.zeros((H, W)), np.zeros((H, W))
    flow_x, flow_y = flow[:, :, 0], flow[:, :, 1]
    flow_x_du[:, :-1] = flow_x[:, :-1] - flow_x[:, 1:]
    flow_x_dv[:-1, :] = flow_x[:-1, :] - flow_x[1:, :]
    flow_y_du[:, :-1] = flow_y[:, :-1] - flow_y[:, 1:]
    flow_y_dv[:-1, :] = flow_y[:-1, :] - flow_y[1:, :]
    return flow_x_du, flow_x_dv, flow_y_du, flow_y_dv


def lai_detect_occlusion(fw_flow, bw_flow):
    """utils.detect_occlusion, parameter names as theirs (compute_flow_occlusion.py passes them swapped)."""
    fw_flow_w = lai_resample2d(fw_flow, bw_flow)
    fb_flow_sum = fw_flow_w + bw_flow
    fb_flow_mag = lai_compute_flow_magnitude(fb_flow_sum)
    fw_flow_w_mag = lai_compute_flow_magnitude(fw_flow_w)
    bw_flow_mag = lai_compute_flow_magnitude(bw_flow)
    mask1 = fb_flow_mag > 0.01 * (fw_flow_w_mag + bw_flow_mag) + 0.5
    fx_du, fx_dv, fy_du, fy_dv = lai_compute_flow_gradients(bw_flow)
    fx_mag = fx_du ** 2 + fx_dv ** 2
    fy_mag = fy_du ** 2 + fy_dv ** 2
    mask2 = (fx_mag + fy_mag) > 0.01 * bw_flow_mag + 0.002
    mask = np.logical_or(mask1, mask2)
    occlusion = np.zeros((fw_flow.shape[0], fw_flow.shape[1]))
    occlusion[mask == 1] = 1
    return occlusion


def lai_png_roundtrip(occ: np.ndarray, path) -> np.ndarray:
    """save_img (clip, np.uint8(img * 255), cv2.imwrite PNG) then read_img (cv2.imread: 3 channels, /255)."""
    cv2.imwrite(str(path), np.uint8(np.clip(occ, 0, 1) * 255.0), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    img = cv2.imread(str(path))[:, :, ::-1]
    return np.float32(img) / 255.0


def lai_warp_error(frames_u8: np.ndarray, fw: np.ndarray, bw: np.ndarray, tmp_path, extra_mask=None):
    """(per-pair errors, clip error) of evaluate_WarpError.py on uint8 RGB frames (T, H, W, 3) and
    float32 flows (T-1, H, W, 2). extra_mask (T-1, H, W) bool, if given, is also masked (used to
    show that the out-of-frame rule is the only difference)."""
    T = frames_u8.shape[0]
    per_pair = []
    err = 0
    for t in range(1, T):
        img1 = np.float32(frames_u8[t - 1]) / 255.0
        img2 = np.float32(frames_u8[t]) / 255.0
        flow = fw[t - 1].astype(F32)
        occ = lai_detect_occlusion(bw[t - 1].astype(F32), flow)  # as compute_flow_occlusion.py calls it
        if extra_mask is not None:
            occ = np.maximum(occ, extra_mask[t - 1])
        occ_mask = lai_png_roundtrip(occ, tmp_path / f"{t - 1:05d}.png")
        noc_mask = 1 - occ_mask
        warp_img2 = lai_resample2d(img2, flow)
        diff = np.multiply(warp_img2 - img1, noc_mask)
        N = np.sum(noc_mask)
        if N == 0:
            N = diff.shape[0] * diff.shape[1] * diff.shape[2]
        e = np.sum(np.square(diff)) / N
        per_pair.append(float(e))
        err += e
    return np.array(per_pair), float(err / (T - 1))


def _texture(rng, h, w, t):
    """Smooth random RGB frames (T, H, W, 3) uint8: gradients that bilinear sampling does not flatten."""
    out = []
    for _ in range(t):
        small = rng.random((max(2, h // 4), max(2, w // 4), 3)).astype(F32)
        out.append(np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 255, 0, 255))
    return np.stack(out).astype(np.uint8)


def _flows(rng, t, h, w, kind):
    """Forward and backward flows (T-1, H, W, 2) float32 with the features the parity must cover."""
    fw = np.zeros((t - 1, h, w, 2), F32)
    bw = np.zeros_like(fw)
    for k in range(t - 1):
        if kind == "inside":  # subpixel background + an object (motion boundary, occlusion); nothing leaves the frame
            fw[k, 2:-2, 2:-2] = rng.uniform(-0.45, 0.45, 2)  # a still 2 px border ring: no sample leaves
            y, x = rng.integers(4, h - 12), rng.integers(4, w - 12)
            fw[k, y:y + 6, x:x + 7] = rng.uniform(-2.5, 2.5, 2)
            bw[k] = -fw[k]
            bw[k, y + 1:y + 4, x + 2:x + 5] += 3.0  # inconsistent: occluded
            bw[k] += rng.normal(0, 0.05, bw[k].shape)  # small noise: consistent
        elif kind == "pan":  # a camera pan: samples leave the frame on one side, consistently
            fw[k, ..., 0] = rng.uniform(1.2, 3.7)
            fw[k, ..., 1] = rng.uniform(-1.6, 1.6)
            bw[k] = -fw[k]
        elif kind == "random":  # smooth random fields: everything at once, including large motions
            small = rng.normal(0, 0.8, (2, 3, 2)).astype(F32)
            fw[k] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
            bw[k] = -fw[k] + rng.normal(0, 0.2, fw[k].shape).astype(F32)
            y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
            fw[k, y:y + 8, x:x + 8] += rng.uniform(-6, 6, 2).astype(F32)  # a moving block: boundaries
    return fw, bw


def _ours(frames, fw, bw):
    cf = ClipFeatures("c", Video(frames))
    cf.features[FeatureRequest("flow", "dis").key] = {"forward": fw, "backward": bw}
    return cf


def _case(seed, kind, t=5, h=24, w=32):
    rng = np.random.default_rng(seed)
    return (_texture(rng, h, w, t),) + _flows(rng, t, h, w, kind)


# Measured with these cases (10 seeds each, 24 x 32, 5 frames): per-pair relative difference of
# ours from theirs <= 1.6e-7 wherever the out-of-frame rule is applied to both; extras["lai2018"]
# from theirs <= 1.6e-7. The bound leaves room for other BLAS/numpy builds, not for a rule change.
REL = 1e-6


@pytest.mark.parametrize("kind", ["inside", "pan", "random"])
def test_pair_errors_equal_lai_et_al(kind, tmp_path):
    """Occlusions, motion boundaries, subpixel flow (every kind), samples leaving the frame (pan,
    random): our pairs equal theirs with the out-of-frame rule added to their mask, our lai2018
    pairs equal theirs as they are."""
    for seed in range(4):
        frames, fw, bw = _case(seed, kind)
        ours, occ, lai = pair_errors(frames, fw, bw)
        assert (occ > 0.02).all() and (occ < 0.9).all()  # a real mask, not all or nothing
        _, inside = warp(np.zeros(fw.shape[:3]), fw)
        theirs, clip = lai_warp_error(frames, fw, bw, tmp_path)
        theirs_oof, _ = lai_warp_error(frames, fw, bw, tmp_path, extra_mask=~inside)
        np.testing.assert_allclose(lai, theirs, rtol=REL)
        np.testing.assert_allclose(ours, theirs_oof, rtol=REL)
        if kind == "inside":
            assert inside.all() and motion_boundary(fw).any(axis=(1, 2)).all()
            np.testing.assert_allclose(ours, theirs, rtol=REL)
        else:  # the one rule that differs, and by how much on these cases
            assert (~inside).any() and np.abs(ours / theirs - 1).max() > 1e-2
        score = WarpingError().score_clip(_ours(frames, fw, bw))
        assert score.extras["lai2018"] == pytest.approx(clip, rel=REL)
        assert score.value == pytest.approx(float(ours.mean()), rel=1e-12)


def test_fully_occluded_pair_counts_zero_in_theirs_and_is_left_out_of_ours(tmp_path):
    frames, fw, bw = _case(0, "inside")
    bw[1] = fw[1] + 5.0  # every pixel inconsistent
    ours, occ, lai = pair_errors(frames, fw, bw)
    theirs, clip = lai_warp_error(frames, fw, bw, tmp_path)
    assert occ[1] == 1.0 and np.isnan(ours[1]) and lai[1] == 0.0 == theirs[1]
    score = WarpingError().score_clip(_ours(frames, fw, bw))
    assert score.extras["lai2018"] == pytest.approx(clip, rel=REL)
    assert score.value == pytest.approx(float(np.nanmean(ours)), rel=1e-12) and "1 of 4" in score.note


def test_clean_pan_is_zero_for_ours_and_not_for_theirs(tmp_path):
    """Why we keep the out-of-frame rule: a flicker-free pan (exact flow) is 0 for us; their border
    samples compare the clamped edge with content entering the frame."""
    rng = np.random.default_rng(3)
    big = _texture(rng, 40, 60, 1)[0]
    frames = np.stack([big[8:32, 12 - 3 * t:44 - 3 * t] for t in range(4)])  # content moves right 3 px a frame
    fw = np.zeros((3, 24, 32, 2), F32)
    fw[..., 0] = 3.0
    ours, _, lai = pair_errors(frames, fw, -fw)
    theirs, _ = lai_warp_error(frames, fw, -fw, tmp_path)
    assert np.all(ours == 0.0)
    np.testing.assert_allclose(lai, theirs, rtol=REL)
    assert np.all(theirs > 1e-3)
