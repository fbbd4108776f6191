"""The generalization audit's failure forms (known answers) and grid (splits, worst cell)."""
import numpy as np
import pandas as pd
import pytest
from helpers import ROOT

from vdeval.audit import forms
from vdeval.audit.grid import (
    CALIBRATION_SEVERITIES,
    EVALUATION_SEVERITIES,
    Condition,
    drop_source_repeats,
    natural_windows,
    run_grid,
    worst_cells,
)

NATURAL = ROOT / "tests" / "data" / "natural"


def _ramp(t=10, h=16, w=24):
    """Frame t is a horizontal ramp shifted t pixels right: content moves +x."""
    x = np.arange(w)[None, :] - np.arange(t)[:, None]
    f = (np.sin(x / 3.0) * 100 + 128)[:, None, :, None] * np.ones((1, h, 1, 3))
    return np.clip(f, 0, 255).astype(np.uint8)


def test_each_form_keeps_shape_and_changes_the_clip():
    src = _ramp(12 + forms.SKIP_SPARE, 16, 24)
    for family, fs in forms.FAMILIES.items():
        for form in fs:
            out = forms.apply(family, form, src, 12, 1.0, seed=0)
            assert out.shape == (12, 16, 24, 3) and out.dtype == np.uint8, (family, form)
            assert not np.array_equal(out, src[:12]), (family, form)


def test_stutter_forms_hold_exactly_or_nearly():
    src = _ramp(9)
    rng = np.random.default_rng(0)
    out = forms.hold(src, 1.0, rng)
    repeats = [t for t in range(1, 9) if np.array_equal(out[t], out[t - 1])]
    assert len(repeats) == 4  # round(1.0 * 8 / 2)
    near = forms.near_dup(src, 1.0, np.random.default_rng(0))
    changed = [t for t in range(1, 9) if not np.array_equal(near[t], src[t])]
    assert len(changed) == 4 and all(not np.array_equal(near[t], near[t - 1]) for t in changed)
    assert all(np.abs(near[t].astype(int) - near[t - 1].astype(int)).mean() < 4 for t in changed)


def test_skip_jumps_k_frames_after_mid_and_freeze_spans():
    src = _ramp(8 + forms.SKIP_SPARE)
    out = forms.skip(src, 1.0, None)  # k = 4
    assert np.array_equal(out[:4], src[:4]) and np.array_equal(out[4:], src[8:12])
    stall = forms.skip_hold(src, 1.0, None)
    assert all(np.array_equal(stall[t], src[3]) for t in range(4, 8))
    tail = forms.freeze_tail(src[:8], 1.0, None)  # last 6 of 8 hold frame 1
    assert all(np.array_equal(tail[t], src[1]) for t in range(2, 8)) and np.array_equal(tail[1], src[1])
    mid = forms.freeze_middle(src[:8], 0.0, None)  # 2 frames centred: 3, 4 hold frame 2
    assert np.array_equal(mid[3], src[2]) and np.array_equal(mid[4], src[2]) and np.array_equal(mid[5], src[5])


def test_blur_forms():
    src = _ramp(6, 32, 48)
    blend = forms.blend(src, 1.0, None)  # a = 0.9: mostly the neighbours' mean
    want = np.clip(np.rint(0.1 * src[2].astype(np.float32) + 0.45 * (src[1].astype(np.float32) + src[3])), 0, 255)
    np.testing.assert_array_equal(blend[2], want.astype(np.uint8))
    k = forms.line_kernel(7, 0.0)
    assert k.sum() == pytest.approx(1.0) and np.count_nonzero(k[3]) == 7 and np.count_nonzero(k) == 7  # horizontal
    sm = forms.smear(src, 1.0, None)  # content moves along x: smeared along x, rows unchanged in y
    assert sm[1].std() < src[1].std()  # the ramp's contrast drops


def test_compression_forms_lose_more_at_higher_severity():
    src = _ramp(4, 32, 48)
    err = lambda f, v: np.abs(f(src, v, None).astype(int) - src).mean()
    assert err(forms.jpeg, 1.0) > err(forms.jpeg, 0.2)
    assert err(forms.h264, 1.0) > err(forms.h264, 0.2)
    odd = forms.h264(_ramp(3, 15, 21), 0.5, None)
    assert odd.shape == (3, 15, 21, 3)


def test_flicker_forms_change_brightness_not_content():
    src = np.full((6, 24, 32, 3), 100, np.uint8)
    gain = forms.gain_flicker(src, 1.0, np.random.default_rng(0))
    per_frame = gain.reshape(6, -1)
    assert (per_frame.std(1) == 0).all() and per_frame[:, 0].std() > 5  # one level per frame, levels differ
    local = forms.local_flicker(src, 1.0, np.random.default_rng(0)).astype(int) - 100
    assert np.abs(local[:, 0, 0]).max() <= 1  # a corner is far from the region
    assert np.abs(local).max(axis=(1, 2, 3)).min() > 3  # the region moves in every frame


def test_shake_forms_move_each_frame_by_a_known_transform():
    src = _ramp(5, 32, 48)[:1].repeat(5, axis=0)  # a still clip
    shaken = forms.translate_shake(src, 1.0, np.random.default_rng(3))
    offsets = np.random.default_rng(3).uniform(-0.06 * 32, 0.06 * 32, size=(5, 2))
    import cv2
    for f, (dx, dy) in zip(shaken, offsets):  # each frame equals the still frame moved by its own offset
        want = cv2.warpAffine(src[0], np.float32([[1, 0, dx], [0, 1, dy]]), (48, 32), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
        np.testing.assert_array_equal(f, want)
    assert len({f.tobytes() for f in shaken}) == 5
    turned = forms.rotate_shake(src, 1.0, np.random.default_rng(1))
    assert len({f.tobytes() for f in turned}) == 5 and turned.shape == src.shape


def test_worst_cell_is_the_evaluation_minimum():
    cells = pd.DataFrame([
        {"score": "m", "backbone": "b", "family": "f", "domain": "world", "form": "a", "condition": "c1", "split": "evaluation", "severity": 0.5, "auroc": 0.95},
        {"score": "m", "backbone": "b", "family": "f", "domain": "world", "form": "b", "condition": "c2", "split": "evaluation", "severity": 1.0, "auroc": 0.7},
        {"score": "m", "backbone": "b", "family": "f", "domain": "world", "form": "b", "condition": "c2", "split": "calibration", "severity": 0.35, "auroc": 0.6},
    ])
    w = worst_cells(cells).iloc[0]
    assert w["worst_auroc"] == 0.7 and w["worst_cell"] == "b@1, c2" and w["mean_auroc"] == pytest.approx(0.825)
    assert w["calibration_worst"] == 0.6 and w["cells"] == 2


def test_splits_are_disjoint():
    assert not set(CALIBRATION_SEVERITIES) & set(EVALUATION_SEVERITIES)
    files = sorted(NATURAL.glob("*.mp4"))
    cond = Condition("n", "natural", 6, short_side=32)
    cal = natural_windows(cond, files, "calibration", 50)
    ev = natural_windows(cond, files, "evaluation", 50)
    assert cal and ev
    assert not any(np.array_equal(a[0], b[0]) for a in cal for b in ev)


def test_grid_runs_both_splits_on_a_small_condition():
    cond = Condition("world 32x32 8f", "world", 8, 32, 32, "quickly", ("plain",), 1)
    r = run_grid(n=4, families=["stutter", "freeze"], conditions=[cond])
    c = r.cells
    assert set(c["split"]) == {"calibration", "evaluation"}
    assert set(c[c["split"] == "evaluation"]["severity"]) == set(EVALUATION_SEVERITIES)
    assert set(c["score"]) == {"motion_smoothness", "frame_repeats", "frozen_motion.frozen_fraction"}
    assert set(c["form"]) == {"hold", "near_dup", "tail", "middle"}
    assert c["auroc"].notna().all() and (c["n_clean"] == 4).all()
    assert set(r.worst["family"]) == {"stutter", "freeze"}


def test_grid_audits_a_named_tier_instead_of_the_default():
    cond = Condition("world 32x32 8f", "world", 8, 32, 32, "quickly", ("plain",), 1)
    r = run_grid(n=3, families=["compression"], conditions=[cond], backbones={"imaging_quality": "blockiness"})
    assert set(r.cells["backbone"]) == {"blockiness"} and set(r.worst["backbone"]) == {"blockiness"}
    default = run_grid(n=3, families=["compression"], conditions=[cond])
    assert set(default.cells["backbone"]) == {"niqe_world"}


def test_audit_cli_passes_the_grid_tier(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vdeval.audit.grid as grid
    from vdeval.cli import _register_plugins, app

    _register_plugins()
    seen = {}

    def fake_run_grid(files, **kw):
        seen.update(kw)
        return grid.GridResult(grid.worst_cells(None), grid.worst_cells(None))

    monkeypatch.setattr(grid, "run_grid", fake_run_grid)
    monkeypatch.setattr(grid, "write_grid", lambda result, out: {})
    monkeypatch.setattr(grid, "grid_markdown", lambda result: "")
    res = CliRunner().invoke(app, ["audit", "--grid", "--families", "compression", "--backbone",
                                   "imaging_quality=blockiness", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert seen["backbones"] == {"imaging_quality": "blockiness"} and seen["families"] == ["compression"]


def test_grid_audits_the_metrics_and_tiers_asked_for():
    from vdeval.errors import VdevalError

    cond = Condition("world 32x32 8f", "world", 8, 32, 32, "quickly", ("plain",), 1)
    r = run_grid(n=3, families=["stutter"], conditions=[cond], metrics=["motion_smoothness"],
                 backbones={"motion_smoothness": "dis"})
    assert set(r.cells["score"]) == {"motion_smoothness"} and set(r.cells["backbone"]) == {"dis"}
    with pytest.raises(VdevalError, match="not audited"):
        run_grid(n=3, families=["stutter"], conditions=[cond], metrics=["imaging_quality"])


def test_source_repeats_are_dropped_before_windows():
    f = _ramp(12)
    rep = np.concatenate([f[:5], f[4:5], f[5:]])  # frame 4 shown twice (a frame-rate conversion)
    assert np.array_equal(drop_source_repeats(rep), f)
    still = np.repeat(f[:1], 6, axis=0)
    assert len(drop_source_repeats(still)) == 6  # footage that never moves keeps its frames
