"""frame_blending: known answers on hand-built clips (disjoint squares, blended with weight a)."""
import math

import numpy as np
import pytest

from vdeval.features import ClipFeatures
from vdeval.metrics.frame_blending import FrameBlending, neighbour_correlations
from vdeval.video import Video


def _squares(n, step=12, size=6, h=24, w=160, fg=250.0, bg=0.0):
    """n float frames of a square moving `step` > `size` pixels a frame: disjoint places."""
    f = np.full((n, h, w, 3), bg, np.float64)
    for t in range(n):
        f[t, 9:9 + size, 2 + t * step:2 + t * step + size] = fg
    return f


def _blend(f, a):
    """f_t' = (1 - a) f_t + a (f_{t-1} + f_{t+1}) / 2 for t = 1 .. n-2 (no end frames needed)."""
    return (1 - a) * f[1:-1] + a * (f[:-2] + f[2:]) / 2


def _expected(a):
    return a * (1 - a) / math.sqrt(((1 - a) ** 2 + a ** 2 / 2) * (3 * a ** 2 / 8 + (1 - a) ** 2 / 2))


def test_disjoint_motion_scores_zero_clean():
    f = _squares(9).astype(np.uint8)
    s = FrameBlending().score_clip(ClipFeatures("c", Video(f, 8.0)))
    assert s.value == pytest.approx(0.0, abs=1e-12) and len(s.curve) == 7


@pytest.mark.parametrize("a", [0.3, 0.5, 2 / 3, 0.9])
def test_blended_disjoint_motion_gives_the_known_correlation(a):
    # exact on float frames: the median is the background, the blends are orthogonal mixtures
    nu = neighbour_correlations(_blend(_squares(13), a))
    inner = nu[1:-1]  # frames whose neighbours are blends of three squares each
    np.testing.assert_allclose(inner, _expected(a), rtol=1e-9)
    assert _expected(a) > 0


def test_blending_raises_the_value_on_uint8_clips_at_every_weight():
    clean = FrameBlending().score_clip(ClipFeatures("c", Video(_squares(11)[1:-1].astype(np.uint8), 8.0))).value
    for a in (0.3, 0.6, 0.9):
        frames = np.clip(np.rint(_blend(_squares(11), a)), 0, 255).astype(np.uint8)
        v = FrameBlending().score_clip(ClipFeatures("b", Video(frames, 8.0))).value
        assert v == pytest.approx(_expected(a), abs=0.01) and v > clean + 0.2


def test_still_clip_is_nan_with_a_note():
    f = np.repeat(_squares(1).astype(np.uint8), 5, axis=0)
    s = FrameBlending().score_clip(ClipFeatures("c", Video(f, 8.0)))
    assert math.isnan(s.value) and s.note


def test_world_motion_blur_and_grid_blend_are_caught():
    from vdeval.audit.forms import blend
    from vdeval.world import WorldSpec, sample_clip

    spec = WorldSpec(height=64, width=64, frames=12, speeds=("quickly",))
    clips = [sample_clip(s, spec).video.frames for s in range(6)]
    score = lambda f: FrameBlending().score_clip(ClipFeatures("c", Video(f, 8.0))).value
    clean = [score(f) for f in clips]
    blended = [score(blend(f, 0.5, None)) for f in clips]
    assert np.mean(np.array(blended)[:, None] > np.array(clean)[None, :]) >= 0.9  # AUROC
