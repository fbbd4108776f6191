"""Statistics shared by metrics, runs and reports: bootstrap intervals (and, from the
distribution-metrics work, Fréchet distance and kernel MMD)."""
from __future__ import annotations

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
