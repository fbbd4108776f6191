import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.warping_error import (WarpingError, motion_boundary, occlusion_mask, pair_warping_error, warp,
                                          warping_errors)
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import flicker


def gt_backward(c):
    """Exact backward flow (t+1 -> t) of a world clip from its masks and positions."""
    return c.flow_between([(t, t + 1) for t in range(c.flow.shape[0])])[1].astype(np.float32)


def test_ground_truth_flow_gives_zero_error_on_unoccluded_pixels():
    for seed in range(6):
        c = sample_clip(seed, WorldSpec(pan_probability=0.5, frames=6))
        errs, occ = warping_errors(c.video.as_float(), c.flow, gt_backward(c))
        assert np.all(errs < 1e-12)
        assert np.all(occ < 0.5)  # most pixels stay usable


def test_disoccluded_background_is_masked():
    c = sample_clip(0, WorldSpec(motions=("right",), max_objects=1, pan_probability=0.0, frames=3))
    bw = gt_backward(c)
    occ = occlusion_mask(c.flow[0], bw[0])
    covered = c.masks[1, 0] & ~c.masks[0, 0]  # background at t covered by the object at t+1
    assert covered.any() and occ[covered].all()
    revealed_far = ~c.masks[0, 0] & ~c.masks[1, 0]
    assert occ[revealed_far].mean() < 0.05


def test_known_translation():
    rng = np.random.default_rng(0)
    big = rng.random((40, 44, 3))
    a, b = big[4:36, 4:40], big[4:36, 1:37]  # content moves right by 3: b(x) = a(x - 3)
    fw = np.zeros((32, 36, 2))
    fw[..., 0] = 3.0
    warped, inside = warp(b, fw)
    assert np.allclose(warped[inside], a[inside])
    assert not inside[:, -3:].any() and inside[:, :-3].all()
    err, occ = pair_warping_error(a, b, fw, -fw)
    assert err == pytest.approx(0.0, abs=1e-15) and occ == pytest.approx(3 / 36)


def test_subpixel_warp_is_bilinear():
    img = np.arange(12, dtype=np.float64).reshape(3, 4)
    fw = np.zeros((3, 4, 2))
    fw[..., 0] = 0.5
    w, inside = warp(img, fw)
    assert np.allclose(w[:, :3], img[:, :3] + 0.5) and not inside[:, 3].any()


def test_motion_boundary_only_where_flow_changes():
    f = np.zeros((8, 8, 2))
    assert not motion_boundary(f).any()
    f[:, 4:, 0] = 2.0
    mb = motion_boundary(f)
    assert mb[:, 3].all() and mb.sum() == 8


def test_nan_inputs_are_defined():
    a = np.zeros((6, 6, 3))
    b = np.zeros((6, 6, 3))
    b[2, 2] = np.nan
    z = np.zeros((6, 6, 2))
    err, _ = pair_warping_error(a, b, z, z)
    assert np.isnan(err)
    nf = z.copy()
    nf[...] = np.nan
    err, occ = pair_warping_error(a, a, nf, nf)  # no usable flow anywhere: all masked
    assert np.isnan(err) and occ == 1.0


def _score(video, m=None):
    m = m or WarpingError()
    cf = ClipFeatures("c", video)
    featurize([cf], m.requests(), BackbonePool())
    return m.score_clip(cf)


def test_metric_flicker_raises_error_and_edge_cases():
    c = sample_clip(2, WorldSpec())
    clean, flick = _score(c.video), _score(flicker(c, 0.5, 0))
    assert flick.value > 3 * clean.value and len(clean.curve) == 7
    one = _score(Video(c.video.frames[:1]))
    assert np.isnan(one.value) and one.note
    still = _score(Video(np.repeat(c.video.frames[:1], 5, axis=0)))
    assert still.value == 0.0
    odd = _score(sample_clip(3, WorldSpec(height=21, width=27, frames=4)).video)
    assert np.isfinite(odd.value)


def test_batch_invariant():
    m = WarpingError()
    clips = [ClipFeatures(str(s), sample_clip(s, WorldSpec(frames=5)).video) for s in range(3)]
    featurize(clips, m.requests(), BackbonePool())
    alone = ClipFeatures("x", clips[1].video)
    featurize([alone], m.requests(), BackbonePool())
    assert m.score_clip(clips[1]).value == m.score_clip(alone).value


def _reference_errors(frames, forward, backward):
    """The per-pair definition composed from `warp` and the occlusion test, all pixels at once."""
    from vdeval.metrics.warping_error import _occluded

    f32 = np.float32
    frames = frames.astype(f32) / 255.0 if frames.dtype == np.uint8 else np.asarray(frames, f32)
    n = frames.shape[0] - 1
    both, inside = warp(np.concatenate([frames[1:], np.asarray(backward, f32)], -1), forward, f32)
    occ = _occluded(np.asarray(forward, f32), both[..., 3:], inside)
    d = both[..., :3] - frames[:-1]
    d *= d
    sq = np.where(~occ, (d[..., 0] + d[..., 1] + d[..., 2]) / 3, 0.0).reshape(n, -1)
    counts = (~occ).reshape(n, -1).sum(1)
    sums = sq.sum(1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        errs = np.where((counts > 0) & ~np.isnan(sums), sums / np.maximum(counts, 1), np.nan)
    return errs, occ.reshape(n, -1).mean(1)


@pytest.mark.parametrize("shape", [(4, 21, 27), (3, 1, 7), (3, 7, 1), (2, 1, 1), (3, 40, 600), (3, 300, 20)])
def test_strip_path_is_bit_identical_to_the_definition(shape):
    """warping_errors (strips of rows, a pair per thread) gives the very numbers of warp + occlusion
    test: uint8 and float frames, NaN pixels and flow, sample points on and just past the border."""
    rng = np.random.default_rng(sum(shape))
    t, h, w = shape
    frames = rng.integers(0, 256, (t, h, w, 3)).astype(np.uint8)
    fw = rng.normal(0, 3, (t - 1, h, w, 2)).astype(np.float32)
    bw = rng.normal(0, 3, (t - 1, h, w, 2)).astype(np.float32)
    fw[..., 0][fw[..., 0] > 4] = -1e-6  # just outside on the left: out, by the eps rule
    fw[..., 0][fw[..., 0] < -4] = -5e-7  # just outside, but within eps: in
    fw[0, 0, 0] = np.nan
    bw[-1, -1, -1, 0] = np.nan
    for f in (frames, frames / 255.0):
        got, want = warping_errors(f, fw, bw), _reference_errors(f, fw, bw)
        assert np.array_equal(got[0], want[0], equal_nan=True) and np.array_equal(got[1], want[1])
    nan_frames = frames / 255.0
    nan_frames[1, 0, 0, 1] = np.nan
    got, want = warping_errors(nan_frames, fw, bw), _reference_errors(nan_frames, fw, bw)
    assert np.array_equal(got[0], want[0], equal_nan=True)
    half = warping_errors(frames, fw.astype(np.float16), bw.astype(np.float16))  # DIS holds float16
    want = _reference_errors(frames, fw.astype(np.float16), bw.astype(np.float16))
    assert np.array_equal(half[0], want[0], equal_nan=True)
