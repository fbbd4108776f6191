import numpy as np
import pytest
import torch

from vdeval import stats
from vdeval.errors import FeatureError
from vdeval.features import ClipFeatures
from vdeval.metrics.kvd import KVD, kvd_from_features
from vdeval.training.metrics import KernelVideoDistance
from vdeval.video import Video

_VIDEO = Video(np.zeros((1, 8, 8, 3), np.uint8))


def _clips(x, backbone="embedded"):
    return [ClipFeatures(f"c{i}", _VIDEO, features={("video_embedding", backbone): {"value": v.astype(np.float32)}})
            for i, v in enumerate(x)]


def _mmd_double_loop(x, y, degree=3, coef0=1.0):
    d = x.shape[1]
    k = lambda a, b: (float(a @ b) / d + coef0) ** degree  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_unbiased_mmd_matches_double_loop():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)) + 0.4
    assert stats.mmd2_unbiased(x, y) == pytest.approx(_mmd_double_loop(x, y), rel=1e-10)
    # with subsets as large as the sets every subset is the whole set (a permutation of it)
    y7 = y[:7]
    vals = kvd_from_features(x, y7, subset_size=100, n_subsets=3)
    np.testing.assert_allclose(vals, _mmd_double_loop(x, y7), rtol=1e-10)


def test_kvd_near_zero_for_same_distribution_and_grows_with_shift():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    same = kvd_from_features(x, y, subset_size=200, n_subsets=20).mean()
    shifted = [kvd_from_features(x, y + s, subset_size=200, n_subsets=20).mean() for s in (0.2, 0.5, 1.0)]
    assert abs(same) < 0.1 * shifted[0]
    assert shifted[0] < shifted[1] < shifted[2]


def test_kvd_metric_scores_sets():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(30, 8)) + 1.0
    m = KVD(subset_size=20, n_subsets=10)
    assert m.requests()[0].kind == "video_embedding" and m.requests()[0].backbone == "embedded"
    s = m.score_set(_clips(x), _clips(y))
    expect = kvd_from_features(x.astype(np.float32), y.astype(np.float32), 20, 10).mean()
    assert s.value == pytest.approx(expect, rel=1e-6)
    assert s.n == 40 and s.n_real == 30 and s.ci[0] <= s.value <= s.ci[1]
    assert s.extras["subset_size"] == 20 and s.extras["std"] >= 0
    assert KVD.higher_is_better is False and KVD.level == "set" and KVD.needs_real


def test_kvd_bad_inputs():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 4))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(FeatureError, match="NaN"):
        KVD().score_set(_clips(bad), _clips(x))
    with pytest.raises(FeatureError, match="at least 2"):
        KVD().score_set(_clips(x[:1]), _clips(x))
    with pytest.raises(FeatureError, match="feature sizes differ"):
        KVD().score_set(_clips(x), _clips(rng.normal(size=(5, 6))))


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_kvd_torchmetrics_class_matches_pure_function():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 6)), rng.normal(size=(25, 6)) + 0.5
    m = KernelVideoDistance(subset_size=20, n_subsets=5)
    m.update(torch.tensor(x[:10]), real=False)
    m.update(x[10:], real=False)
    m.update(torch.tensor(y), real=True)
    mean, std = m.compute()
    vals = kvd_from_features(x, y, 20, 5)
    assert float(mean) == pytest.approx(vals.mean(), rel=1e-9)
    assert float(std) == pytest.approx(vals.std(), rel=1e-9)
    assert m._reductions["real_features"] is not None
    m.reset()
    with pytest.raises(FeatureError, match="no clips"):
        m.compute()
