"""`vdeval export RUN --format vbench`: VBench's results layout and scales, checked against VBench's
own formulas written out (temporal flickering from the stored frames), and the refusals: a
dimension is exported only where every clip ran VBench's protocol on VBench's input."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdeval.cli import main
from vdeval.export.vbench import export_vbench
from vdeval.results import BackboneRecord, ClipRecord, MetricRecord, Provenance, Results


def _vbench_flicker(frames: np.ndarray) -> float:
    """vbench/temporal_flickering.py, written out: mean cv2.absdiff of float32 frames per pair,
    (255 - mean over pairs) / 255."""
    d = [np.mean(cv2.absdiff(frames[i].astype(np.float32), frames[i + 1].astype(np.float32)))
         for i in range(len(frames) - 1)]
    return (255.0 - np.mean(d)) / 255.0


def _cli(args, capsys) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out + out.err


def test_temporal_flickering_end_to_end(tmp_path, capsys):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"""name: t
world: {{height: 32, width: 32, frames: 6}}
prompts: {{source: world, count: 3, seed: 0}}
generators:
  - {{name: world, kind: world}}
  - {{name: flicker, kind: world, corruption: {{name: flicker, severity: 0.5}}}}
metrics:
  - {{name: frame_difference, label: temporal_flickering}}
  - {{name: frozen_motion, backbone: dis}}
output: {{dir: {tmp_path / 'run'}}}
""")
    code, output = _cli(["run", str(suite)], capsys)
    assert code == 0, output
    code, output = _cli(["export", str(tmp_path / "run"), "--format", "vbench", "-o", str(tmp_path / "out")], capsys)
    assert code == 0, output
    assert "dynamic_degree not exported: frozen_motion is VBench's protocol on 'raft_vbench' only" in output
    for gen in ("world", "flicker"):
        data = json.loads((tmp_path / "out" / f"{gen}_eval_results.json").read_text())
        assert list(data) == ["temporal_flickering"]
        agg, videos = data["temporal_flickering"]
        assert len(videos) == 3
        want = [_vbench_flicker(np.load(v["video_path"])) for v in videos]
        # VBench means float32 differences in float32: 6e-8 apart from vdeval's float64 mean
        assert [v["video_results"] for v in videos] == pytest.approx(want, abs=1e-6)
        assert agg == pytest.approx(np.mean(want), abs=1e-6)
        info = json.loads((tmp_path / "out" / f"{gen}_full_info.json").read_text())
        assert sorted(v for p in info for v in p["video_list"]) == sorted(v["video_path"] for v in videos)
        assert all(p["dimension"] == ["temporal_flickering"] for p in info)
    summary = json.loads((tmp_path / "out" / "vdeval_export.json").read_text())
    assert summary["generators"]["world"]["exported"]["temporal_flickering"]["backbone"].startswith("pixels")
    flick = json.loads((tmp_path / "out" / "flicker_eval_results.json").read_text())["temporal_flickering"][0]
    world = json.loads((tmp_path / "out" / "world_eval_results.json").read_text())["temporal_flickering"][0]
    assert flick < world  # flicker scores lower on VBench's scale


def _write_run(root: Path, metrics: dict, backbones: dict, clips: list[ClipRecord], shapes: dict) -> Path:
    res = Results(created="2026-01-01T00:00:00", suite={"name": "hand"}, suite_hash="0" * 64,
                  provenance=Provenance(vdeval="test"), metrics=metrics, backbones=backbones, clips=clips)
    root.mkdir(parents=True)
    (root / "results.json").write_text(json.dumps(res.dump()))
    for c in clips:
        p = root / "clips" / c.generator / f"{c.clip_id}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"clip_id": c.clip_id, "shape": shapes[c.clip_id], "file": f"/videos/{c.prompt}-0.mp4"}))
    return root


def _metric(name, backbone, label, **params):
    return MetricRecord(name=name, version="1", higher_is_better=True, level="clip", backbone=backbone,
                        backbone_label=label, params=params)


def test_scales_and_aggregates_of_published_dimensions(tmp_path):
    metrics = {
        "subject_consistency": _metric("identity_drift", "dino_vbench", "dino_vbench@1", aggregate="pairs"),
        "frozen_motion": _metric("frozen_motion", "raft_vbench", "raft@vbench"),
        "imaging_quality": _metric("imaging_quality", "musiq", "musiq@spaq"),
        "aesthetic_quality": _metric("aesthetic_quality", "laion_aesthetic", "laion_aesthetic@linear"),
    }
    backbones = {"musiq@spaq": BackboneRecord(name="musiq", version="1", options={"checkpoint": "spaq", "max_short_side": 512}),
                 "raft@vbench": BackboneRecord(name="raft_vbench", version="1", options={"protocol": "vbench"}),
                 "laion_aesthetic@linear": BackboneRecord(name="laion_aesthetic", version="1",
                                                          options={"head": "laion-aesthetic-linear"})}
    clips = [
        ClipRecord(generator="g", clip_id="a", prompt="a cat", seed=0,
                   scores={"subject_consistency": 0.9, "frozen_motion": 0.0, "imaging_quality": 0.6, "aesthetic_quality": 0.5},
                   extras={"subject_consistency": {"n_pairs": 15.0}, "frozen_motion": {"sampled_frames": 16.0}}),
        ClipRecord(generator="g", clip_id="b", prompt="a dog", seed=0,
                   scores={"subject_consistency": 0.6, "frozen_motion": 1.0, "imaging_quality": 0.4, "aesthetic_quality": 0.7},
                   extras={"subject_consistency": {"n_pairs": 5.0}, "frozen_motion": {"sampled_frames": 6.0}}),
    ]
    run = _write_run(tmp_path / "run", metrics, backbones, clips, {"a": [16, 256, 256, 3], "b": [6, 320, 512, 3]})
    s = export_vbench(run, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "g_eval_results.json").read_text())
    agg, vids = data["subject_consistency"]
    assert agg == pytest.approx((0.9 * 15 + 0.6 * 5) / 20)  # VBench's sim / cnt over all pairs
    assert [v["video_path"] for v in vids] == ["/videos/a cat-0.mp4", "/videos/a dog-0.mp4"]
    agg, vids = data["dynamic_degree"]
    assert [v["video_results"] for v in vids] == [True, False] and agg == 0.5
    agg, vids = data["imaging_quality"]  # per video on MUSIQ's 0-100 scale, the aggregate / 100
    assert [v["video_results"] for v in vids] == pytest.approx([60.0, 40.0]) and agg == pytest.approx(0.5)
    agg, vids = data["aesthetic_quality"]
    assert agg == pytest.approx(0.6)
    assert set(s["generators"]["g"]["not_exported"]) == {"temporal_flickering", "motion_smoothness"}


@pytest.mark.parametrize("change, why", [
    (lambda m, b, c, s: s.update(b=[6, 321, 512, 3]), "multiples of 8"),
    (lambda m, b, c, s: c[1].extras["frozen_motion"].update(sampled_frames=2.0), "two frames or fewer"),
    (lambda m, b, c, s: c[1].scores.update(frozen_motion=None), "have no frozen_motion value"),
    (lambda m, b, c, s: m.update(frozen_motion=_metric("frozen_motion", "dis", "dis@2")), "on 'raft_vbench' only"),
    (lambda m, b, c, s: b.update({"raft@vbench": BackboneRecord(name="raft_vbench", version="1",
                                                                options={"max_short_side": 256})}), "resized frames"),
])
def test_dynamic_degree_refused_where_not_vbench_input(tmp_path, change, why):
    metrics = {"frozen_motion": _metric("frozen_motion", "raft_vbench", "raft@vbench")}
    backbones = {"raft@vbench": BackboneRecord(name="raft_vbench", version="1", options={})}
    clips = [ClipRecord(generator="g", clip_id=k, prompt=k, seed=0, scores={"frozen_motion": 0.0},
                        extras={"frozen_motion": {"sampled_frames": 8.0}}) for k in ("a", "b")]
    shapes = {"a": [8, 256, 256, 3], "b": [8, 256, 256, 3]}
    change(metrics, backbones, clips, shapes)
    run = _write_run(tmp_path / "run", metrics, backbones, clips, shapes)
    s = export_vbench(run, tmp_path / "out")
    assert why in s["generators"]["g"]["not_exported"]["dynamic_degree"]
    assert not (tmp_path / "out" / "g_eval_results.json").exists()


def test_flicker_refused_over_256_px(tmp_path):
    metrics = {"tf": _metric("frame_difference", "pixels", "pixels@1")}
    clips = [ClipRecord(generator="g", clip_id="a", prompt="p", seed=0, scores={"tf": 2.0}, extras={"tf": {"vbench": 0.99}})]
    run = _write_run(tmp_path / "run", metrics, {}, clips, {"a": [8, 480, 640, 3]})
    s = export_vbench(run, tmp_path / "out")
    assert "decoded at 256" in s["generators"]["g"]["not_exported"]["temporal_flickering"]


def test_unknown_format_is_one_line(tmp_path, capsys):
    code, output = _cli(["export", str(tmp_path), "--format", "vbnch"], capsys)
    assert code == 2 and "did you mean 'vbench'" in output
