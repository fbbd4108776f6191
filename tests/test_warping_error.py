import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.featurize import BackbonePool, featurize
from vdeval.metrics.warping_error import (WarpingError, motion_boundary, occlusion_mask, pair_warping_error, warp,
                                          warping_errors)
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import flicker
from vdeval.world.render import _pan_velocity


def gt_backward(c):
    """Exact backward flow (t+1 -> t) of a world clip from its masks and positions."""
    pan = _pan_velocity(c.scene, c.spec)
    bw = np.zeros_like(c.flow)
    bw[..., 0], bw[..., 1] = pan
    for t in range(c.flow.shape[0]):
        for i in range(c.masks.shape[1]):  # later objects are drawn on top, as in the renderer
            bw[t][c.masks[t + 1, i]] = -(c.positions[t + 1, i] - c.positions[t, i])
    return bw


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
