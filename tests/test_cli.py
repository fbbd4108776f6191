"""The CLI through its real entry point: one line per problem, exit code 2, no traceback."""
import json

import pytest

from helpers import cli_exit_code, write_suite


def run_cli(args, capsys):
    code = cli_exit_code(args)
    out = capsys.readouterr()
    return code, out.out, out.err


TINY = """
name: tiny
world: {height: 24, width: 24, frames: 6}
prompts: {source: world, count: 3}
generators:
  - {name: clean, kind: world}
  - {name: flicker, kind: world, corruption: {name: flicker, severity: 0.8}}
metrics:
  - {name: frame_difference}
"""


def test_validate_ok_and_problems(tmp_path, capsys):
    code, out, _ = run_cli(["validate", str(write_suite(tmp_path, TINY))], capsys)
    assert code == 0 and "ok" in out
    bad = write_suite(tmp_path, TINY.replace("frame_difference", "frame_diference"))
    code, _, err = run_cli(["validate", str(bad)], capsys)
    assert code == 2 and "metrics[0].name" in err and "did you mean 'frame_difference'" in err
    assert "Traceback" not in err


def test_run_writes_results_and_prints_summary(tmp_path, capsys):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(["run", str(write_suite(tmp_path, TINY)), "--out", str(out_dir), "--no-report", "--no-progress"], capsys)
    assert code == 0
    assert "frame_difference" in out and "flicker" in out
    results = json.loads((out_dir / "results.json").read_text())
    assert {s["generator"] for s in results["summary"]} == {"clean", "flicker"}


@pytest.mark.parametrize("args,needle", [
    (["run", "missing.yaml"], "no such suite file"),
    (["run", "{suite}", "--out", "{file}"], "is a file"),
    (["run", "{notyaml}"], "not valid YAML"),
    (["run", "{suite}", "--device", "cuda"], "CUDA"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, needle):
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    notyaml = tmp_path / "n.yaml"
    notyaml.write_text("name: [\n")
    fill = {"suite": str(write_suite(tmp_path, TINY)), "file": str(a_file), "notyaml": str(notyaml)}
    code, _, err = run_cli([x.format(**fill) for x in args], capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
