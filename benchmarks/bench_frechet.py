"""Speed of the Fréchet distance: vdeval's eigenvalue route against the usual scipy.linalg.sqrtm
route, on FVD-sized inputs (2048 clips x 400 I3D features by default).

    python benchmarks/bench_frechet.py [--clips 2048] [--dims 400] [--repeats 5] [--threads 1]

Covariances come from random features with correlated dimensions (a mixing matrix), so they are
well conditioned but not diagonal. Timing is of the distance only (covariances computed once).
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=2048)
    ap.add_argument("--dims", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (set before numpy loads)")
    args = ap.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import time

    import numpy as np

    from vdeval import stats

    rng = np.random.default_rng(0)
    d, n = args.dims, args.clips
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    x = rng.normal(size=(n, d)) @ mix
    y = (rng.normal(size=(n, d)) * 1.1 + 0.05) @ (mix + 0.1 * rng.normal(size=(d, d)) / np.sqrt(d))
    a, b = stats.FeatureStats.from_features(x), stats.FeatureStats.from_features(y)
    m1, s1, m2, s2 = a.mean(), a.cov(), b.mean(), b.cov()

    def timeit(fn):
        fn(m1, s1, m2, s2)  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            v = fn(m1, s1, m2, s2)
            times.append(time.perf_counter() - t)
        return v, float(np.median(times))

    ours, t_ours = timeit(stats.frechet_distance)
    ref, t_ref = timeit(stats.frechet_distance_scipy)
    rows = [("vdeval (eigenvalues)", t_ours, ours), ("scipy.linalg.sqrtm", t_ref, ref)]
    print(f"Fréchet distance, {n} clips x {d} dims, median of {args.repeats}, {args.threads} BLAS thread(s)")
    print(f"{'method':24s} {'seconds':>10s} {'value':>16s}")
    for name, t, v in rows:
        print(f"{name:24s} {t:10.4f} {v:16.8f}")
    print(f"{'speed-up (scipy / ours)':24s} {t_ref / t_ours:10.1f}x")
    print(f"{'relative difference':24s} {abs(ours - ref) / abs(ref):10.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
