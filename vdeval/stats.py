"""Statistics shared by metrics, runs and reports: bootstrap intervals, the Fréchet distance
between feature Gaussians (FVD), kernel MMD (KVD) and the running feature statistics behind them."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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


def _sum_sqrt_eigvalsh(m: np.ndarray, uplo: Literal["L", "U"] = "L") -> float:
    """Sum of the square roots of a symmetric PSD matrix's eigenvalues (read from one triangle).
    Eigenvalues within round-off of zero (n * eps * the largest) count as 0: the square root
    would lift their noise from 1e-16 to 1e-8 of the scale, and with it make the distance depend
    on the order of the clips (a rank-deficient set: fewer clips than feature dimensions)."""
    ev = np.linalg.eigvalsh(m, UPLO=uplo)
    floor = len(ev) * np.finfo(np.float64).eps * max(float(np.abs(ev).max(initial=0.0)), 0.0)
    return float(np.sqrt(np.where(ev > floor, ev, 0.0)).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, sqrt1: np.ndarray | None = None) -> float:
    """tr(sqrt(sigma1 @ sigma2)) for PSD matrices, through eigenvalues: sigma1 @ sigma2 is similar
    to A sigma2 A with A = sqrt(sigma1) (or L^T sigma2 L with sigma1 = L L^T), which is symmetric
    PSD, so its eigenvalues are real and their square roots sum to the trace. A Cholesky (or an
    eigh when sigma1 is singular) and one eigvalsh, no sqrtm iteration; rank-deficient inputs are
    fine. `sqrt1` reuses a precomputed sqrt(sigma1)."""
    from scipy.linalg import lapack

    if sqrt1 is not None:
        m = sqrt1 @ sigma2 @ sqrt1
        return _sum_sqrt_eigvalsh((m + m.T) / 2)
    # full rank: sigma1 = L L^T and L^T sigma2 L has the same eigenvalues, one eigh fewer.
    # sigma1 sigma2 and sigma2 sigma1 share eigenvalues too, so when the generated set is
    # rank-deficient (few clips) the full-rank real covariance takes the Cholesky instead.
    # LAPACK's sygst forms L^T sigma2 L from the triangles, half the flops of two products.
    for a, b in ((sigma1, sigma2), (sigma2, sigma1)):
        low, info = lapack.dpotrf(np.asarray(a, np.float64), lower=1, clean=0)
        if info == 0:
            m, info = lapack.dsygst(np.asarray(b, np.float64), low, itype=2, lower=1)
            if info == 0:
                return _sum_sqrt_eigvalsh(m, "L")
    a = _psd_sqrt(sigma1)  # both singular: symmetric square root
    m = a @ sigma2 @ a
    return _sum_sqrt_eigvalsh((m + m.T) / 2)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrt(sigma1 sigma2)), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2))
    return max(d, 0.0)  # round-off can leave -1e-12 for identical inputs


def frechet_distance_features(x: np.ndarray, y: np.ndarray, ddof: int = 1) -> float:
    """The Fréchet distance between the Gaussians of two (N, D) feature sets, in float64: the same
    value as frechet_distance on their means and covariances (see frechet_distance_factors)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    mx, my = x.mean(0), y.mean(0)
    return frechet_distance_factors(mx, (x - mx) / np.sqrt(len(x) - ddof), my, (y - my) / np.sqrt(len(y) - ddof))


def frechet_distance_factors(mu1, b1: np.ndarray, mu2, b2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, b1^T b1) and N(mu2, b2^T b2), b1 and b2 (rows, D).

    When a factor has fewer rows than dimensions the trace term comes from a small eigenproblem:
    b1^T b1 b2^T b2 has the nonzero eigenvalues of C C^T with C = b1 b2^T (rows1 x rows2), put
    the smaller side first. Otherwise from the D x D covariances (trace_sqrt_product). Bootstrap
    intervals over small generated sets need this speed."""
    d = b1.shape[1]
    if min(len(b1), len(b2)) < d:
        small, big = (b1, b2) if len(b1) <= len(b2) else (b2, b1)
        c = small @ big.T
        tr = _sum_sqrt_eigvalsh(c @ c.T)
    else:
        tr = trace_sqrt_product(b1.T @ b1, b2.T @ b2)
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    traces = np.einsum("ij,ij->", b1, b1) + np.einsum("ij,ij->", b2, b2)
    return max(float(diff @ diff + traces - 2 * tr), 0.0)  # round-off can leave -1e-12 for identical sets


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
    def from_features(cls, x, identity: dict | None = None, name: str = "features") -> FeatureStats:
        a = check_features(x, name)
        return cls(a.shape[1], a.shape[0], a.sum(0), a.T @ a, dict(identity or {}))

    def update(self, x) -> FeatureStats:
        from vdeval.errors import FeatureError

        a = check_features(x, "features", min_rows=1)
        if a.shape[1] != self.dim:
            raise FeatureError(f"feature size {a.shape[1]} does not match these statistics' {self.dim}")
        self.n += a.shape[0]
        self.sum += a.sum(0)
        self.sum_outer += a.T @ a
        return self

    def _sums(self) -> tuple[np.ndarray, np.ndarray]:
        """(sum, sum_outer), which __post_init__ always sets."""
        assert self.sum is not None and self.sum_outer is not None
        return self.sum, self.sum_outer

    def merge(self, other: FeatureStats) -> FeatureStats:
        check_same_protocol(self, other)
        (s, so), (o, oo) = self._sums(), other._sums()
        return FeatureStats(self.dim, self.n + other.n, s + o, so + oo, dict(self.identity))

    def mean(self) -> np.ndarray:
        return self._sums()[0] / self.n

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
        s, so = self._sums()
        atomic_write_bytes(path, save({"sum": s, "sum_outer": so}, metadata=meta))

    @classmethod
    def load(cls, path) -> FeatureStats:
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
    return _shifted_percentiles(vals, level, point)


def _shifted_percentiles(vals: np.ndarray, level: float, point: float | None):
    a = (1 - level) / 2
    shift = 0.0 if point is None else point - float(vals.mean())
    return float(np.quantile(vals, a)) + shift, float(np.quantile(vals, 1 - a)) + shift


def _resample_moments(a: np.ndarray, sqnorms: np.ndarray, idx: np.ndarray, ddof: int):
    """(mean, covariance, its trace, factor) of the resample a[idx] of centred rows `a` (row
    squared norms `sqnorms`), without repeating rows: each drawn row once, weighted by its count.
    A resample of n clips draws about 63% of them, so the covariance's product is that much
    smaller. `factor` (B with B^T B = covariance) only when fewer rows than dims were drawn."""
    n = len(idx)
    counts = np.bincount(idx, minlength=len(a))
    drawn = np.flatnonzero(counts)
    w = counts[drawn].astype(np.float64)
    rows = a[drawn]
    mu = w @ rows / n
    trace = (w @ sqnorms[drawn] - n * (mu @ mu)) / (n - ddof)
    if len(drawn) < a.shape[1]:  # singular: the caller takes the small eigenproblem
        rows -= mu
        rows *= np.sqrt(w / (n - ddof))[:, None]
        return mu, rows.T @ rows, trace, rows
    rows *= np.sqrt(w)[:, None]
    cov = rows.T @ rows  # the 63% rows, weighted; the mean's rank-one term below
    cov -= n * np.outer(mu, mu)
    cov /= n - ddof
    return mu, cov, trace, None


def _resampled_distance(gap: np.ndarray, mx, my) -> float:
    """The Fréchet distance of two resamples' moments (see _resample_moments); `gap` is the
    difference of the full sets' means the rows were centred on."""
    (mu1, s1, t1, b1), (mu2, s2, t2, b2) = mx, my
    if b1 is not None or b2 is not None:
        b, other = (b1, s2) if b2 is None or (b1 is not None and len(b1) <= len(b2)) else (b2, s1)
        m = b @ other @ b.T
        tr = _sum_sqrt_eigvalsh((m + m.T) / 2)
    else:
        tr = trace_sqrt_product(s1, s2)
    diff = gap + mu1 - mu2
    return max(float(diff @ diff + t1 + t2 - 2 * tr), 0.0)


def bootstrap_frechet_ci(x, y, ddof: int = 1, n_boot: int = 200, level: float = 0.95,
                         seed: int = BOOTSTRAP_SEED, point: float | None = None, workers: int | None = None):
    """bootstrap_set_ci of frechet_distance_features(x*, y*, ddof): the same resamples (same random
    draws, in the same order) and the same interval to round-off, faster: each resample's
    covariance comes from its drawn clips weighted by their counts (~63% of the rows) around the
    full set's mean, the trace term from a Cholesky and LAPACK's sygst (trace_sqrt_product), and
    resamples run on `workers` threads (default: the CPUs this process may use, at most 8) with
    one BLAS thread each, which keeps every core busy where 400 x 400 LAPACK calls do not."""
    if n_boot <= 0:
        return None
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ax, ay = x - x.mean(0), y - y.mean(0)  # centred once: the rank-one mean terms stay small
    nx, ny = np.einsum("ij,ij->i", ax, ax), np.einsum("ij,ij->i", ay, ay)
    gap = x.mean(0) - y.mean(0)
    rng = np.random.default_rng(seed)
    draws = ((rng.integers(0, len(x), len(x)), rng.integers(0, len(y), len(y))) for _ in range(n_boot))

    def one(draw):
        return _resampled_distance(gap, _resample_moments(ax, nx, draw[0], ddof), _resample_moments(ay, ny, draw[1], ddof))

    vals = np.fromiter(_map_threads(one, draws, _workers(workers)), np.float64, n_boot)
    return _shifted_percentiles(vals, level, point)


def _workers(workers: int | None) -> int:
    if workers is not None:
        return max(1, int(workers))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 8)


def _map_threads(fn, items, workers: int):
    """fn over items in order, on `workers` threads with one BLAS thread each (numpy and LAPACK
    release the GIL); items are taken a chunk at a time so a long iterable is never all in memory."""
    if workers == 1:
        yield from map(fn, items)
        return
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    items = iter(items)
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        while chunk := list(itertools.islice(items, 4 * workers)):
            yield from pool.map(fn, chunk)
