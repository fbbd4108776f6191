import numpy as np
import pytest

from vdeval import stats
from vdeval.errors import FeatureError


def _rand_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def test_frechet_matches_scipy_reference():
    rng = np.random.default_rng(0)
    for d in (8, 64, 200):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _rand_spd(rng, d), _rand_spd(rng, d, 2.0)
        ours = stats.frechet_distance(mu1, s1, mu2, s2)
        ref = stats.frechet_distance_scipy(mu1, s1, mu2, s2)
        assert ours == pytest.approx(ref, rel=1e-6)


def test_frechet_closed_form_diagonal_and_commuting():
    rng = np.random.default_rng(1)
    d = 16
    a, b = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expect = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert stats.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, rel=1e-10)
    # same eigenvectors (commuting covariances): the closed form holds in any basis
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    assert stats.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expect, rel=1e-9)
    # one-dimensional Gaussians: (m1 - m2)^2 + (sd1 - sd2)^2
    assert stats.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_of_identical_is_zero_and_rank_deficient_is_finite():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 40))  # 10 clips, 40 dims: singular covariance
    s = stats.FeatureStats.from_features(x)
    assert np.linalg.matrix_rank(s.cov()) < 40
    assert stats.frechet_distance(s.mean(), s.cov(), s.mean(), s.cov()) == pytest.approx(0.0, abs=1e-8)
    y = rng.normal(size=(12, 40)) + 0.5
    t = stats.FeatureStats.from_features(y)
    d = stats.frechet_distance(s.mean(), s.cov(), t.mean(), t.cov())
    assert np.isfinite(d) and d > 0
    # symmetric in its two arguments even when singular (the eigenvalue route handles it)
    assert stats.frechet_distance(t.mean(), t.cov(), s.mean(), s.cov()) == pytest.approx(d, rel=1e-8)


def test_feature_stats_sums_match_numpy_and_merge_in_chunks():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 6)) * [1, 2, 3, 4, 5, 6]
    s = stats.FeatureStats.from_features(x)
    np.testing.assert_allclose(s.mean(), x.mean(0))
    np.testing.assert_allclose(s.cov(), np.cov(x, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(s.cov(ddof=0), np.cov(x, rowvar=False, bias=True), rtol=1e-10)
    parts = stats.FeatureStats(6).update(x[:20]).update(x[20:])
    assert parts.n == 50 and parts.sum.dtype == np.float64
    np.testing.assert_allclose(parts.cov(), s.cov(), rtol=1e-12)
    merged = stats.FeatureStats.from_features(x[:30]).merge(stats.FeatureStats.from_features(x[30:]))
    np.testing.assert_allclose(merged.cov(), s.cov(), rtol=1e-12)


def test_feature_stats_save_load_and_cache(tmp_path):
    rng = np.random.default_rng(4)
    s = stats.FeatureStats.from_features(rng.normal(size=(9, 3)), {"protocol": "vdeval", "backbone": "embedded", "dataset": "w"})
    s.save(tmp_path / "s.safetensors")
    t = stats.FeatureStats.load(tmp_path / "s.safetensors")
    assert t.n == 9 and t.identity == s.identity and t.key() == s.key()
    np.testing.assert_array_equal(t.sum_outer, s.sum_outer)
    cache = stats.StatsCache(tmp_path / "cache")
    key = cache.key_for("w", "vdeval", "embedded", None, 9, 3)
    assert cache.get(key) is None
    cache.put(s)
    assert cache.get(key).n == 9
    # sample count is part of the key: 10 clips is another entry
    assert cache.key_for("w", "vdeval", "embedded", None, 10, 3) != key
    (tmp_path / "bad.safetensors").write_bytes(b"not a stats file")
    with pytest.raises(FeatureError, match="cannot read"):
        stats.FeatureStats.load(tmp_path / "bad.safetensors")


def test_protocol_and_comparability_checks():
    rng = np.random.default_rng(5)
    a = stats.FeatureStats.from_features(rng.normal(size=(5, 3)), {"protocol": "stylegan-v", "backbone": "i3d"})
    b = stats.FeatureStats.from_features(rng.normal(size=(5, 3)), {"protocol": "vdeval", "backbone": "i3d"})
    with pytest.raises(FeatureError, match="protocol"):
        stats.check_same_protocol(a, b)
    with pytest.raises(FeatureError, match="feature sizes"):
        stats.check_same_protocol(a, stats.FeatureStats.from_features(rng.normal(size=(5, 4))))
    ea = {"protocol": "vdeval", "backbone": "embedded", "n": 256, "n_real": 256}
    stats.check_comparable(ea, dict(ea))
    with pytest.raises(FeatureError, match="n differs"):
        stats.check_comparable(ea, {**ea, "n": 128})


@pytest.mark.parametrize("bad, match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN or infinite"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or infinite"),
    (np.ones((1, 4)), "at least 2"),
    (np.ones(4), "expected a"),
])
def test_check_features_rejects_bad_input(bad, match):
    with pytest.raises(FeatureError, match=match):
        stats.check_features(bad)


def test_bootstrap_helpers():
    assert stats.bootstrap_mean_ci([1.0]) is None
    lo, hi = stats.bootstrap_mean_ci(np.arange(100.0))
    assert lo < 49.5 < hi
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 3
    lo, hi = stats.bootstrap_set_ci(lambda a, b: float(np.linalg.norm(a.mean(0) - b.mean(0))), x, y, n_boot=100)
    assert lo < np.linalg.norm(x.mean(0) - y.mean(0)) < hi
    assert stats.bootstrap_set_ci(lambda a, b: 0.0, x, y, n_boot=0) is None
    # a statistic biased by repeated clips: the shifted interval is the raw one moved onto the point value
    count_unique = lambda a, b: float(len(np.unique(a, axis=0)))  # noqa: E731 - 40 on the full set, ~25 resampled
    raw = stats.bootstrap_set_ci(count_unique, x, y, n_boot=100)
    shifted = stats.bootstrap_set_ci(count_unique, x, y, n_boot=100, point=40.0)
    assert raw[1] < 40 and shifted[0] < 40 < shifted[1]
    assert shifted[1] - shifted[0] == pytest.approx(raw[1] - raw[0])


@pytest.mark.parametrize("n_x,n_y,ddof", [(12, 256, 1), (300, 40, 0), (200, 250, 1), (20, 30, 1)])
def test_frechet_from_features_matches_covariance_path(n_x, n_y, ddof):
    rng = np.random.default_rng(n_x)
    d = 64 if n_x < 100 else 32
    x = rng.normal(size=(n_x, d)) @ rng.normal(size=(d, d)) * 0.3
    y = rng.normal(0.2, 1.0, size=(n_y, d))
    ref = stats.frechet_distance(x.mean(0), np.cov(x, rowvar=False, ddof=ddof), y.mean(0), np.cov(y, rowvar=False, ddof=ddof))
    # 1e-7: when both covariances are singular, the d x d path's clipped square roots of
    # round-off eigenvalues (about 1e-14 each) cost it about 1e-8 relative; the N x N path has none
    assert stats.frechet_distance_features(x, y, ddof) == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize("n_x,n_y,d,ddof", [(60, 50, 8, 1), (40, 70, 16, 0), (12, 90, 32, 1), (30, 25, 48, 1)])
def test_fast_frechet_bootstrap_equals_the_resampling_formula(n_x, n_y, d, ddof):
    # the weighted-count path against resampled rows through explicit covariances and scipy's sqrtm:
    # the same draws, so the same interval; full-rank, one side and both sides rank-deficient
    rng = np.random.default_rng(n_x + d)
    x = rng.normal(size=(n_x, d)) @ rng.normal(size=(d, d)) * 0.3
    y = rng.normal(0.2, 1.0, size=(n_y, d))

    def old(a, b):
        return stats.frechet_distance_scipy(a.mean(0), np.cov(a, rowvar=False, ddof=ddof),
                                            b.mean(0), np.cov(b, rowvar=False, ddof=ddof))

    ref = stats.bootstrap_set_ci(old, x, y, n_boot=40, point=1.5)
    for workers in (1, 3):  # threads change nothing: each resample's draws are made in order first
        fast = stats.bootstrap_frechet_ci(x, y, ddof, n_boot=40, point=1.5, workers=workers)
        assert fast == pytest.approx(ref, abs=1e-6, rel=1e-7)
    assert stats.bootstrap_frechet_ci(x, y, ddof, n_boot=0) is None


@pytest.mark.parametrize("n", [50, 12])  # 12 rows drawn from 12 < 20 dims: the factor too
def test_resample_moments_are_the_resampled_moments(n):
    rng = np.random.default_rng(3)
    a = rng.normal(size=(n, 20))
    a -= a.mean(0)
    idx = rng.integers(0, n, n)
    mu, cov, trace, factor = stats._resample_moments(a, np.einsum("ij,ij->i", a, a), idx, 1)
    np.testing.assert_allclose(mu, a[idx].mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(a[idx], rowvar=False), atol=1e-12)
    assert trace == pytest.approx(np.trace(cov), rel=1e-12)
    if n < 20:
        assert len(factor) == len(np.unique(idx)) and np.allclose(factor.T @ factor, cov, atol=1e-12)
    else:
        assert factor is None
