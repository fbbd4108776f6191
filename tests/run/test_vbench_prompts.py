"""VBench's prompt suite as a prompt source: the data, the suite schema, VBench's file naming for
generated samples (`<prompt>-<i>.mp4`), a folder of such samples scored with `match: vbench`, and
the camera_motion metric reading VBench-2.0's camera prompts; offline, on a virtual camera over
natural footage that does what each prompt asks."""
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import virtual_camera

from vdeval.errors import SuiteError
from vdeval.generators.callable import register
from vdeval.metrics.camera_motion import requested_motion
from vdeval.prompt_suites import VBENCH_DIR, vbench_camera_labels, vbench_dimensions, vbench_prompts, vbench_video_name
from vdeval.run.runner import Runner
from vdeval.suite import Suite, load_suite
from vdeval.video.source import FileSource

DATA = Path(__file__).parents[1] / "data" / "natural"
STILL = FileSource(DATA / "bigbuckbunny_180p.mp4").decode().frames[:1]
MOVES = {"static": ((0, 0), 1.0), "pan_left": ((-1.5, 0), 1.0), "pan_right": ((1.5, 0), 1.0),
         "tilt_up": ((0, -1.5), 1.0), "tilt_down": ((0, 1.5), 1.0), "zoom_in": ((0, 0), 1.015),
         "zoom_out": ((0, 0), 1 / 1.015)}


def run_suite(suite: Suite, limit: int):
    return Runner(suite, limit=limit, progress=False, log=lambda *a: None).execute()


def test_the_data_is_vbench_with_its_licence():
    assert (VBENCH_DIR / "LICENSE").read_text().lstrip().startswith("Apache License")
    assert "45e79ec14e69a2187202c675d2dbce1a71843d53" in (VBENCH_DIR / "README.md").read_text()
    info = json.loads((VBENCH_DIR / "VBench_full_info.json").read_text())
    assert len(info) == 946
    # every per-dimension list is the full info's prompts of that dimension, in its order
    for f in sorted((VBENCH_DIR / "prompts_per_dimension").glob("*.txt")):
        lines = [ln.strip() for ln in f.read_text().splitlines() if ln.strip()]
        assert lines == [e["prompt_en"] for e in info if f.stem in e["dimension"]], f.stem
    assert len(vbench_prompts(["camera_motion"])) == 108
    assert "camera_motion" in vbench_dimensions() and "subject_consistency" in vbench_dimensions()
    assert vbench_video_name("a cat", 3) == "a cat-3.mp4"


def test_every_vbench2_camera_prompt_reads_as_its_label():
    for prompt, label in vbench_camera_labels().items():
        asked = requested_motion(prompt)
        if label in ("orbits", "oblique"):
            assert asked.labels is None and asked.why, prompt
        else:
            assert asked.labels == {label}, prompt


def _suite(tmp_path, **over) -> Suite:
    data = {"name": "v", "prompts": {"source": "vbench", "dimensions": ["dynamic_degree"]},
            "generators": [{"name": "w", "kind": "world"}], "metrics": [{"name": "frame_difference"}]}
    data.update(over)
    return Suite(**data)


def test_prompt_source_schema(tmp_path):
    assert _suite(tmp_path).samples_per_prompt == 5  # VBench's five samples a prompt
    assert _suite(tmp_path, samples_per_prompt=2).samples_per_prompt == 2
    with pytest.raises(Exception, match="did you mean 'dynamic_degree'"):
        _suite(tmp_path, prompts={"source": "vbench", "dimensions": ["dynamic_degre"]})
    with pytest.raises(Exception, match="for source 'vbench'"):
        _suite(tmp_path, prompts={"source": "world", "dimensions": ["dynamic_degree"]})


def test_bad_dimension_in_a_suite_file_is_one_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("name: v\nprompts: {source: vbench, dimensions: [camera_motoin]}\n"
                 "generators: [{name: w, kind: world}]\nmetrics: [{name: frame_difference}]\n")
    with pytest.raises(SuiteError, match="camera_motoin"):
        load_suite(p)


def _camera_model(prompts, seeds):
    """A 'model' that does what VBench-2.0's camera prompts ask: a virtual camera over a still."""
    labels = vbench_camera_labels()
    out = []
    for p in prompts:
        shift, zoom = MOVES[labels[p]]
        out.append(virtual_camera(STILL, 10, (96, 160), shift, zoom))
    return out


def test_generate_on_vbench_prompts_then_score_the_vbench_folder(tmp_path):
    """Sample a generator on VBench's camera prompts (VBench's naming under vbench_videos/), score
    that folder with match: vbench, and export: the camera did what each prompt asked."""
    register("vbench-camera-model", _camera_model)
    n = 7  # the first 7 camera prompts: Garden, zoom in / out, tilt up / down, pan left / right, static
    gen_suite = Suite(name="gen", prompts={"source": "vbench", "dimensions": ["camera_motion"]}, samples_per_prompt=2,
                      generators=[{"name": "model", "kind": "callable", "target": "vbench-camera-model"}],
                      metrics=[{"name": "camera_motion"}], output={"dir": str(tmp_path / "gen")})
    out = run_suite(gen_suite, limit=n)
    prompts = [p for p, _ in vbench_prompts(["camera_motion"])[:n]]
    folder = tmp_path / "gen" / "vbench_videos" / "model"
    assert sorted(f.name for f in folder.iterdir()) == sorted(vbench_video_name(p, i) for p in prompts for i in range(2))
    assert [c.scores["camera_motion"] for c in out.results.clips] == [1.0] * (2 * n)

    score_suite = Suite(name="score", prompts={"source": "vbench", "dimensions": ["camera_motion"]}, samples_per_prompt=2,
                        generators=[{"name": "samples", "kind": "folder", "path": str(folder), "match": "vbench"}],
                        metrics=[{"name": "camera_motion"}, {"name": "frame_difference", "label": "temporal_flickering"}],
                        output={"dir": str(tmp_path / "score")})
    res = run_suite(score_suite, limit=n).results
    assert [c.scores["camera_motion"] for c in res.clips] == [1.0] * (2 * n)  # read back from the mp4s
    assert [c.prompt for c in res.clips] == [p for p in prompts for _ in range(2)]

    from vdeval.export.vbench import export_vbench

    export_vbench(tmp_path / "score", tmp_path / "export")
    flick = json.loads((tmp_path / "export" / "samples_eval_results.json").read_text())["temporal_flickering"]
    assert sorted(Path(v["video_path"]).name for v in flick[1]) == sorted(f.name for f in folder.iterdir())
    assert 0.9 < flick[0] < 1.0


def test_a_missing_vbench_sample_fails_alone(tmp_path):
    folder = tmp_path / "v"
    folder.mkdir()
    prompt = vbench_prompts(["camera_motion"])[0][0]
    from vdeval.video.io import write_video

    write_video(virtual_camera(STILL, 6, (96, 160)), folder / vbench_video_name(prompt, 0))
    s = Suite(name="m", prompts={"source": "vbench", "dimensions": ["camera_motion"]}, samples_per_prompt=2,
              generators=[{"name": "samples", "kind": "folder", "path": str(folder), "match": "vbench"}],
              metrics=[{"name": "frame_difference"}], output={"dir": str(tmp_path / "run")})
    res = run_suite(s, limit=1).results
    assert [f.clip_id for f in res.failures] == ["p000_s1"]
    # the missing sample is named by its prompt and sample (the folder pairs by content)
    assert f"no file for prompt {prompt!r} (sample 1)" in res.failures[0].error
    assert np.isfinite(res.clips[0].scores["frame_difference"])
