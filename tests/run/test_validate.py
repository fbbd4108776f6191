"""`vdeval validate`: the fast check never imports torch; `--deep` finds what only files and
weights tell (missing weights, folder files that match no clip, counts that do not match), one
line per problem and exit 2."""
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from helpers import cli_exit_code, write_suite
from vdeval import registry

ROOT = Path(__file__).resolve().parents[2]


def _all_metrics_suite(tmp_path) -> Path:
    """A suite naming every registered metric and every generator kind that needs no model."""
    suite = {"name": "everything", "world": {"height": 16, "width": 16, "frames": 4},
             "prompts": {"source": "world", "count": 2},
             "generators": [{"name": "w", "kind": "world", "corruption": {"name": "flicker"}},
                            {"name": "f", "kind": "folder", "path": "videos"},
                            {"name": "r", "kind": "reference", "checkpoint": "shipped:final"}],
             "real": {"kind": "world", "count": 4},
             "metrics": [{"name": m} for m in registry.names("metric")],
             "checks": [{"metric": "fvd", "max": 100}]}
    path = tmp_path / "everything.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_fast_validate_imports_no_torch(tmp_path):
    suites = [str(p) for p in sorted((ROOT / "suites").glob("*.yaml")) if p.name != "checks-example.yaml"]
    suites.append(str(_all_metrics_suite(tmp_path)))
    code = ("import json, sys\nfrom vdeval import cli\ncodes = []\n"
            "for s in sys.argv[1:]:\n"
            "    try:\n        cli.main(['validate', s])\n        codes.append(0)\n"
            "    except SystemExit as e:\n        codes.append(e.code)\n"
            "print(json.dumps({'codes': codes, 'torch': sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torchvision', 'open_clip', 'timm', 'diffusers'))}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, *suites], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["codes"] == [0] * len(suites), out.stdout + out.stderr
    assert got["torch"] == []


def _deep(path, capsys) -> tuple[int, list[str]]:
    code = cli_exit_code(["validate", str(path), "--deep"])
    captured = capsys.readouterr()
    return code, [ln.strip() for ln in (captured.err + captured.out).splitlines()]


def test_deep_lists_folder_files_that_match_no_clip(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("p000_s0.mp4", "p2_s0.mp4", "notes.mp4"):  # p001_s0 is missing, two files match no clip
        (videos / name).write_bytes(b"x")
    path = write_suite(tmp_path, {"name": "f", "prompts": {"source": "list", "items": ["a", "b"]},
                             "generators": [{"name": "mine", "kind": "folder", "path": "videos"}],
                             "metrics": [{"name": "frame_difference"}]}, "suite.yaml")
    assert cli_exit_code(["validate", str(path)]) == 0  # the fast check reads no folder
    code, lines = _deep(path, capsys)
    assert code == 2
    assert lines[0].endswith("suite.yaml: 2 problems")
    assert lines[1].startswith("generators[0] (mine): 2 file(s) in ") and "match no clip: notes.mp4, p2_s0.mp4" in lines[1]
    assert lines[2] == "generators[0] (mine): no file for 1 clip(s): p001_s0"


def test_deep_compares_file_and_prompt_counts(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (videos / name).write_bytes(b"x")
    path = write_suite(tmp_path, {"name": "f", "prompts": {"source": "list", "items": ["a", "b", "c"], "count": 2},
                             "samples_per_prompt": 2,
                             "generators": [{"name": "mine", "kind": "folder", "path": "videos", "match": "order"},
                                            {"name": "gone", "kind": "folder", "path": "nowhere"}],
                             "real": {"kind": "folder", "path": "videos", "count": 16},
                             "metrics": [{"name": "frame_difference"}]}, "suite.yaml")
    code, lines = _deep(path, capsys)
    assert code == 2
    assert lines[0] == f"note: real.count is 16 but {videos} holds 2 videos: the real set will have 2"
    assert lines[1].endswith("suite.yaml: 3 problems")
    assert lines[2] == ("prompts.count: 2 given, but the list source holds 3 prompts and all are used (count applies "
                        "to world prompts; remove it, or use --limit N)")
    assert lines[3] == (f"generators[0] (mine): {videos} holds 2 videos for 6 clips (3 prompts x 2 samples; "
                        "match: order pairs the i-th file with the i-th clip)")
    assert lines[4].startswith("generators[1] (gone): generator 'gone': folder ") and "does not exist" in lines[4]
    assert len(lines) == 5


def test_deep_reports_missing_weights_and_prompt_files(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "weights"))
    path = write_suite(tmp_path, {"name": "w", "prompts": {"source": "file", "file": "prompts.txt"},
                             "generators": [{"name": "clean", "kind": "world"},
                                            {"name": "ref", "kind": "reference", "checkpoint": "ckpt/none"}],
                             "real": {"kind": "world", "count": 4},
                             "metrics": [{"name": "fvd", "backbone": "i3d"}, {"name": "frame_difference"}]}, "suite.yaml")
    code, lines = _deep(path, capsys)  # every problem at once: an unreadable prompt file hides nothing
    assert code == 2 and len(lines) == 4 and lines[0].endswith("3 problems")
    assert lines[1] == f"prompts: prompts.file: {tmp_path / 'prompts.txt'}: no such prompts file"
    assert lines[2].startswith("generators[1] (ref): reference checkpoint 'ckpt/none' not found")
    assert lines[3].startswith("metrics[0]: metric fvd: i3d weights missing: i3d_torchscript.pt expected at "
                               f"{tmp_path / 'weights' / 'i3d' / 'i3d_torchscript.pt'}")
    assert "vdeval weights install i3d" in lines[3]
    (tmp_path / "prompts.txt").write_text("a red circle\na blue square\n")
    code, lines = _deep(path, capsys)
    assert code == 2 and len(lines) == 3  # the two others, nothing new


def test_deep_passes_a_world_suite(tmp_path, capsys):
    path = write_suite(tmp_path, {"name": "ok", "world": {"height": 16, "width": 16, "frames": 4},
                             "prompts": {"source": "world", "count": 2},
                             "generators": [{"name": "clean", "kind": "world"},
                                            {"name": "final", "kind": "reference", "checkpoint": "shipped:final"}],
                             "real": {"kind": "world", "count": 4},
                             "metrics": [{"name": "fvd"}, {"name": "warping_error"}]}, "suite.yaml")
    code, lines = _deep(path, capsys)
    assert code == 0 and lines == [f"{path}: ok (2 generators, 2 metrics; prompts, folders, generators and weights checked)"]


BROKEN = {
    "name": "broken", "world": {"height": -3, "width": 32, "frames": 8}, "prompts": {"source": "world", "count": 2},
    "generators": [{"name": "a", "kind": "world", "corruptoin": {"name": "flicker"}}, {"name": "b", "kind": "wrold"},
                   7, {"name": "r", "kind": "reference", "checkpoint": "ckpt/none"}],
    "metrics": [{"name": "frame_difference", "backbnoe": "dis"}, {"name": "warp_error"}, {"name": "fvd"},
                {"name": "fvd", "label": "fvd_i3d", "backbone": "i3d"}],
    "checks": [{"metric": "frame_diference", "max": 1}, {"metric": "frame_difference", "mx": 1},
               {"metric": "frame_difference", "generator": "zz", "max": 1}],
    "baseline": "c",
}
FIXED = {
    "name": "broken", "world": {"height": 16, "width": 32, "frames": 8}, "prompts": {"source": "world", "count": 2},
    "generators": [{"name": "a", "kind": "world", "corruption": {"name": "flicker"}}, {"name": "b", "kind": "world"},
                   {"name": "r", "kind": "reference", "checkpoint": "shipped:final"}],
    "real": {"kind": "world", "count": 4},
    "metrics": [{"name": "frame_difference"}, {"name": "warping_error"}, {"name": "fvd"}],
    "checks": [{"metric": "frame_difference", "max": 1}, {"metric": "frame_difference", "max": 1},
               {"metric": "frame_difference", "generator": "a", "max": 1}],
    "baseline": "a",
}


def test_validate_lists_every_problem_at_once_not_in_rounds(tmp_path, capsys):
    """Schema errors (a bad world size, an unknown key in a metric, a generator that is no mapping)
    no longer hide the checks after the schema: the names, kinds, checks and baseline."""
    path = write_suite(tmp_path, BROKEN, "suite.yaml")
    assert cli_exit_code(["validate", str(path)]) == 2
    lines = [ln.strip() for ln in capsys.readouterr().err.splitlines()]
    assert lines[0].endswith("suite.yaml: 12 problems") and len(lines) == 13
    for needle in ("world.height:", "generators[2]: Input should be a valid dictionary", "metrics[0].backbnoe: unknown key",
                   "generators[0].corruptoin: unknown key", "generators[1].kind: unknown generator 'wrold'",
                   "metrics[1].name: unknown metric 'warp_error'", "metrics[2]: fvd compares with a real set",
                   "metrics[3]: fvd compares with a real set",
                   "baseline: 'c' is not a generator", "checks[0].metric: 'frame_diference'",
                   "checks[1]: unknown key 'mx'", "checks[2].generator: 'zz'"):
        assert sum(ln.startswith(needle) for ln in lines[1:]) == 1, needle
    # fixing exactly what was listed leaves nothing: no second round
    assert cli_exit_code(["validate", str(write_suite(tmp_path, FIXED, "suite.yaml"))]) == 0


def test_deep_adds_its_problems_to_the_fast_ones(tmp_path, capsys, monkeypatch):
    """--deep checks the parts that parsed even when the fast check found problems: one list."""
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "weights"))
    path = write_suite(tmp_path, {**BROKEN, "real": {"kind": "world", "count": 4}}, "suite.yaml")
    code, lines = _deep(path, capsys)
    assert code == 2 and lines[0].endswith("suite.yaml: 12 problems") and len(lines) == 13
    deep = lines[-2:]  # after the fast ones, with the entries' own positions
    assert deep[0].startswith("generators[3] (r): reference checkpoint 'ckpt/none' not found")
    assert deep[1].startswith("metrics[3]: metric fvd_i3d: i3d weights missing")
