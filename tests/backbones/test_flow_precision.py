"""DIS holds flow at float16 (vdeval/backbones/dis.py, FLOW_DTYPE): the flow metrics' numbers stay
within the stated tolerance of the float32 flow they were calibrated on, on natural footage and on
world clips."""
from pathlib import Path

import numpy as np
import pytest

from vdeval.backbones.dis import FLOW_DTYPE, DISFlow, dis_flow_video
from vdeval.features import ClipInput
from vdeval.metrics.frozen_motion import dynamic_rule, is_dynamic, motion_scores
from vdeval.metrics.motion_blur import motion_blur_score
from vdeval.metrics.motion_jitter import jitter_curve
from vdeval.metrics.warping_error import warping_errors
from vdeval.video import Video
from vdeval.video.source import FileSource
from vdeval.world import WorldSpec, sample_clip

CARPHONE = Path(__file__).resolve().parents[1] / "data" / "natural" / "carphone.mp4"


def _clips():
    yield "carphone", FileSource(CARPHONE).decode().frames[:24]
    for seed in range(4):
        yield f"world{seed}", sample_clip(seed, WorldSpec(frames=8)).video.frames


def test_dis_stores_what_float32_flow_rounds_to():
    frames = sample_clip(1, WorldSpec(frames=4)).video.frames
    got = DISFlow().compute("flow", [ClipInput(Video(frames))])[0]
    full = dis_flow_video(frames)
    assert got["forward"].dtype == FLOW_DTYPE == np.float16
    assert all(np.array_equal(got[k], full[k].astype(np.float16)) for k in ("forward", "backward"))


@pytest.mark.parametrize("name,frames", list(_clips()), ids=lambda v: v if isinstance(v, str) else "")
def test_flow_metrics_within_tolerance_of_float32_flow(name, frames):
    fl = dis_flow_video(frames)
    half = {k: v.astype(np.float16) for k, v in fl.items()}
    # warping error: 1e-3 relative, or 1e-8 absolute where the error is ~0 (clean world clips)
    e32, o32 = warping_errors(frames, fl["forward"], fl["backward"])
    e16, o16 = warping_errors(frames, half["forward"], half["backward"])
    assert abs(e16.mean() - e32.mean()) <= 1e-3 * e32.mean() + 1e-8
    assert np.abs(o16 - o32).max() <= 1e-3  # occluded fraction, per pair
    # frozen motion: per-pair scores within 1e-3 relative; the same frozen / dynamic call
    m32, m16 = motion_scores(fl["forward"]), motion_scores(half["forward"])
    assert np.allclose(m16, m32, rtol=1e-3, atol=1e-6)
    thr, count = dynamic_rule(frames.shape[1], frames.shape[2], frames.shape[0], 2.0)
    assert is_dynamic(m16, thr, count) == is_dynamic(m32, thr, count)
    # motion jitter (pixels) and motion blur (0-1: a pixel can cross min_speed): 1e-3 and 1e-4 absolute
    assert np.allclose(jitter_curve(half["forward"]), jitter_curve(fl["forward"]), atol=1e-3)
    b32, b16 = motion_blur_score(frames, fl["forward"])[0], motion_blur_score(frames, half["forward"])[0]
    assert (np.isnan(b32) and np.isnan(b16)) or abs(b16 - b32) <= 1e-4


def test_half_conversions_match_numpy_bit_for_bit():
    from vdeval.features import to_float16, widen_half

    rng = np.random.default_rng(0)
    a = (rng.normal(size=(40, 30, 2)) * 10.0 ** rng.integers(-9, 6, (40, 30, 2))).astype(np.float32)
    a.flat[:6] = [np.nan, np.inf, -np.inf, 65520, 65519, 1e-8]  # overflow, rounding, subnormal
    with np.errstate(over="ignore"):
        want = a.astype(np.float16)
    assert np.array_equal(to_float16(a).view(np.uint16), want.view(np.uint16))
    assert np.array_equal(widen_half(want), want.astype(np.float32), equal_nan=True)
    assert widen_half(want).dtype == np.float32 and widen_half(a) is a  # other dtypes untouched
