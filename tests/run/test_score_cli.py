"""`vdeval score PATH... --metrics`: folders and files scored without a suite, through the same
engine and run folder, the suite written beside the results so `vdeval run` re-runs it; prompts
from VBench-style names by default, or from a sidecar, paired by text across generators."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml
from helpers import cli_exit_code

NATURAL = Path(__file__).resolve().parents[1] / "data" / "natural"


def _folders(tmp_path):
    a, b = tmp_path / "model_a", tmp_path / "model b"
    a.mkdir()
    b.mkdir()
    shutil.copy(NATURAL / "carphone.mp4", a / "a man talks in a car-0.mp4")
    shutil.copy(NATURAL / "bigbuckbunny_180p.mp4", a / "a rabbit walks-0.mp4")
    shutil.copy(NATURAL / "carphone.mp4", b / "zz.mp4")
    shutil.copy(NATURAL / "bigbuckbunny_180p.mp4", b / "aa.mp4")
    (tmp_path / "p.csv").write_text("file,prompt\nzz.mp4,a man talks in a car\naa.mp4,a rabbit walks\n"
                                    "a man talks in a car-0.mp4,a man talks in a car\n"
                                    "a rabbit walks-0.mp4,a rabbit walks\n")
    return a, b


def test_score_folders_by_names_writes_a_rerunnable_suite(tmp_path):
    a, _ = _folders(tmp_path)
    out = tmp_path / "run"
    assert cli_exit_code(["score", str(a), "--metrics", "frame_difference", "--out", str(out), "--no-progress",
                          "--no-report"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert [c["prompt"] for c in res["clips"]] == ["a man talks in a car", "a rabbit walks"]
    suite = yaml.safe_load((out / "suite.yaml").read_text())
    assert suite["generators"][0]["path"] == str(a.resolve()) and suite["metrics"] == [{"name": "frame_difference"}]
    assert cli_exit_code(["run", str(out / "suite.yaml"), "--no-progress", "--no-report"]) == 0  # re-runs as a suite


def test_score_with_a_sidecar_pairs_generators_by_prompt(tmp_path):
    a, b = _folders(tmp_path)
    out = tmp_path / "run"
    assert cli_exit_code(["score", str(a), str(b), "--metrics", "frame_difference", "--prompts", str(tmp_path / "p.csv"),
                          "--out", str(out), "--no-progress", "--no-report"]) == 0
    clips = json.loads((out / "results.json").read_text())["clips"]
    by = {(c["generator"], c["clip_id"]): c for c in clips}
    assert len(clips) == 4 and all(c["error"] is None for c in clips)
    assert by[("model_a", "p000_s0")]["prompt"] == by[("model_b", "p000_s0")]["prompt"] == "a man talks in a car"
    # the same video content under the same id (byte-identical copies): paired by content
    assert by[("model_a", "p000_s0")]["scores"]["frame_difference"] == by[("model_b", "p000_s0")]["scores"]["frame_difference"]


def test_score_files_and_bad_input(tmp_path, capsys):
    a, _ = _folders(tmp_path)
    out = tmp_path / "run"
    files = sorted(str(p) for p in a.iterdir())
    assert cli_exit_code(["score", *files, "--metrics", "frame_difference", "--out", str(out), "--no-progress",
                          "--no-report"]) == 0
    assert len(json.loads((out / "results.json").read_text())["clips"]) == 2
    assert cli_exit_code(["score", str(tmp_path / "nowhere"), "--metrics", "frame_difference"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
