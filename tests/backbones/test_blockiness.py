"""The blockiness backbone (Wang, Sheikh and Bovik 2002): the authors' MATLAB jpeg_quality_score.m
written out with its 1-based indices as the reference, known answers (a hand-computed image, block
quantisation, a shifted grid, constant and small frames), determinism, and clips through the
imaging_quality metric (carphone pristine vs its compressed copy, a file streamed by featurize)."""
from pathlib import Path

import numpy as np
import pytest

from vdeval.backbones.blockiness import ALPHA, BETA, Blockiness, features, luma8, score
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest
from vdeval.metrics.imaging_quality import ImagingQuality
from vdeval.video import Video
from vdeval.video.io import read_video

DATA = Path(__file__).resolve().parents[1] / "data"


def matlab_jpeg_quality_score(img: np.ndarray) -> tuple[float, float, float, float]:
    """jpeg_quality_score.m (Z. Wang, 2002) line by line: x(r, c) is x[r - 1, c - 1]; a:s:b ranges
    are inclusive; mean2 is the mean of every element. Returns (B, A, Z, S); S unclamped."""
    x = np.asarray(img, np.float64)
    M, N = x.shape

    def cols(a, s, b):  # MATLAB a:s:b as 0-based indices
        return np.arange(a, b + 1, s) - 1

    d_h = x[:, cols(2, 1, N)] - x[:, cols(1, 1, N - 1)]
    B_h = np.abs(d_h[:, cols(8, 8, 8 * (N // 8 - 1))]).mean()
    A_h = (8 * np.abs(d_h).mean() - B_h) / 7
    sig_h = np.sign(d_h)
    Z_h = ((sig_h[:, cols(1, 1, N - 2)] * sig_h[:, cols(2, 1, N - 1)]) < 0).mean()
    d_v = x[cols(2, 1, M), :] - x[cols(1, 1, M - 1), :]
    B_v = np.abs(d_v[cols(8, 8, 8 * (M // 8 - 1)), :]).mean()
    A_v = (8 * np.abs(d_v).mean() - B_v) / 7
    sig_v = np.sign(d_v)
    Z_v = ((sig_v[cols(1, 1, M - 2), :] * sig_v[cols(2, 1, M - 1), :]) < 0).mean()
    B, A, Z = (B_h + B_v) / 2, (A_h + A_v) / 2, (Z_h + Z_v) / 2
    return B, A, Z, -245.9 + 261.9 * B ** -0.0240 * A ** 0.0160 * Z ** 0.0064


def test_features_equal_the_authors_matlab_code():
    rng = np.random.default_rng(0)
    for shape in ((16, 16), (37, 53), (64, 48), (100, 129)):
        img = rng.integers(0, 256, shape).astype(np.float64)
        img[: shape[0] // 2] = np.round(img[: shape[0] // 2] / 32) * 32  # flat runs too
        B, A, Z, S = matlab_jpeg_quality_score(img)
        assert features(img) == pytest.approx((B, A, Z), rel=1e-12)
        assert score(B, A, Z) == pytest.approx(S, rel=1e-12)


def test_hand_computed_image():
    """Columns alternating 0 / 10: every horizontal step is 10 with a sign change, no vertical step:
    B_h = A_h = 10, Z_h = 1, B_v = A_v = Z_v = 0, so B = A = 5, Z = 0.5."""
    img = np.tile((np.arange(40) % 2) * 10.0, (24, 1))
    assert features(img) == (5.0, 5.0, 0.5)
    assert score(5.0, 5.0, 0.5) == pytest.approx(ALPHA + BETA * 5 ** -0.024 * 5 ** 0.016 * 0.5 ** 0.0064, rel=1e-15)


def _smooth(h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    return np.rint(128 + 60 * np.sin(x / 7.0) * np.cos(y / 9.0) + rng.normal(0, 2, (h, w)))


def test_block_quantised_image_scores_lower_and_a_shifted_grid_is_not_seen():
    img = _smooth()
    blocks = img.reshape(8, 8, 12, 8).mean((1, 3)).repeat(8, 0).repeat(8, 1)  # 8x8 means: pure blocking
    noisy_blocks = np.rint(blocks + np.random.default_rng(1).normal(0, 2, blocks.shape))
    s_smooth, s_blocks = score(*features(img)), score(*features(noisy_blocks))
    assert s_blocks < s_smooth - 3  # measured: 11.1 smooth vs 1.5
    b_smooth, b_blocks = features(img)[0], features(noisy_blocks)[0]
    assert b_blocks > 2 * b_smooth
    # the same blocks with the grid shifted by 3 px: the steps fall inside the measured blocks
    shifted = np.roll(noisy_blocks, (3, 3), axis=(0, 1))
    b_sh, a_sh, _ = features(shifted)
    assert b_sh < b_blocks and a_sh > features(noisy_blocks)[1] and score(*features(shifted)) > s_blocks
    # steps only at block boundaries, flat inside: A clamps at 0 and Z is 0, S the formula's floor
    assert score(*features(blocks)) == ALPHA


def test_constant_and_small_frames_are_undefined():
    flat = np.full((2, 32, 32, 3), 90, np.uint8)
    out = Blockiness().compute("frame_score", [ClipInput(Video(flat))])[0]
    assert np.isnan(out["value"]).all() and np.isnan(out["clip"]).all()
    assert (out["B"] == 0).all() and (out["A"] == 0).all() and (out["Z"] == 0).all()
    small = np.random.default_rng(0).integers(0, 256, (3, 15, 40, 3), dtype=np.uint8)
    out = Blockiness().compute("frame_score", [ClipInput(Video(small))])[0]
    assert np.isnan(out["value"]).all() and np.isnan(out["clip"]).all()
    m = ImagingQuality(backbone="blockiness")
    cf = ClipFeatures("flat", Video(flat))
    cf.features[("frame_score", "blockiness")] = Blockiness().compute("frame_score", [ClipInput(Video(flat))])[0]
    s = m.score_clip(cf)
    assert np.isnan(s.value) and "block boundary" in s.note


def test_jpeg_lowers_the_score_and_luma_is_rounded():
    import cv2

    frame = np.stack([_smooth(seed=s) for s in range(3)], -1).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 10])
    assert ok
    jpeg = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    assert score(*features(luma8(jpeg))) < score(*features(luma8(frame))) - 2
    g = luma8(frame)
    assert g.dtype == np.float64 and np.array_equal(g, np.rint(g))


def test_deterministic_and_batch_invariant():
    rng = np.random.default_rng(3)
    clips = [ClipInput(Video(rng.integers(0, 256, (t, 40, 56, 3), dtype=np.uint8))) for t in (2, 5)]
    b = Blockiness()
    together = b.compute("frame_score", clips)
    alone = [b.compute("frame_score", [c])[0] for c in clips]
    for x, y in zip(together, alone):
        assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k], equal_nan=True) for k in x)
    # clip value: S of the mean B, A, Z over frames
    f = together[1]
    assert f["clip"][0] == pytest.approx(score(f["B"].astype(np.float64).mean(), f["A"].astype(np.float64).mean(),
                                               f["Z"].astype(np.float64).mean()), rel=1e-5)


def test_carphone_compressed_scores_lower_through_the_metric():
    m = ImagingQuality(backbone="blockiness")
    assert m.higher_is_better is True
    b = Blockiness()
    scores = {}
    for k in ("pristine", "distorted"):
        v = read_video(DATA / f"carphone_{k}_16f.mp4")
        cf = ClipFeatures(k, v)
        cf.features[("frame_score", "blockiness")] = b.compute("frame_score", [ClipInput(v)])[0]
        s = m.score_clip(cf)
        assert s.note is None and len(s.curve) == 16 and np.isfinite(s.curve).all()
        scores[k] = s.value
    assert scores["distorted"] < scores["pristine"] - 1


def test_a_file_streams_through_featurize_at_its_own_size(tmp_path):
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.video.io import write_video
    from vdeval.video.source import FileSource

    frames = np.stack([np.stack([_smooth(72, 88, seed=3 * i + c) for c in range(3)], -1) for i in range(4)]).astype(np.uint8)
    path = tmp_path / "clip.mp4"
    write_video(Video(frames, 8.0), path)
    decoded = FileSource(path).decode()
    cf = ClipFeatures("c", FileSource(path))
    featurize([cf], [FeatureRequest("frame_score", "blockiness")], BackbonePool("cpu"), batch_size=1)
    got = cf.get("frame_score", "blockiness")
    want = Blockiness().compute("frame_score", [ClipInput(decoded)])[0]
    assert decoded.frames.shape[1:3] == (72, 88)  # read at its own size, the grid where the encoder put it
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    score = ImagingQuality(backbone="blockiness").score_clip(cf)
    assert np.isfinite(score.value) and len(score.curve) == 4


def test_niqe_world_zc_is_niqe_world_plus_weighted_zero_crossings():
    import cv2

    from vdeval.backbones.blockiness import ZC_WEIGHT, NiqeWorldZC, frame_features
    from vdeval.backbones.niqe import NiqeWorld
    from vdeval.world import WorldSpec, sample_clip

    clip = sample_clip(3, WorldSpec(height=128, width=128, frames=3)).video
    ringing = np.stack([cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 10])[1], cv2.IMREAD_COLOR)
                        for f in clip.frames])
    zc, nq = NiqeWorldZC(), NiqeWorld()
    for frames in (clip.frames, ringing):
        got = zc.compute("frame_score", [ClipInput(Video(frames))])[0]
        want = nq.compute("frame_score", [ClipInput(Video(frames))])[0]
        z = frame_features(frames)[:, 2]
        np.testing.assert_allclose(got["value"], want["value"].astype(np.float64) + ZC_WEIGHT * z, rtol=1e-6)
        assert got["clip"][0] == pytest.approx(float(want["clip"][0]) + ZC_WEIGHT * z.mean(), rel=1e-6)
    # JPEG's ringing on the flat world: Z rises, and the combined score with it
    z_clean, z_jpeg = frame_features(clip.frames)[:, 2].mean(), frame_features(ringing)[:, 2].mean()
    assert z_jpeg > z_clean
    scores = [zc.compute("frame_score", [ClipInput(Video(f))])[0]["clip"][0] for f in (clip.frames, ringing)]
    assert scores[1] > scores[0]
    assert zc.domain == "world" and zc.identity_hash() != nq.identity_hash() and ImagingQuality(backbone="niqe_world_zc").higher_is_better is False
