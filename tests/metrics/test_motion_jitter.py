import numpy as np

from vdeval.run.featurize import BackbonePool, featurize
from vdeval.features import ClipFeatures
from vdeval.metrics.motion_jitter import MotionJitter, jitter_curve
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import corrupt


def test_exact_on_ground_truth_flow():
    # a steady pan: constant global motion, zero jitter
    clip = sample_clip(4, WorldSpec(pan_probability=1.0, max_objects=1))
    assert np.allclose(jitter_curve(clip.flow), 0.0)
    # known per-frame shifts: global motion is their difference, jitter its change
    T, H, W = 6, 16, 16
    shifts = np.array([[0, 0], [2, 0], [2, 1], [0, 1], [0, 0], [3, 0]], float)
    flow = np.zeros((T - 1, H, W, 2))
    flow[:] = np.diff(shifts, axis=0)[:, None, None, :]
    expected = np.linalg.norm(np.diff(np.diff(shifts, axis=0), axis=0), axis=1)
    np.testing.assert_allclose(jitter_curve(flow), expected)


def test_short_clip_is_nan_with_note():
    clip = ClipFeatures("a", sample_clip(0, WorldSpec(frames=2)).video,
                        features={("flow", "dis"): {"forward": np.zeros((1, 32, 32, 2), np.float32)}})
    s = MotionJitter().score_clip(clip)
    assert np.isnan(s.value) and "3 frames" in s.note


def test_catches_camera_shake_with_dis():
    spec = WorldSpec(max_objects=1, backgrounds=("striped", "checkered", "dotted"))
    clean, shaken = [], []
    for seed in range(12):
        c = sample_clip(seed, spec)
        clean.append(ClipFeatures(f"c{seed}", c.video))
        shaken.append(ClipFeatures(f"s{seed}", corrupt(c, "camera_shake", 0.5, seed)))
    metric = MotionJitter()
    featurize(clean + shaken, metric.requests(), BackbonePool())
    a = np.array([metric.score_clip(c).value for c in clean])
    b = np.array([metric.score_clip(c).value for c in shaken])
    auroc = (b[:, None] > a[None, :]).mean() + 0.5 * (b[:, None] == a[None, :]).mean()
    assert auroc >= 0.9, (a, b)
