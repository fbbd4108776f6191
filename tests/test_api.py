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
    # an unreadable clip is left out of its set and named, never silently dropped
    with pytest.warns(UserWarning):
        again = vdeval.evaluate_set(real, fake + [np.zeros((4, 0, 8, 3), np.uint8)], metrics=["fvd"], domain="world",
                                    device="cpu")
    assert again.loc[0, "value"] == df.loc[0, "value"] and again.loc[0, "n"] == 6
    assert again.loc[0, "failures"] == "generated clip0006: video 6: frames of 0 x 8 pixels (a side of zero)"


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


# ---- issue 24: arguments are checked by the suite's rules; one clip's trouble is its row --------

BAD_ARGS = {
    "batch_size=0 (never returned)": ({"batch_size": 0}, "batch_size: Input should be greater than or equal to 1"),
    "batch_size=True": ({"batch_size": True}, "batch_size: must be a number, not true"),
    "fps=inf": ({"fps": float("inf")}, "fps: must be a finite number"),
    "fps=nan": ({"fps": float("nan")}, "fps: must be a finite number"),
    "fps=1e300": ({"fps": 1e300}, "fps: Input should be less than or equal to 1000"),
    "fps=0": ({"fps": 0}, "fps: Input should be greater than 0"),
    "metrics=None": ({"metrics": None}, "metrics: must be a list of metric names"),
    "metrics='fvd'": ({"metrics": "frame_difference"}, "metrics: must be a list of metric names"),
    "metrics=[]": ({"metrics": []}, "metrics: List should have at least 1 item"),
    "unknown metric": ({"metrics": ["frame_diference"]}, "did you mean 'frame_difference'"),
    "bad params": ({"metrics": [{"name": "frame_difference", "params": {"nope": 1}}]}, "params.nope: unknown key"),
    "memory_gb=0": ({"memory_gb": 0}, "memory_gb: Input should be greater than 0"),
    "memory_gb=-1": ({"memory_gb": -1.0}, "memory_gb: Input should be greater than 0"),
    "device='tpu'": ({"device": "tpu"}, "device: must be auto, cpu, mps, cuda or cuda:N"),
    "value_range=(1, 0)": ({"value_range": (1, 0)}, "value_range must be (low, high) with low < high"),
    "value_range=(0, inf)": ({"value_range": (0, float("inf"))}, "value_range[1]: must be a finite number"),
    "domain='space'": ({"domain": "space"}, "domain: Input should be 'natural' or 'world'"),
    "backbones for another metric": ({"backbones": {"warping_error": "dis"}}, "not one of the metrics"),
    "prompts='abc'": ({"prompts": "abc"}, "prompts: Input should be a valid list"),
    "cache_dir=5": ({"cache_dir": 5}, "cache_dir: must be a folder path"),
}


@pytest.mark.parametrize("kwargs,needle", list(BAD_ARGS.values()), ids=list(BAD_ARGS))
def test_bad_arguments_are_one_vdeval_error_before_any_work(kwargs, needle):
    call = {"metrics": ["frame_difference"], "device": "cpu", **kwargs}
    with pytest.raises(VdevalError) as e:
        vdeval.evaluate(_world(2), **call)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert str(e.value).startswith("vdeval.evaluate: ")


def test_set_level_metric_in_evaluate_and_a_lone_array_are_refused():
    with pytest.raises(VdevalError, match="fvd: set-level metrics"):
        vdeval.evaluate(_world(2), metrics=["fvd"], device="cpu")
    with pytest.raises(VdevalError, match=r"one array of shape \(4, 32, 32, 3\)"):
        vdeval.evaluate(_world(1)[0][:4], metrics=["frame_difference"], device="cpu")
    with pytest.raises(VdevalError, match="expected a folder, a list"):
        vdeval.evaluate(5, metrics=["frame_difference"], device="cpu")
    with pytest.raises(VdevalError, match="vdeval.evaluate_set: batch_size"):
        vdeval.evaluate_set(_world(2), _world(2), metrics=["fvd"], batch_size=0, device="cpu")


def _undecodable(path: Path) -> Path:
    """An mp4 whose header is intact (it probes) and whose frame data is zeroed: decoding it fails."""
    data = bytearray((DATA / "carphone.mp4").read_bytes())
    start, end = data.find(b"mdat") + 4, data.find(b"moov") - 4
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))
    return path


def test_one_bad_clip_is_its_row_and_the_others_are_scored(tmp_path):
    from vdeval.video.source import FileSource

    broken = _undecodable(tmp_path / "broken.mp4")
    FileSource(broken)  # the header reads: the failure comes while featurizing, as in the issue
    wide = np.random.default_rng(0).integers(0, 256, (3, 5, 100001, 3), dtype=np.uint8)  # too wide for cv2.remap
    inputs = [DATA / "carphone.mp4", broken, np.zeros((4, 0, 16, 3), np.uint8), wide,
              np.zeros((4, 16, 16, 3), np.complex64), _world(1)[0]]
    df = vdeval.evaluate(inputs, metrics=["frame_difference", "warping_error"], backbones={"warping_error": "dis"},
                         device="cpu", batch_size=4)
    assert len(df) == 6
    assert df["error"].isna().tolist() == [True, False, False, True, False, True]
    assert "broken.mp4" in df["error"][1] and "0 x 16 pixels" in df["error"][2] and "complex" in df["error"][4]
    assert np.isfinite(df.loc[[0, 5], ["frame_difference", "warping_error"]].to_numpy()).all()
    # the 3 x 100001 clip keeps the metric that can run; the one that cannot says why
    assert np.isfinite(df["frame_difference"][3]) and np.isnan(df["warping_error"][3])
    assert "flow from dis failed for this clip" in df["warping_error.note"][3]


def test_same_file_name_in_two_folders_gives_two_rows(tmp_path):
    import shutil

    for sub, src in (("a", "carphone.mp4"), ("b", "bigbuckbunny_180p.mp4")):
        (tmp_path / sub).mkdir()
        shutil.copy(DATA / src, tmp_path / sub / "clip.mp4")
    paths = [tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", tmp_path / "a" / "clip.mp4"]
    df = vdeval.evaluate(paths, metrics=["frame_difference"], device="cpu")
    assert len(df) == 3 and len(set(df["clip"])) == 3 and df["error"].isna().all()
    assert df["clip"][0] == str(paths[0]) and df["frame_difference"][0] == df["frame_difference"][2]
    assert df["frame_difference"][0] != df["frame_difference"][1]


def test_prompts_from_vbench_style_names(tmp_path):
    from vdeval.video import write_video
    from vdeval.world import WorldSpec, sample_clip

    for i, name in enumerate(["a red car drives-0.mp4", "a red car drives-1.mp4", "a cat, sleeping-0.mp4"]):
        write_video(sample_clip(i, WorldSpec(height=32, width=32, frames=4)).video, tmp_path / name)
    df = vdeval.evaluate(sorted(tmp_path.glob("*.mp4")), prompts="from_names", metrics=["frame_difference"],
                         progress=False)
    assert sorted(df["prompt"]) == ["a cat, sleeping", "a red car drives", "a red car drives"]
