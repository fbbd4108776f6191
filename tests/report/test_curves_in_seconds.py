"""Per-frame curves against time in seconds, each clip at its own frame rate, to the end of the
longest clip (a 239-pair clip is drawn whole beside a 131-pair one)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from vdeval.report.compare import at_times, curves_by_metric, time_grid


def test_time_grid_and_resampling():
    t = time_grid([([0.0] * 24, 24.0), ([0.0] * 60, 60.0)])
    assert t[0] == 0 and np.isclose(t[1], 1 / 60) and np.isclose(t[-1], 1 - 1 / 60)
    v = at_times([1.0, 2.0, 3.0], 2.0, np.array([0.0, 0.49, 0.5, 1.49, 1.5]))
    assert v == [1.0, 1.0, 2.0, 3.0, None]


def _clip(gen, curve, fps):
    return SimpleNamespace(generator=gen, error=None, curves={"m": curve}, curve_fps={"m": fps})


def test_curves_by_metric_in_seconds_complete_for_long_clips():
    clips = [_clip("g", list(np.full(239, 2.0)), 24.0), _clip("g", list(np.full(131, 4.0)), 60.0),
             _clip("g", list(np.full(60, 6.0)), 30.0)]
    merged = SimpleNamespace(clips=clips, metrics={"m": None}, generators={"g": None})
    mean, lo, hi, count, x, seconds = curves_by_metric(merged)["m"]["g"]
    assert seconds and np.isclose(x[-1], 239 / 24 - 1 / 60, atol=1 / 60)  # the 10 s clip to its end
    assert count[0] == 3 and count[-1] == 1 and mean[-1] == 2.0
    i = int(np.searchsorted(x, 1.5))  # at 1.5 s all three clips still run
    assert count[i] == 3 and np.isclose(mean[i], 4.0)
    j = int(np.searchsorted(x, 2.5))
    assert count[j] == 1 and mean[j] == 2.0  # the 60 fps clip ended at 131/60 = 2.18 s


def test_curves_without_rates_fall_back_to_index():
    clips = [SimpleNamespace(generator="g", error=None, curves={"m": [1.0, 2.0]}, curve_fps={}) for _ in range(2)]
    merged = SimpleNamespace(clips=clips, metrics={"m": None}, generators={"g": None})
    *_, x, seconds = curves_by_metric(merged)["m"]["g"]
    assert not seconds and list(x) == [0, 1]
