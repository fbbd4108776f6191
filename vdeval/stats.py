"""Statistics shared by metrics, runs and reports: bootstrap intervals, the Fréchet distance
between feature Gaussians (FVD), kernel MMD (KVD) and the running feature statistics behind them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BOOTSTRAP_SEED = 0  # fixed so reports are deterministic


def bootstrap_mean_ci(values, n_boot: int = 2000, level: float = 0.95, seed: int = BOOTSTRAP_SEED):
    """Percentile bootstrap interval of the mean of finite `values`; None when fewer than 2."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    means = v[idx].mean(axis=1)
    a = (1 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def weighted_mean_ci(values, weights, n_boot: int = 2000, level: float = 0.95, seed: int = BOOTSTRAP_SEED):
    """(sum w v / sum w, percentile bootstrap interval over resampled (v, w) pairs or None) over the
    finite values with positive finite weights; (NaN, None) when there are none."""
    v = np.asarray(values, np.float64)
    w = np.asarray(weights, np.float64)
    ok = np.isfinite(v) & np.isfinite(w) & (w > 0)
    v, w = v[ok], w[ok]
    if v.size == 0:
        return float("nan"), None
    mean = float((w * v).sum() / w.sum())
    if v.size < 2:
        return mean, None
    idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
    means = (w[idx] * v[idx]).sum(1) / w[idx].sum(1)
    a = (1 - level) / 2
    return mean, (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


# ---- feature checks -----------------------------------------------------------------------------

def check_features(x, name: str = "features", min_rows: int = 2) -> np.ndarray:
    """(N, D) finite float64 array with N >= min_rows, or FeatureError saying what is wrong."""
    from vdeval.errors import FeatureError

    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise FeatureError(f"{name}: expected a (clips, dims) array, got shape {a.shape}")
    if a.shape[0] < min_rows:
        raise FeatureError(f"{name}: {a.shape[0]} clip(s); at least {min_rows} are needed for a covariance")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise FeatureError(f"{name}: {int(bad.sum())} clip(s) have NaN or infinite features (first at row {int(np.argmax(bad))})",
                           "a backbone produced invalid values; check those clips")
    return a


def _check_pair(a, b):
    from vdeval.errors import FeatureError

    if a.shape[1] != b.shape[1]:
        raise FeatureError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}",
                           "both sets must come from the same backbone and protocol")


# ---- Fréchet distance ---------------------------------------------------------------------------

def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, sqrt1: np.ndarray | None = None) -> float:
    """tr(sqrt(sigma1 @ sigma2)) for PSD matrices, through eigenvalues: sigma1 @ sigma2 is similar
    to A sigma2 A with A = sqrt(sigma1) (or L^T sigma2 L with sigma1 = L L^T), which is symmetric
    PSD, so its eigenvalues are real and their square roots sum to the trace. A Cholesky (or an
    eigh when sigma1 is singular) and one eigvalsh, no sqrtm iteration; rank-deficient inputs are
    fine. `sqrt1` reuses a precomputed sqrt(sigma1)."""
    m = None
    if sqrt1 is not None:
        m = sqrt1 @ sigma2 @ sqrt1
    else:
        # full rank: sigma1 = L L^T and L^T sigma2 L has the same eigenvalues, one eigh fewer.
        # sigma1 sigma2 and sigma2 sigma1 share eigenvalues too, so when the generated set is
        # rank-deficient (few clips) the full-rank real covariance takes the Cholesky instead.
        for a, b in ((sigma1, sigma2), (sigma2, sigma1)):
            try:
                low = np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                continue
            m = low.T @ b @ low
            break
        if m is None:  # both singular: symmetric square root
            a = _psd_sqrt(sigma1)
            m = a @ sigma2 @ a
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2)), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2))
    return max(d, 0.0)  # round-off can leave -1e-12 for identical inputs


def frechet_distance_features(x: np.ndarray, y: np.ndarray, ddof: int = 1) -> float:
    """The Fréchet distance between the Gaussians of two (N, D) feature sets, in float64.

    Same value as frechet_distance on their means and covariances, but when a set has fewer
    clips than dimensions the trace term comes from an N x N eigenproblem: with that set's
    covariance S = A^T A / (N - ddof) (A its centred features), S T has the nonzero eigenvalues
    of A T A^T / (N - ddof). Bootstrap intervals over small generated sets need this speed."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    ax, ay = x - x.mean(0), y - y.mean(0)
    sx = ax.T @ ax / (len(x) - ddof)
    sy = ay.T @ ay / (len(y) - ddof)
    d = x.shape[1]
    if min(len(x), len(y)) < d:
        a, other, n = (ax, sy, len(x)) if len(x) <= len(y) else (ay, sx, len(y))
        m = a @ other @ a.T / (n - ddof)
        tr = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    else:
        tr = trace_sqrt_product(sx, sy)
    diff = x.mean(0) - y.mean(0)
    return max(float(diff @ diff + np.trace(sx) + np.trace(sy) - 2 * tr), 0.0)


def frechet_distance_scipy(mu1, sigma1, mu2, sigma2) -> float:
    """The usual reference path (pytorch-fid, StyleGAN-V): scipy.linalg.sqrtm of the product.
    Slow and kept only to check `frechet_distance` against it."""
    from scipy import linalg

    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    covmean = linalg.sqrtm(s1 @ s2)
    if isinstance(covmean, tuple):
        covmean = covmean[0]
    diff = mu1 - mu2
    return float(np.real(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)))


@dataclass
class FeatureStats:
    """Running float64 sums of features (sum, sum of outer products, count) and the identity of
    what they were computed from. Sums, not raw features: they merge across shards and processes,
    and a reference set's statistics can be cached and reused.

    identity: {"protocol", "backbone", "backbone_hash", "dataset"}; n is kept separately.
    """

    dim: int
    n: int = 0
    sum: np.ndarray | None = None
    sum_outer: np.ndarray | None = None
    identity: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.sum is None:
            self.sum = np.zeros(self.dim, np.float64)
        if self.sum_outer is None:
            self.sum_outer = np.zeros((self.dim, self.dim), np.float64)

    @classmethod
    def from_features(cls, x, identity: dict | None = None, name: str = "features") -> "FeatureStats":
        a = check_features(x, name)
        return cls(a.shape[1], a.shape[0], a.sum(0), a.T @ a, dict(identity or {}))

    def update(self, x) -> "FeatureStats":
        from vdeval.errors import FeatureError

        a = check_features(x, "features", min_rows=1)
        if a.shape[1] != self.dim:
            raise FeatureError(f"feature size {a.shape[1]} does not match these statistics' {self.dim}")
        self.n += a.shape[0]
        self.sum += a.sum(0)
        self.sum_outer += a.T @ a
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        check_same_protocol(self, other)
        return FeatureStats(self.dim, self.n + other.n, self.sum + other.sum, self.sum_outer + other.sum_outer, dict(self.identity))

    def mean(self) -> np.ndarray:
        return self.sum / self.n

    def cov(self, ddof: int = 1) -> np.ndarray:
        """ddof=1: unbiased (numpy, pytorch-fid); ddof=0: population (StyleGAN-V's FVD)."""
        from vdeval.errors import FeatureError

        if self.n - ddof <= 0:
            raise FeatureError(f"{self.n} clip(s): at least 2 are needed for a covariance")
        mu = self.mean()
        return (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - ddof)

    def key(self) -> str:
        """Cache key: data set, protocol, backbone hash and sample count."""
        import hashlib
        import json

        ident = {k: self.identity.get(k) for k in ("dataset", "protocol", "backbone", "backbone_hash")}
        return hashlib.sha256(json.dumps({**ident, "n": self.n, "dim": self.dim}, sort_keys=True).encode()).hexdigest()

    def save(self, path) -> None:
        import json

        from safetensors.numpy import save

        from vdeval.store import atomic_write_bytes

        meta = {"identity": json.dumps(self.identity, sort_keys=True), "n": str(self.n), "dim": str(self.dim)}
        atomic_write_bytes(path, save({"sum": self.sum, "sum_outer": self.sum_outer}, metadata=meta))

    @classmethod
    def load(cls, path) -> "FeatureStats":
        import json

        from safetensors import safe_open

        from vdeval.errors import FeatureError

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata()
                s, so = f.get_tensor("sum"), f.get_tensor("sum_outer")
            return cls(int(meta["dim"]), int(meta["n"]), s.astype(np.float64), so.astype(np.float64), json.loads(meta["identity"]))
        except Exception as e:
            raise FeatureError(f"cannot read feature statistics {path}: {e}", "delete the file to recompute it") from None


def check_same_protocol(a: FeatureStats, b: FeatureStats) -> None:
    """Two statistics may be compared only when made by the same backbone and protocol."""
    from vdeval.errors import FeatureError

    if a.dim != b.dim:
        raise FeatureError(f"feature sizes differ: {a.dim} vs {b.dim}", "both sets must come from the same backbone and protocol")
    for k in ("protocol", "backbone", "backbone_hash"):
        va, vb = a.identity.get(k), b.identity.get(k)
        if va is not None and vb is not None and va != vb:
            raise FeatureError(f"cannot compare feature statistics of different {k}: {va!r} vs {vb!r}",
                               "compute the real set's statistics with the same backbone and protocol")


def check_comparable(a: dict, b: dict) -> None:
    """Two distance values (FVD, KVD) are comparable only at the same protocol, backbone and sample
    counts: the estimators are biased by n. `a`, `b`: the `extras` of SetScores or similar dicts
    with protocol, backbone, n, n_real."""
    from vdeval.errors import FeatureError

    for k in ("protocol", "backbone", "backbone_hash", "n", "n_real"):
        if a.get(k) != b.get(k):
            raise FeatureError(f"these scores are not comparable: {k} differs ({a.get(k)!r} vs {b.get(k)!r})",
                               "recompute both with the same protocol, backbone and sample counts")


class StatsCache:
    """Reference-set statistics on disk, keyed by data set, protocol, backbone hash and sample count."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, stats_or_key) -> Path:
        key = stats_or_key if isinstance(stats_or_key, str) else stats_or_key.key()
        return self.root / f"{key}.safetensors"

    def key_for(self, dataset: str, protocol: str, backbone: str, backbone_hash: str | None, n: int, dim: int) -> str:
        probe = FeatureStats(dim, n, np.zeros(1), np.zeros((1, 1)),
                             {"dataset": dataset, "protocol": protocol, "backbone": backbone, "backbone_hash": backbone_hash})
        return probe.key()

    def get(self, key: str) -> FeatureStats | None:
        p = self.path(key)
        return FeatureStats.load(p) if p.is_file() else None

    def put(self, stats: FeatureStats) -> None:
        stats.save(self.path(stats))


# ---- kernel MMD ---------------------------------------------------------------------------------

def polynomial_kernel(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (gamma * (x @ y.T) + coef0) ** degree


def mmd2_unbiased(x, y, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """Unbiased MMD^2 (diagonals excluded) with the polynomial kernel, as in KID."""
    m, n = x.shape[0], y.shape[0]
    kxx = polynomial_kernel(x, x, degree, gamma, coef0)
    kyy = polynomial_kernel(y, y, degree, gamma, coef0)
    kxy = polynomial_kernel(x, y, degree, gamma, coef0)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kernel_distance(x, y, subset_size: int = 1000, n_subsets: int = 100, seed: int = 0,
                    degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> np.ndarray:
    """MMD^2 on `n_subsets` random subsets of min(subset_size, N) clips from each set (without
    replacement inside a subset), as KID does; returns the per-subset values."""
    rng = np.random.default_rng(seed)
    k = min(subset_size, x.shape[0], y.shape[0])
    out = np.empty(n_subsets)
    for i in range(n_subsets):
        xs = x[rng.choice(x.shape[0], k, replace=False)]
        ys = y[rng.choice(y.shape[0], k, replace=False)]
        out[i] = mmd2_unbiased(xs, ys, degree, gamma, coef0)
    return out


def bootstrap_set_ci(fn, x, y, n_boot: int = 200, level: float = 0.95, seed: int = BOOTSTRAP_SEED,
                     point: float | None = None):
    """Percentile interval of fn(x*, y*) over clip resamples (with replacement) of both sets;
    None when n_boot is 0.

    With `point` (the value on the full sets) the interval is shifted by point - mean(resamples).
    Resampling repeats clips, which shrinks the effective sample size; for a distance biased
    upwards at small n (FVD) the raw percentile interval then sits above, often entirely above,
    the point value. The shift removes that bootstrap bias estimate and keeps the spread."""
    if n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot)
    for i in range(n_boot):
        vals[i] = fn(x[rng.integers(0, len(x), len(x))], y[rng.integers(0, len(y), len(y))])
    a = (1 - level) / 2
    shift = 0.0 if point is None else point - float(vals.mean())
    return float(np.quantile(vals, a)) + shift, float(np.quantile(vals, 1 - a)) + shift
