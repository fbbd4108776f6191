"""vdeval.evaluate / evaluate_set: the one-call Python API on every input form it accepts."""
from pathlib import Path

import numpy as np
import pytest
import torch

import vdeval
from vdeval.errors import VdevalError, WeightsError
from vdeval.world import sample_clip

DATA = Path(__file__).parent / "data" / "natural"


def _world(n=3):
    return [sample_clip(i).video.frames for i in range(n)]


def test_arrays_tensors_and_layouts_give_the_same_scores():
    frames = _world(2)
    a = vdeval.evaluate(frames, metrics=["frame_difference", "warping_error"], device="cpu")
    as_tchw = [torch.from_numpy(f).permute(0, 3, 1, 2).float() / 255.0 for f in frames]
    b = vdeval.evaluate(as_tchw, metrics=["frame_difference", "warping_error"], device="cpu")
    batch = torch.stack(as_tchw)  # (B, T, C, H, W)
    c = vdeval.evaluate(batch, metrics=["frame_difference", "warping_error"], device="cpu")
    for col in ("frame_difference", "warping_error"):
        np.testing.assert_allclose(a[col], b[col], atol=1e-12)
        np.testing.assert_allclose(a[col], c[col], atol=1e-12)
    assert list(a["clip"]) == ["clip0000", "clip0001"] and "warping_error.occluded_fraction" in a
    # [-1, 1] floats are read as such only when declared; undeclared they are refused, not guessed
    signed = [t * 2 - 1 for t in as_tchw]
    d = vdeval.evaluate(signed, metrics=["frame_difference"], device="cpu", value_range=(-1, 1))
    np.testing.assert_allclose(a["frame_difference"], d["frame_difference"], atol=1e-12)
    e = vdeval.evaluate(signed, metrics=["frame_difference"], device="cpu")
    assert e["error"].str.contains("value_range=").all() and ("frame_difference" not in e or e["frame_difference"].isna().all())


def test_folder_and_paths_with_prompts_and_a_bad_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"garbage" * 50)
    paths = sorted(DATA.glob("*.mp4")) + [bad]
    df = vdeval.evaluate(paths, prompts=["a", "b", "c"], metrics=["frozen_motion"], device="cpu")
    assert list(df["prompt"]) == ["a", "b", "c"]
    assert df["frozen_motion"].iloc[:2].tolist() == [0.0, 0.0]  # natural footage that moves
    assert "bad.mp4" in df["error"].iloc[2] and np.isnan(df["frozen_motion"].iloc[2])
    folder = vdeval.evaluate(DATA, metrics=["frozen_motion"], device="cpu")
    assert folder["frozen_motion"].tolist() == [0.0, 0.0]


def test_prompt_count_must_match():
    with pytest.raises(VdevalError, match="2 prompts for 3 videos"):
        vdeval.evaluate(_world(3), prompts=["a", "b"], metrics=["frame_difference"])


def test_shapes_world_backbone_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsError, match="metric identity_drift"):
        vdeval.evaluate(_world(2), metrics=["identity_drift"])
    df = vdeval.evaluate(_world(2), metrics=["identity_drift"], domain="world")
    assert df["identity_drift"].between(0, 1).all()
    with pytest.raises(VdevalError, match="name a backbone"):
        vdeval.evaluate(_world(2), metrics=["video_text_alignment"])


def test_evaluate_set_matches_the_runner_definition():
    from vdeval.features import ClipFeatures
    from vdeval.run.featurize import BackbonePool, featurize
    from vdeval.metrics.fvd import FVD
    from vdeval.video import Video

    real, fake = _world(6), [sample_clip(100 + i).video.frames for i in range(6)]
    df = vdeval.evaluate_set(real, fake, metrics=["fvd"], domain="world", device="cpu")
    m = FVD()
    sets = []
    for vids in (real, fake):
        cs = [ClipFeatures(str(i), Video(v)) for i, v in enumerate(vids)]
        featurize(cs, m.requests(), BackbonePool())
        sets.append(cs)
    with pytest.warns(UserWarning):
        expected = m.score_set(sets[1], sets[0]).value
    assert df.loc[0, "value"] == pytest.approx(expected) and df.loc[0, "n"] == 6 and df.loc[0, "backbone"] == "embedded@1"
    with pytest.raises(VdevalError, match="per-clip"):
        vdeval.evaluate_set(real, fake, metrics=["frame_difference"])


def test_a_metric_that_raises_on_one_clip_gives_nan_and_a_note(monkeypatch):
    """The runner's score stage: one clip's failure never ends the call."""
    from vdeval.metrics.frame_difference import FrameDifference

    real = FrameDifference.score_clip

    def score(self, clip):
        if clip.clip_id == "clip0001":
            raise IndexError("no such frame\nmore detail")
        return real(self, clip)

    monkeypatch.setattr(FrameDifference, "score_clip", score)
    df = vdeval.evaluate(_world(3), metrics=["frame_difference"], device="cpu")
    assert np.isnan(df["frame_difference"][1]) and df["frame_difference.note"][1] == "IndexError: no such frame"
    assert np.isfinite(df["frame_difference"][[0, 2]]).all() and df["error"].isna().all()
