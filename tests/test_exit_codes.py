"""Exit codes CI can trust (issue 15): 0 ok, 1 a check rule failed, 2 the command or its input was
wrong, 3 a run finished with failed clips. Usage errors (unknown command or option, a value of the
wrong type, a missing argument) exited 1 "unexpected ..." because typer now vendors click and the
CLI looked for the standalone click's exception class."""
from __future__ import annotations

import pytest
import yaml


from helpers import TINY_SUITE, cli_exit_code, make_results, write_run

SUITE = TINY_SUITE


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("exit_codes")
    suite = d / "s.yaml"
    suite.write_text(SUITE)
    run = write_run(d / "run", make_results({"final": {"step": 1}}), with_clips=False)
    rules = d / "rules.yaml"
    rules.write_text(yaml.safe_dump([{"metric": "warping_error", "max": 0.03}]))
    failing = d / "failing.yaml"
    failing.write_text(yaml.safe_dump([{"metric": "warping_error", "max": -1.0}]))
    return {"suite": str(suite), "run": str(run), "rules": str(rules), "failing": str(failing), "dir": str(d)}


USAGE_ERRORS = {
    "no such command": ["frobnicate"],
    "run: unknown option": ["run", "{suite}", "--frobnicate"],
    "run: --limit abc": ["run", "{suite}", "--limit", "abc"],
    "run: --limit 0": ["run", "{suite}", "--limit", "0"],
    "run: missing suite": ["run"],
    "run: bad --device": ["run", "{suite}", "--device", "tpu"],
    "validate: unknown option": ["validate", "{suite}", "--strict"],
    "validate: missing suite": ["validate"],
    "report: unknown option": ["report", "{run}", "--baselin", "x"],
    "report: --previews abc": ["report", "{run}", "--previews", "abc"],
    "report: missing run": ["report"],
    "check: --baselin": ["check", "{run}", "--baselin", "{run}"],
    "check: missing run": ["check"],
    "audit: --n abc": ["audit", "--n", "abc"],
    "audit: --n 1": ["audit", "--n", "1"],
    "audit: unknown option": ["audit", "--metric", "frame_difference"],
    "weights: no such subcommand": ["weights", "instal", "i3d"],
    "weights install: missing name": ["weights", "install"],
    "weights verify: unknown option": ["weights", "verify", "--all"],
    "weights path: missing name": ["weights", "path"],
    "weights list: extra argument": ["weights", "list", "extra"],
}


@pytest.mark.parametrize("args", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_usage_error_exits_2_not_1(files, args, capsys):
    code = cli_exit_code([a.format(**files) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: unexpected" not in err and "Traceback" not in err
    assert "Error:" in err or "error:" in err


BAD_INPUT = {  # well-formed commands whose input is wrong: VdevalError, exit 2
    "run: missing suite file": ["run", "{dir}/missing.yaml"],
    "validate: bad suite": ["validate", "{rules}"],
    "report: not a run": ["report", "{dir}", "-o", "{dir}/r"],
    "check: unknown metric in rules": ["check", "{run}", "--rules", "{suite}"],
    "audit: unknown metric": ["audit", "--n", "2", "--metrics", "frame_diference", "--out", "{dir}/a"],
    "weights install: unknown name": ["weights", "install", "nope", "{suite}"],
    "weights verify: unknown name": ["weights", "verify", "nope"],
    "weights path: unknown name": ["weights", "path", "nope"],
}


@pytest.mark.parametrize("args", list(BAD_INPUT.values()), ids=list(BAD_INPUT))
def test_bad_input_exits_2(files, args, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "w"))
    code = cli_exit_code([a.format(**files) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: unexpected" not in err and "Traceback" not in err


def test_check_failing_rule_exits_1_passing_exits_0(files, capsys):
    assert cli_exit_code(["check", files["run"], "--rules", files["rules"]]) == 0
    assert cli_exit_code(["check", files["run"], "--rules", files["failing"]]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_commands_that_succeed_exit_0(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "w"))
    assert cli_exit_code(["validate", files["suite"]]) == 0
    assert cli_exit_code(["weights", "list"]) == 0
    assert cli_exit_code(["weights", "verify"]) == 0
    assert cli_exit_code(["weights", "path", "i3d"]) == 0


@pytest.mark.parametrize("rule", [{"metric": "warping_error", "max": float("nan")},
                                  {"metric": "warping_error", "min": float("-inf")},
                                  {"metric": "warping_error", "max_regression": float("inf")}])
def test_check_rule_that_cannot_fail_is_refused(files, tmp_path, capsys, rule):
    # issue 15: `max: .nan` passed every value (NaN compares false)
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump([rule]))
    assert cli_exit_code(["check", files["run"], "--rules", str(p), "--baseline", files["run"]]) == 2
    assert "finite number" in capsys.readouterr().err


def test_check_on_a_run_without_generators_is_not_a_pass(tmp_path, files, capsys):
    res = make_results({"final": {"step": 1}})
    res.generators, res.summary, res.clips = {}, [], []
    run = write_run(tmp_path / "empty", res, with_clips=False)
    assert cli_exit_code(["check", str(run), "--rules", files["rules"]]) == 2
    assert "applies to no generator" in capsys.readouterr().err


def test_audit_of_a_backbone_without_weights_is_not_a_silent_pass(tmp_path, monkeypatch, capsys):
    # issue 15: `vdeval audit --backbone identity_drift=clip` without clip weights exited 0, skipping it
    monkeypatch.setenv("VDEVAL_WEIGHTS_DIR", str(tmp_path / "w"))
    code = cli_exit_code(["audit", "--n", "2", "--backbone", "identity_drift=clip", "--corruptions", "flicker",
                          "--metrics", "frame_difference,identity_drift",
                          "--severities", "0.5", "--out", str(tmp_path / "a")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "identity_drift [clip] cannot be audited: backbone unavailable: clip weights missing" in err


# issue 24: each of these exited 1 "unexpected ..." where exit 2 and one line were promised
SUITE_CASES = {
    "an integer top-level key": (SUITE + "5: x\n", "[5]: Keys should be strings"),
    "kind: [world]": (SUITE.replace("kind: world}", "kind: [world]}"),
                      "generators[0].kind: a generator name must be text, got list ['world']"),
    "kind: {a: 1}": (SUITE.replace("kind: world}", "kind: {a: 1}}"), "a generator name must be text"),
    "call_args: {fps: [1]} beside fps": (SUITE.replace("kind: world}", "kind: diffusers, model: x, fps: 8, "
                                                       "call_args: {fps: [1]}}"), "call_args.fps: Input should be a valid number"),
    "seed: true": (SUITE + "seed: true\n", "seed: must be a number, not true"),
    "prompts.seed: false": (SUITE.replace("count: 2}", "count: 2, seed: false}"), "prompts.seed: must be a number, not false"),
    "world fps .inf": (SUITE.replace("frames: 4}", "frames: 4, fps: .inf}"), "world.fps: must be a finite number"),
    "output.batch_size: true": (SUITE + "output: {batch_size: true}\n", "output.batch_size: must be a number"),
}


@pytest.mark.parametrize("text,needle", list(SUITE_CASES.values()), ids=list(SUITE_CASES))
def test_suite_cases_exit_2_with_one_problem(tmp_path, capsys, text, needle):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    code = cli_exit_code(["validate", str(p)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err, err
    assert "unexpected" not in err and "Traceback" not in err


def test_undecodable_file_name_as_prompt_writes_every_file(tmp_path, capsys):
    """A file name whose bytes are not UTF-8, under `prompts: {source: folder}`, wrote results.json
    and then failed writing clips.csv: no clips.csv, no report, exit 1."""
    import os
    import shutil
    from pathlib import Path

    videos = tmp_path / "vids"
    videos.mkdir()
    name = os.fsdecode(b"caf\xe9-1.mp4")
    shutil.copy(Path(__file__).parent / "data" / "natural" / "carphone.mp4", videos / name)
    suite = tmp_path / "s.yaml"
    suite.write_text("name: und\nprompts: {source: folder, path: vids}\n"
                     "generators: [{name: f, kind: folder, path: vids, match: order}]\n"
                     "metrics: [{name: frame_difference}]\noutput: {dir: run}\n")
    code = cli_exit_code(["run", str(suite), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    run = tmp_path / "run"
    assert (run / "clips.csv").is_file() and (run / "report" / "index.html").is_file()
    text = (run / "clips.csv").read_text(encoding="utf-8")
    assert "caf\ufffd," in text  # the undecodable byte is U+FFFD in the prompt; the -1 sample suffix dropped
