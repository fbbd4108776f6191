"""Speed of the Fréchet distance: vdeval's eigenvalue route against the usual scipy.linalg.sqrtm
route, on FVD-sized inputs (2048 clips x 400 I3D features by default); then FVD's bootstrap
interval (`--boot` resamples of both sets) by vdeval.stats.bootstrap_frechet_ci against the
implementation it replaced (each resample's rows gathered, covariances, Cholesky, L^T S L,
eigvalsh; kept verbatim below), in the same process, with the largest interval difference.

    python benchmarks/bench_frechet.py [--clips 2048] [--dims 400] [--repeats 5] [--threads 1] [--boot 1000]

Covariances come from random features with correlated dimensions (a mixing matrix), so they are
well conditioned but not diagonal. The distance's timing is of the distance only (covariances
computed once); the bootstrap's is of the whole interval from the two feature sets.
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
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (0: skip the bootstrap)")
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
    if args.boot > 0:
        bench_bootstrap(x, y, args.boot)
    return 0


def _baseline_frechet_features(x, y, ddof=1):
    """The per-resample distance FVD's bootstrap used before bootstrap_frechet_ci (verbatim, for
    timing): covariances of the gathered rows, Cholesky, L^T S L, eigvalsh."""
    import numpy as np

    ax, ay = x - x.mean(0), y - y.mean(0)
    sx = ax.T @ ax / (len(x) - ddof)
    sy = ay.T @ ay / (len(y) - ddof)
    d = x.shape[1]
    if min(len(x), len(y)) < d:
        a, other, n = (ax, sy, len(x)) if len(x) <= len(y) else (ay, sx, len(y))
        m = a @ other @ a.T / (n - ddof)
    else:
        m = None
        for p, q in ((sx, sy), (sy, sx)):
            try:
                low = np.linalg.cholesky(p)
            except np.linalg.LinAlgError:
                continue
            m = low.T @ q @ low
            break
        if m is None:
            raise RuntimeError("both covariances singular: outside what this benchmark times")
    tr = float(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum())
    diff = x.mean(0) - y.mean(0)
    return max(float(diff @ diff + np.trace(sx) + np.trace(sy) - 2 * tr), 0.0)


def bench_bootstrap(x, y, n_boot):
    import time

    from vdeval import stats

    point = stats.frechet_distance_features(x, y, 1)

    def timed(fn):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - w, time.process_time() - c

    rows = [("before (rows, L^T S L)", *timed(lambda: stats.bootstrap_set_ci(_baseline_frechet_features, x, y, n_boot, point=point))),
            ("now, 1 thread", *timed(lambda: stats.bootstrap_frechet_ci(x, y, 1, n_boot, point=point, workers=1)))]
    workers = stats._workers(None)
    if workers > 1:
        rows.append((f"now, {workers} threads", *timed(lambda: stats.bootstrap_frechet_ci(x, y, 1, n_boot, point=point))))
    print(f"\nFVD bootstrap interval, {n_boot} resamples of {len(x)} + {len(y)} clips x {x.shape[1]} dims")
    print(f"{'method':24s} {'wall s':>8s} {'CPU s':>8s} {'interval':>34s} {'speed-up':>9s} {'max diff':>9s}")
    ref, t_ref = rows[0][1], rows[0][2]
    for name, ci, wall, cpu in rows:
        diff = max(abs(ci[0] - ref[0]), abs(ci[1] - ref[1]))
        print(f"{name:24s} {wall:8.2f} {cpu:8.2f} {ci[0]:16.8f} {ci[1]:16.8f} {t_ref / wall:8.2f}x {diff:9.1e}")


if __name__ == "__main__":
    sys.exit(main())
