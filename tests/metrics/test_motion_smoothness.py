import numpy as np
import pytest

from vdeval.audit import auroc
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.motion_smoothness import MotionSmoothness, midpoint, reconstruction_errors, vbench_score
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import stutter


def exact_even_flow(c, src=None):
    """The world's exact flow between consecutive even frames (src[t]: the original frame shown at t)."""
    ev = (list(range(c.video.num_frames)) if src is None else src)[::2]
    return c.flow_between(list(zip(ev[:-1], ev[1:])))


def _simple(c):
    """Clips whose every midpoint pixel is seen in an even neighbour: objects inside the frame and
    apart, no diagonal pan (a corner entered diagonally is in neither even frame)."""
    m = c.masks
    inside = not (m[:, :, 0].any() or m[:, :, -1].any() or m[:, :, :, 0].any() or m[:, :, :, -1].any())
    apart = m.shape[1] == 1 or not (m[:, 0] & m[:, 1]).any()
    return inside and apart and not (c.scene.pan and "-" in c.scene.pan)


def test_exact_on_constant_velocity_world_motion():
    n = 0
    for seed in range(60):
        c = sample_clip(seed, WorldSpec(pan_probability=0.4, frames=9))
        if not _simple(c):
            continue
        n += 1
        d = reconstruction_errors(c.video.frames, *exact_even_flow(c))
        assert d.shape == (4,) and np.all(d == 0.0), (seed, c.caption, d)
    assert n >= 15


def _vbench_reference(frames, interpolate):
    """VBench's motion_smoothness pipeline, written from its released code's structure: keep frames
    [0::2], interpolate each consecutive pair, interleave originals and interpolations, then compare
    frames[1::2] with outputs[1::2] by mean cv2.absdiff and report (255 - mean) / 255."""
    evens = list(frames[0::2])
    outputs = []
    for i in range(len(evens) - 1):
        outputs += [evens[i], interpolate(i, evens[i], evens[i + 1])]
    outputs.append(evens[-1])
    ori, interp = frames[1::2], outputs[1::2]
    scores = [np.mean(np.abs(ori[i].astype(np.int16) - interp[i].astype(np.int16))) for i in range(len(interp))]
    return (255.0 - np.mean(scores)) / 255.0


@pytest.mark.parametrize("frames", [7, 8])
def test_parity_with_vbench_formula(frames):
    c = sample_clip(5, WorldSpec(frames=frames))
    fw, bw = exact_even_flow(c)
    rng = np.random.default_rng(0)
    fw, bw = fw + rng.normal(0, 1.0, fw.shape), bw + rng.normal(0, 1.0, bw.shape)  # imperfect flow: nonzero errors

    def interp(i, a, b):
        return np.clip(np.round(midpoint(a, b, fw[i], bw[i])), 0, 255).astype(np.uint8)

    ours = vbench_score(reconstruction_errors(c.video.frames, fw, bw))
    assert ours < 1.0
    assert ours == pytest.approx(_vbench_reference(c.video.frames, interp), abs=1e-12)


def test_known_answer_with_zero_flow():
    f = np.full((5, 6, 6, 3), 100, np.uint8)
    f[0], f[2], f[4] = 255, 0, 255  # zero flow: the midpoint is the blend 127.5, rounded to 128
    z = np.zeros((2, 6, 6, 2))
    d = reconstruction_errors(f, z, z)
    assert np.all(d == 28.0) and vbench_score(d) == pytest.approx(227 / 255)


def test_stutter_lowers_the_score_with_exact_flow():
    clean, bad = [], []
    for seed in range(16):
        c = sample_clip(seed, WorldSpec())
        clean.append(vbench_score(reconstruction_errors(c.video.frames, *exact_even_flow(c))))
        T = c.video.num_frames
        v = stutter(c, 0.5, seed)
        # which original frame each stuttered frame shows, read back by matching frames
        src = [next(s for s in range(T) if np.array_equal(v.frames[t], c.video.frames[s])) for t in range(T)]
        bad.append(vbench_score(reconstruction_errors(v.frames, *exact_even_flow(c, src))))
    assert auroc(clean, bad, higher_is_better=True) >= 0.9


def _score(video, m=None):
    m = m or MotionSmoothness(backbone="dis")
    cf = ClipFeatures("c", video)
    featurize([cf], m.requests(), BackbonePool())
    return m.score_clip(cf)


def test_metric_on_dis_edge_cases_and_batch_invariance():
    c = sample_clip(2, WorldSpec(frames=7))
    s = _score(c.video)
    assert 0.9 < s.value <= 1.0 and len(s.curve) == 3
    still = _score(Video(np.repeat(c.video.frames[:1], 5, axis=0)))
    assert still.value == 1.0
    for n, word in ((1, "one-frame"), (2, "two-frame")):
        r = MotionSmoothness().score_clip(ClipFeatures("c", Video(c.video.frames[:n])))
        assert np.isnan(r.value) and word in r.note
    m = MotionSmoothness(backbone="dis")
    clips = [ClipFeatures(str(i), sample_clip(i, WorldSpec(frames=5)).video) for i in range(3)]
    featurize(clips, m.requests(), BackbonePool())
    alone = ClipFeatures("x", clips[1].video)
    featurize([alone], m.requests(), BackbonePool())
    assert m.score_clip(clips[1]).value == m.score_clip(alone).value
    assert m.describe()["params"] == {"interpolator": "flow-splat-midpoint"}


def test_flow_even_is_the_flow_of_the_even_frames():
    from vdeval.backbones.dis import DISFlow
    from vdeval.features import ClipInput

    v = sample_clip(4, WorldSpec(frames=7)).video
    evens = ClipInput(Video(np.ascontiguousarray(v.frames[::2])))
    for b in (DISFlow(),):
        got, want = b.compute("flow_even", [ClipInput(v)])[0], b.compute("flow", [evens])[0]
        assert got["forward"].shape == (3, 32, 32, 2)
        assert all(np.array_equal(got[k], want[k]) for k in ("forward", "backward"))


@pytest.mark.slow  # RAFT on the CPU: about 20 s
def test_raft_flow_even_is_the_flow_of_the_even_frames(tmp_path, monkeypatch):
    import torch
    from torchvision.models.optical_flow import raft_small

    from vdeval.backbones import weights
    from vdeval.backbones.raft import RaftFlow
    from vdeval.features import ClipInput

    v = sample_clip(4, WorldSpec(frames=5)).video
    evens = ClipInput(Video(np.ascontiguousarray(v.frames[::2])))
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    torch.manual_seed(0)
    f = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), f)  # stand-in weights in the released format
    weights.install("raft-small-C_T_V2", f, custom=True)
    r = RaftFlow(model="small", iters=2)
    got, want = r.compute("flow_even", [ClipInput(v)])[0], r.compute("flow", [evens])[0]
    assert got["forward"].shape == (2, 32, 32, 2)
    for k in ("forward", "backward"):
        np.testing.assert_allclose(got[k], want[k], atol=1e-5)


def test_world_interpolator_32_is_the_network_on_frames_shrunk_to_its_training_size():
    import cv2

    from vdeval.features import ClipFeatures
    from vdeval.metrics.motion_smoothness import MotionSmoothness
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.video import Video
    from vdeval.world import WorldSpec, sample_clip

    big = sample_clip(3, WorldSpec(height=96, width=128, frames=7)).video
    small = Video(np.stack([cv2.resize(f, (43, 32), interpolation=cv2.INTER_AREA) for f in big.frames]), big.fps)
    pool = BackbonePool()
    scaled, full = MotionSmoothness(backbone="world_interpolator_32"), MotionSmoothness(backbone="world_interpolator")
    a, b = ClipFeatures("a", big), ClipFeatures("b", small)
    featurize([a], scaled.requests(), pool)
    featurize([b], full.requests(), pool)
    assert a.frames_for("world_interpolator_32").shape[1:3] == (32, 43)
    sa, sb = scaled.score_clip(a), full.score_clip(b)
    assert sa.value == pytest.approx(sb.value, abs=1e-3)  # the decoder's area resize vs OpenCV's
    tiny = ClipFeatures("t", sample_clip(4, WorldSpec(height=32, width=32, frames=5)).video)
    featurize([tiny], scaled.requests() + full.requests(), pool)
    assert scaled.score_clip(tiny).value == full.score_clip(tiny).value
