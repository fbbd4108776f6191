"""FrechetVideoDistance and KernelVideoDistance as torchmetrics users drive them: video tensors in,
forward, dtype moves, and two gloo ranks (any of which may see no clips of a set) equal one process."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from vdeval.errors import FeatureError, VideoReadError
from vdeval.metrics.fvd import fvd_from_features
from vdeval.metrics.kvd import kvd_from_features
from vdeval.training.metrics import FrechetVideoDistance, KernelVideoDistance

pytestmark = pytest.mark.filterwarnings("ignore:The ``compute`` method")


def _features(seed=0, n=(24, 20), d=6):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n[0], d)), rng.normal(size=(n[1], d)) + 0.5


def test_forward_accumulates_and_keeps_state():
    x, y = _features()
    for m in (FrechetVideoDistance(6), KernelVideoDistance(subset_size=10, n_subsets=5)):
        assert m(torch.tensor(x[:10]), real=False) is None
        assert m(torch.tensor(x[10:]), real=False) is None
        m(torch.tensor(y), real=True)
        got = m.compute()
        want = fvd_from_features(x, y) if isinstance(m, FrechetVideoDistance) else kvd_from_features(x, y, 10, 5).mean()
        assert float(got if isinstance(got, torch.Tensor) else got[0]) == pytest.approx(want, rel=1e-12)


def test_kvd_does_not_depend_on_feature_order():
    x, y = _features(1, (40, 30))
    rng = np.random.default_rng(5)
    a = kvd_from_features(x, y, 15, 10)
    b = kvd_from_features(x[rng.permutation(40)], y[rng.permutation(30)], 15, 10)
    np.testing.assert_array_equal(a, b)
    m1, m2 = KernelVideoDistance(15, 10), KernelVideoDistance(15, 10)
    m1.update(x[:25], real=False), m1.update(y, real=True)
    m2.update(x[25:], real=False)
    import copy

    ab, ba = copy.deepcopy(m1), copy.deepcopy(m2)
    ab.merge_state(m2)
    ba.merge_state(m1)
    assert float(ab.compute()[0]) == float(ba.compute()[0]) == pytest.approx(a.mean(), rel=1e-12)


def test_dtype_moves_keep_float64_sums():
    x, y = _features(2)
    big = 1e3 * x  # squares overflow float16 (max 65504)
    ref = fvd_from_features(big, y)
    for move in (lambda m: m.to(torch.float16), lambda m: m.half(), lambda m: m.set_dtype(torch.float16),
                 lambda m: m.float()):
        m = FrechetVideoDistance(6)
        m.update(big[:12], real=False)
        m = move(m) or m
        m.update(big[12:], real=False)
        m.update(y, real=True)
        assert m.fake_outer.dtype == torch.float64 and torch.isfinite(m.fake_outer).all()
        assert float(m.compute()) == pytest.approx(ref, rel=1e-12)
        k = KernelVideoDistance(10, 4)
        k.update(big, real=False)
        k = move(k) or k
        k.update(y, real=True)
        assert all(t.dtype == torch.float64 for t in k.fake_features)
        assert float(k.compute()[0]) == pytest.approx(kvd_from_features(big, y, 10, 4).mean(), rel=1e-12)


def _videos(n, seed):
    from vdeval.world import WorldSpec, sample_clip

    return [sample_clip(seed + i, WorldSpec()).video for i in range(n)]


def test_video_tensors_go_through_the_backbone_with_a_declared_range():
    from vdeval.training.metrics import embed_clips

    fake, real = _videos(4, 0), _videos(4, 100)
    m = FrechetVideoDistance(backbone="embedded")
    assert m.num_features == 128  # inferred from the backbone
    x, y = embed_clips(fake, m), embed_clips(real, m)
    as_tensor = lambda vs: torch.from_numpy(np.stack([v.frames for v in vs])).permute(0, 1, 4, 2, 3)  # noqa: E731
    m.update(as_tensor(fake), real=False)  # uint8 (B, T, C, H, W)
    m.update(as_tensor(real).float() / 255, real=True)  # float in [0, 1], the default declared range
    assert float(m.compute()) == pytest.approx(fvd_from_features(x, y), rel=1e-9)
    signed = FrechetVideoDistance(backbone="embedded", value_range=(-1, 1))
    with pytest.raises(VideoReadError, match="value_range"):
        FrechetVideoDistance(backbone="embedded").update(as_tensor(real).float() / 127.5 - 1, real=True)
    signed.update(as_tensor(fake).float() / 127.5 - 1, real=False)
    signed.update(as_tensor(real), real=True)
    assert float(signed.compute()) == pytest.approx(fvd_from_features(x, y), rel=1e-9)
    k = KernelVideoDistance(subset_size=4, n_subsets=3, backbone="embedded")
    k.update(as_tensor(fake), real=False)
    k.update(real, real=True)  # a list of Videos works too
    assert float(k.compute()[0]) == pytest.approx(kvd_from_features(x, y, 4, 3).mean(), rel=1e-9)
    # the backbone follows the metric's device
    assert str(m._backbone.device) == str(m.device)
    with pytest.raises(FeatureError, match="num_features or a backbone"):
        FrechetVideoDistance()
    with pytest.raises(FeatureError, match="no video embeddings"):
        FrechetVideoDistance(backbone="dis")
    k.reset()
    k.update(as_tensor(fake).numpy(), real=False)  # numpy (B, T, C, H, W) too
    assert len(k.fake_features) == 1 and k.fake_features[0].numel() == 4 * 128


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


RANKS = """
import sys
import numpy as np, torch, torch.distributed as dist
from vdeval.metrics.fvd import fvd_from_features
from vdeval.metrics.kvd import kvd_from_features
from vdeval.training.metrics import FrechetVideoDistance, KernelVideoDistance
dist.init_process_group("gloo")
rank = dist.get_rank()
rng = np.random.default_rng(0)
x, y = rng.normal(size=(30, 5)), rng.normal(size=(26, 5)) + 0.3
# rank 0: every generated clip and part of the real set; rank 1: the rest of the real set and
# no generated clip at all; then a split where rank 1 sees nothing of either set
splits = {{0: ([x], [y[:11]]), 1: ([], [y[11:]])}}, {{0: ([x], [y]), 1: ([], [])}}
for split in splits:
    fakes, reals = split[rank]
    f, k = FrechetVideoDistance(5), KernelVideoDistance(subset_size=12, n_subsets=6)
    for m in (f, k):
        for a in fakes:
            m.update(torch.tensor(a), real=False)
        for a in reals:
            m.update(torch.tensor(a), real=True)
    fv, kv = float(f.compute()), float(k.compute()[0])
    if rank == 0:
        print("FVD", fv, fvd_from_features(x, y), "KVD", kv, kvd_from_features(x, y, 12, 6).mean(), flush=True)
        assert abs(fv - fvd_from_features(x, y)) <= 1e-12 * abs(fv)
        assert kv == kvd_from_features(x, y, 12, 6).mean()
dist.destroy_process_group()
print("OK", rank, flush=True)
"""


def test_two_gloo_ranks_equal_one_process_even_with_empty_ranks(tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(textwrap.dedent(RANKS.format()))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    r = subprocess.run(cmd, cwd=os.getcwd(), env=_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert r.stdout.count("OK") == 2


def test_video_input_depends_on_the_batch_split_only_at_float32_rounding():
    """Ranks embed their own batches: with videos (not features) in, the float32 backbone's
    embeddings, so the values, move with the split by float32 rounding (README: ~1e-8 relative)."""
    fake, real = _videos(6, 0), _videos(6, 100)
    as_tensor = lambda vs: torch.from_numpy(np.stack([v.frames for v in vs])).permute(0, 1, 4, 2, 3)  # noqa: E731

    def value(cls, split, **kw):
        m = cls(backbone="embedded", **kw)
        for vids, is_real in ((fake, False), (real, True)):
            for part in split(vids):
                m.update(as_tensor(part), real=is_real)
        out = m.compute()
        return float(out[0] if isinstance(out, tuple) else out)

    one, two_ranks = (lambda v: [v]), (lambda v: [v[0::2], v[1::2]])  # clip i to rank i mod 2
    fvd = value(FrechetVideoDistance, one)
    assert value(FrechetVideoDistance, two_ranks) == pytest.approx(fvd, rel=1e-6, abs=0)
    kvd = value(KernelVideoDistance, one, subset_size=4, n_subsets=3)
    assert value(KernelVideoDistance, two_ranks, subset_size=4, n_subsets=3) == pytest.approx(kvd, rel=0, abs=1e-7)
