import numpy as np
import pytest
import torch

from vdeval import stats
from vdeval.errors import FeatureError, SuiteError
from vdeval.features import ClipFeatures
from vdeval.metrics.fvd import FVD, fvd_from_features, fvd_from_stats
from vdeval.training.metrics import FrechetVideoDistance
from vdeval.video import Video

_VIDEO = Video(np.zeros((1, 8, 8, 3), np.uint8))


def _clips(x, backbone="embedded"):
    return [ClipFeatures(f"c{i}", _VIDEO, features={("video_embedding", backbone): {"value": np.asarray(v, np.float32)}})
            for i, v in enumerate(x)]


def test_fvd_metric_value_and_provenance():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(50, 8)) + 0.5
    m = FVD(n_bootstrap=50)
    assert m.requests()[0].kind == "video_embedding" and m.backbone == "embedded"
    assert m.protocol == "vdeval" and m.ddof == 1
    s = m.score_set(_clips(x), _clips(y))
    assert s.value == pytest.approx(fvd_from_features(x.astype(np.float32), y.astype(np.float32)), rel=1e-9)
    assert (s.n, s.n_real) == (60, 50)
    assert s.extras["protocol"] == "vdeval" and s.extras["backbone"] == "embedded" and s.extras["n"] == 60
    lo, hi = s.ci
    assert lo < s.value < hi  # the bias-shifted interval brackets the value; a raw percentile one need not
    assert FVD.higher_is_better is False and FVD.level == "set" and FVD.needs_real


def test_fvd_stylegan_protocol_uses_population_covariance():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4)) * 2
    m = FVD(backbone="i3d", n_bootstrap=0)
    assert m.protocol == "stylegan-v" and m.ddof == 0
    s = m.score_set(_clips(x, "i3d"), _clips(y, "i3d"))
    xs, ys = stats.FeatureStats.from_features(x.astype(np.float32)), stats.FeatureStats.from_features(y.astype(np.float32))
    pop = stats.frechet_distance(xs.mean(), xs.cov(0), ys.mean(), ys.cov(0))
    assert s.value == pytest.approx(pop, rel=1e-9)
    assert s.value != pytest.approx(stats.frechet_distance(xs.mean(), xs.cov(1), ys.mean(), ys.cov(1)), rel=1e-6)
    assert s.ci is None
    with pytest.raises(SuiteError, match="needs backbone 'i3d'"):
        FVD(backbone="embedded", protocol="stylegan-v")


def test_fvd_bad_inputs_each_raise_one_clear_error():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 4))
    bad = x.copy()
    bad[3, 0] = np.inf
    with pytest.raises(FeatureError, match="NaN or infinite"):
        FVD(n_bootstrap=0).score_set(_clips(bad), _clips(x))
    with pytest.raises(FeatureError, match="at least 2"):
        FVD(n_bootstrap=0).score_set(_clips(x[:1]), _clips(x))
    with pytest.raises(FeatureError, match="empty"):
        FVD(n_bootstrap=0).score_set([], _clips(x))
    with pytest.raises(FeatureError, match="feature sizes differ"):
        FVD(n_bootstrap=0).score_set(_clips(x), _clips(rng.normal(size=(6, 5))))
    with pytest.raises(FeatureError, match="was not computed"):
        FVD(n_bootstrap=0).score_set(_clips(x, "clip"), _clips(x))
    # a real set whose statistics come from another protocol
    fake = stats.FeatureStats.from_features(x, {"protocol": "vdeval", "backbone": "embedded"})
    real = stats.FeatureStats.from_features(x, {"protocol": "stylegan-v", "backbone": "i3d"})
    with pytest.raises(FeatureError, match="different protocol"):
        fvd_from_stats(fake, real, 1)
    with pytest.raises(FeatureError, match="different protocol"):
        FrechetVideoDistance(4, protocol="vdeval", backbone="embedded", reference=real)


def test_rank_deficient_sets_warn_and_note():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 32)), rng.normal(size=(10, 32))
    with pytest.warns(UserWarning, match="rank-deficient"):
        s = FVD(n_bootstrap=0).score_set(_clips(x), _clips(y))
    assert np.isfinite(s.value) and "rank-deficient" in s.extras["note"]


def test_real_statistics_cache(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6))
    m = FVD(n_bootstrap=0, stats_cache=str(tmp_path), real_name="world-v1")
    m.backbone_hash = "abc"  # what the runner sets; avoids loading the backbone here
    first = m.score_set(_clips(x), _clips(y))
    files = list(tmp_path.glob("*.safetensors"))
    assert len(files) == 1
    cached = stats.FeatureStats.load(files[0])
    assert cached.identity["dataset"] == "world-v1" and cached.n == 40 and cached.identity["backbone_hash"] == "abc"
    assert m.score_set(_clips(x), _clips(y)).value == pytest.approx(first.value, rel=1e-12)
    m.score_set(_clips(x), _clips(y[:30]))  # another sample count: another entry, never the 40-clip one
    assert len(list(tmp_path.glob("*.safetensors"))) == 2


def test_statistics_cache_needs_the_backbone_identity_from_its_caller(tmp_path):
    """The metric never builds a backbone to learn its hash: featurize is the one place backbones run."""
    rng = np.random.default_rng(4)
    m = FVD(n_bootstrap=0, stats_cache=str(tmp_path))
    with pytest.raises(FeatureError, match="identity hash"):
        m.score_set(_clips(rng.normal(size=(10, 3))), _clips(rng.normal(size=(10, 3))))


def test_fvd_values_at_different_sample_counts_are_not_comparable():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(60, 4))
    a = FVD(n_bootstrap=0).score_set(_clips(rng.normal(size=(60, 4))), _clips(y))
    b = FVD(n_bootstrap=0).score_set(_clips(rng.normal(size=(30, 4))), _clips(y))
    with pytest.raises(FeatureError, match="not comparable"):
        stats.check_comparable(a.extras, b.extras)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_torchmetrics_class_float64_sums_and_process_reduction():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(80, 5)), rng.normal(size=(70, 5)) + 0.3
    full = fvd_from_features(x, y)
    m = FrechetVideoDistance(5)
    for chunk in np.array_split(x, 3):
        m.update(torch.tensor(chunk, dtype=torch.float32), real=False)
    m.update(y, real=True)
    assert m.fake_sum.dtype == torch.float64 and m._reductions["fake_outer"] is not None
    assert float(m.compute()) == pytest.approx(fvd_from_features(x.astype(np.float32), y), rel=1e-9)
    # two "processes", each with half the clips; summing states (what dist_reduce_fx="sum" does)
    ranks = [FrechetVideoDistance(5), FrechetVideoDistance(5)]
    for r, xs, ys in zip(ranks, np.array_split(x, 2), np.array_split(y, 2)):
        r.update(xs, real=False)
        r.update(ys, real=True)
    merged = FrechetVideoDistance(5)
    for name in ("real_sum", "real_outer", "real_n", "fake_sum", "fake_outer", "fake_n"):
        setattr(merged, name, getattr(ranks[0], name) + getattr(ranks[1], name))
    assert float(merged.compute()) == pytest.approx(full, rel=1e-9)
    # precomputed real statistics instead of real updates
    ref = stats.FeatureStats.from_features(y, {"protocol": "vdeval"})
    r = FrechetVideoDistance(5, reference=ref)
    r.update(x, real=False)
    assert float(r.compute()) == pytest.approx(full, rel=1e-9)
    with pytest.raises(FeatureError, match="reference"):
        r.update(y, real=True)
    m.reset()
    assert float(m.fake_n) == 0
    with pytest.raises(FeatureError, match="at least 2"):
        m.compute()
    with pytest.raises(FeatureError, match="NaN"):
        m.update(np.full((2, 5), np.nan), real=False)
    with pytest.raises(FeatureError, match="made for 5"):
        m.update(np.ones((2, 6)), real=False)


# ---- on the world, with the embedded backbone ---------------------------------------------------

N_WORLD = 256


@pytest.fixture(scope="module")
def world():
    from vdeval.run.featurize import BackbonePool
    from vdeval.world import WorldSpec, sample_clip

    spec = WorldSpec(pan_probability=0.3)
    backbone = BackbonePool().get("embedded")
    real = [sample_clip(s, spec) for s in range(N_WORLD)]
    other = [sample_clip(10_000 + s, spec) for s in range(N_WORLD)]

    def embed(videos):
        from vdeval.features import ClipInput

        return np.stack([o["value"] for o in backbone.compute("video_embedding", [ClipInput(v) for v in videos])])

    return {"real": real, "other": other, "embed": embed, "real_x": embed([c.video for c in real])}


def _corrupt(name, clips, severity):
    from vdeval.world.corruptions import CORRUPTIONS

    return [CORRUPTIONS[name](c, severity, i) for i, c in enumerate(clips)]


def test_fvd_world_against_itself_is_small_relative_to_corrupted(world):
    y = world["real_x"]
    same = fvd_from_features(world["embed"]([c.video for c in world["other"]]), y)
    noisy = fvd_from_features(world["embed"](_corrupt("noise", world["other"], 1.0)), y)
    assert same < 0.25 * noisy


# shuffle stops at 0.5: it cyclically permutes round(severity * T) frames, so the number of
# temporal jumps peaks near 0.5 (3.5, 5.3, 4.8, 1.3 jumps per 8-frame clip at 0.25 / 0.5 / 0.75 / 1)
# and severity 1 is a single roll of the clip; FVD follows the jumps, not the severity number
@pytest.mark.parametrize("name, severities", [
    ("noise", (0.0, 0.3, 0.6, 1.0)), ("blur", (0.0, 0.3, 0.6, 1.0)), ("shuffle", (0.0, 0.25, 0.5)),
])
def test_fvd_world_rises_with_corruption_severity(world, name, severities):
    y = world["real_x"]
    values = [fvd_from_features(world["embed"](_corrupt(name, world["other"], s) if s else [c.video for c in world["other"]]), y)
              for s in severities]
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_fvd_and_kvd_through_the_feature_pass(world):
    """What a suite run does: featurize the requested features, then score the set."""
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.metrics.kvd import KVD

    fake = [ClipFeatures(f"f{i}", v) for i, v in enumerate(_corrupt("blur", world["other"][:40], 1.0))]
    real = [ClipFeatures(f"r{i}", c.video) for i, c in enumerate(world["real"][:40])]
    fvd, kvd = FVD(n_bootstrap=20), KVD(subset_size=30, n_subsets=10)
    pool = BackbonePool()
    featurize(fake + real, fvd.requests() + kvd.requests(), pool)
    with pytest.warns(UserWarning, match="rank-deficient"):  # 40 clips, 128 dims
        s = fvd.score_set(fake, real)
    assert s.value > 0 and s.n == 40 and s.extras["backbone"] == "embedded"
    assert kvd.score_set(fake, real).value > 0


def _stylegan_v_window(n_frames: int, rng, load_n_consecutive: int = 16, subsample_factor: int = 1) -> np.ndarray:
    """StyleGAN-V's VideoFramesFolderDataset.__getitem__ for a real video (load_n_consecutive_random_offset
    True, its default for the real set; generated sets pass False), written out here: an offset drawn
    uniformly from 0 .. n - 16 * sf + sf - 1 inclusive, then 16 frames sf apart."""
    offset = int(rng.integers(0, n_frames - load_n_consecutive * subsample_factor + subsample_factor - 1 + 1))
    return np.arange(0, load_n_consecutive * subsample_factor, subsample_factor) + offset


def test_stylegan_v_protocol_takes_a_random_window_of_each_real_video(tmp_path):
    """Real videos under StyleGAN-V's FVD protocol: 16 consecutive frames from a start drawn uniformly
    over every possible start of each video (as StyleGAN-V's dataset), seeded, one draw per file;
    generated clips keep their first 16 (StyleGAN-V: no offset for generated videos)."""
    from helpers import make_suite
    from vdeval.generators.folder import open_clip

    real = tmp_path / "real"
    real.mkdir()
    n = 24  # 9 possible starts
    for i in range(90):  # frame t carries t in its pixels
        np.save(real / f"v{i:03d}.npy", np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 4, 4, 3)))
    base = {"name": "s", "generators": [{"name": "g", "kind": "world"}], "real": {"kind": "folder", "path": str(real)}}
    suite = make_suite(tmp_path, {**base, "metrics": [{"name": "fvd"}]})  # folder real set: natural, i3d, stylegan-v
    ingest = suite.real_ingest()
    assert (ingest.window, ingest.frames) == ("random", 16)
    starts = []
    for p in sorted(real.iterdir()):
        got = open_clip(p, ingest).decode().frames[:, 0, 0, 0].astype(int)
        assert len(got) == 16 and np.all(np.diff(got) == 1)  # consecutive, as StyleGAN-V's arange + offset
        starts.append(got[0])
        assert np.array_equal(open_clip(p, ingest).decode().frames[:, 0, 0, 0], got)  # seeded: the same again
    theirs = [_stylegan_v_window(n, np.random.default_rng(i))[0] for i in range(2000)]
    assert set(starts) == set(theirs) == set(range(n - 16 + 1))  # the same support: every start, no other
    counts = np.bincount(starts, minlength=9)
    assert counts.min() >= 3 and counts.max() <= 20  # about uniform (90 files over 9 starts; expected 10 each)
    other = suite.real.ingest.model_copy(update={"seed": 1})
    assert [open_clip(p, suite.model_copy(update={"real": suite.real.model_copy(update={"ingest": other})}).real_ingest()
                      ).decode().frames[0, 0, 0, 0] for p in sorted(real.iterdir())] != starts  # another seed, other windows
    # the window named in the suite wins; other protocols keep the first frames
    explicit = make_suite(tmp_path, {**base, "real": {**base["real"], "ingest": {"window": "first"}}, "metrics": [{"name": "fvd"}]})
    assert explicit.real_ingest().window == "first"
    vdeval_fvd = make_suite(tmp_path, {**base, "metrics": [{"name": "fvd", "backbone": "embedded"}]})
    assert vdeval_fvd.real_ingest().window == "first" and vdeval_fvd.real_ingest().frames is None
    from vdeval.backbones.i3d import I3DBackbone
    gen = I3DBackbone.__new__(I3DBackbone)  # no detector needed for its input spec
    gen.frames = 16
    assert gen.input_spec("video_embedding").window == "first"  # generated clips: their first 16 frames
