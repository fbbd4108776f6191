"""Hostile and careless suite files (issue 15, items 7 and 8): each gets one clear problem from
`validate` (exit 2), never "unexpected ..." and never a run that writes where it should not."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from helpers import TINY_SUITE, cli_exit_code
from vdeval.errors import SuiteError
from vdeval.suite import CLIP_MEMORY_BUDGET, MAX_FRAMES, MAX_SIDE, clip_memory_bytes, load_suite

BASE = TINY_SUITE


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def _validate(tmp_path, text, capsys) -> tuple[int, str]:
    code = cli_exit_code(["validate", str(_write(tmp_path, text))])
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected" not in err, err
    return code, err


CASES = {
    "negative suite seed": (BASE + "seed: -1\n", "seed: Input should be greater than or equal to 0"),
    "negative prompt seed": (BASE.replace("count: 2}", "count: 2, seed: -5}"), "prompts.seed"),
    "seed past the RNG range": (BASE + "seed: 99999999999999999999\n", "seed: Input should be less than"),
    "seeds run past the limit": (BASE + f"seed: {2**32 - 2}\n", "clip seeds run up to"),
    "include: 5": (BASE + "include: 5\n", "include: must be a file name or a list of file names"),
    "include: [null]": (BASE + "include: [null]\n", "include: must be a file name"),
    "generator named 5": (BASE.replace("name: clean", "name: 5"), "generators[0].name: must be text, got int 5"),
    "generator name with NUL": (BASE.replace("name: clean", 'name: "a\\0b"'), "not a safe folder name"),
    "generator named ..": (BASE.replace("name: clean", "name: '..'"), "'..' is not a safe folder name"),
    "generator named .": (BASE.replace("name: clean", "name: '.'"), "'.' is not a safe folder name"),
    "generator named empty": (BASE.replace("name: clean", "name: ''"), "'' is not a safe folder name"),
    "generator name with a slash": (BASE.replace("name: clean", "name: a/b"), "not a safe folder name"),
    "generator name with _": (BASE.replace("name: clean", "name: _real"), "not a safe folder name"),
    "suite named ../x": (BASE.replace("name: tiny", "name: ../x"), "name: '../x' is not a safe folder name"),
    "height 1e9": (BASE.replace("height: 16", "height: 1000000000"), f"less than or equal to {MAX_SIDE}"),
    "frames 100000": (BASE.replace("frames: 4", "frames: 100000"), f"less than or equal to {MAX_FRAMES}"),
    "product past the memory budget": (BASE.replace("height: 16, width: 16, frames: 4",
                                                    "height: 1024, width: 1024, frames: 1000"), "GiB per clip"),
    "prompt count 1e9": (BASE.replace("count: 2", "count: 1000000000"), "prompts.count"),
    "check with nan bound": (BASE + "checks: [{metric: frame_difference, max: .nan}]\n", "finite number"),
    "check with inf bound": (BASE + "checks: [{metric: frame_difference, min: -.inf}]\n", "finite number"),
    "check on an unknown metric": (BASE + "checks: [{metric: frame_diference, max: 1}]\n",
                                   "checks[0].metric: 'frame_diference' is not a metric of this suite "
                                   "(did you mean 'frame_difference'?)"),
    "check on an unknown generator": (BASE + "checks: [{metric: frame_difference, generator: claen, max: 1}]\n",
                                      "checks[0].generator: 'claen' is not a generator of this suite"),
    "output.dir with NUL": (BASE + 'output: {dir: "a\\0b"}\n', "output.dir: contains a NUL byte"),
    "reference num_frames 100000": (BASE.replace("kind: world}", "kind: reference, checkpoint: 'shipped:final', "
                                                 "task: long, num_frames: 100000}"),
                                    "generators[0].num_frames: 100000 is outside 1..1024"),
    "diffusers height 1e9": (BASE.replace("kind: world}", "kind: diffusers, model: x, call_args: {height: 1000000000}}"),
                             "generators[0].call_args.height: 1000000000 is outside 1..1024"),
    "a key twice": (BASE + "metrics: [{name: warping_error}]\n", "key 'metrics' appears twice in one mapping"),
}


@pytest.mark.parametrize("text,needle", list(CASES.values()), ids=list(CASES))
def test_bad_suite_is_one_problem_exit_2(tmp_path, capsys, text, needle):
    code, err = _validate(tmp_path, text, capsys)
    assert code == 2 and needle in err, err


def test_limits_accept_the_shipped_suites_and_a_large_world(tmp_path):
    for p in sorted((Path(__file__).resolve().parents[1] / "suites").glob("*.yaml")):
        if "checks" not in p.stem:
            load_suite(p)
    load_suite(_write(tmp_path, BASE.replace("height: 16, width: 16, frames: 4", "height: 256, width: 256, frames: 256")))
    assert clip_memory_bytes(256, 256, 256) < CLIP_MEMORY_BUDGET < clip_memory_bytes(1024, 1024, 1024)


def test_missing_include_names_the_including_file(tmp_path, capsys):
    _write(tmp_path, "include: [shared.yaml, gone.yaml]\n" + BASE, "top.yaml")
    _write(tmp_path, "description: shared\n", "shared.yaml")
    code = cli_exit_code(["validate", str(tmp_path / "top.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "gone.yaml: no such suite file (included by" in err and "top.yaml)" in err


def test_yaml_alias_bomb_is_refused_quickly(tmp_path, capsys):
    # "billion laughs": 9 levels of 9 aliases expand to 9**9 strings when merged and validated
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, cur in zip("abcdefgh", "bcdefghi"):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    code, err = _validate(tmp_path, BASE + "\n".join(lines) + "\n", capsys)
    assert code == 2 and "expands to more than" in err and "aliases" in err


def test_recursive_alias_and_deep_nesting_and_huge_files(tmp_path, capsys):
    code, err = _validate(tmp_path, BASE + "x: &x [*x]\n", capsys)
    assert code == 2 and "recursive" in err
    code, err = _validate(tmp_path, BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", capsys)
    assert code == 2 and "nested too deeply" in err
    code, err = _validate(tmp_path, BASE + "description: '" + "x" * (2 << 20) + "'\n", capsys)
    assert code == 2 and "too large for a suite file" in err


def test_a_few_aliases_are_still_fine(tmp_path):
    s = load_suite(_write(tmp_path, BASE + "real: &r {kind: world, count: 4}\ndescription: ok\n"))
    assert s.real.count == 4


def test_output_dir_is_relative_to_the_suite_file(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = _write(tmp_path / "suites", BASE + "output: {dir: out/run}\n")
    monkeypatch.chdir(elsewhere)
    s = load_suite(p)
    assert s.output_dir() == (tmp_path / "suites" / "out" / "run").resolve()
    assert s.output.dir == "out/run"  # the recorded suite stays as written: portable hashes
    assert load_suite(_write(tmp_path / "suites", BASE, "d.yaml")).output_dir() == elsewhere.resolve() / "runs" / "tiny"


@pytest.mark.slow
def test_run_writes_into_output_dir_next_to_the_suite(tmp_path, monkeypatch, capsys):
    (tmp_path / "suites").mkdir()
    p = _write(tmp_path / "suites", BASE + "output: {dir: out/run}\n")
    monkeypatch.chdir(tmp_path)
    assert cli_exit_code(["run", str(p), "--no-report", "--no-progress"]) == 0
    assert (tmp_path / "suites" / "out" / "run" / "results.json").is_file()
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder_is_one_line(tmp_path, capsys, monkeypatch):
    suite = _write(tmp_path, BASE)
    (tmp_path / "afile").write_text("x")
    code = cli_exit_code(["run", str(suite), "--out", str(tmp_path / "afile" / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create output directory" in err and "Traceback" not in err

    def deny(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", deny)  # root ignores chmod: simulate a read-only file system
    code = cli_exit_code(["run", str(suite), "--out", str(tmp_path / "ro" / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot create output directory" in err and "Permission denied" in err


def test_load_suite_raises_suite_error_not_type_error(tmp_path):
    with pytest.raises(SuiteError, match="include"):
        load_suite(_write(tmp_path, BASE + "include: {a: 1}\n"))
    assert os.path.exists(tmp_path / "s.yaml")


def test_run_dir_refuses_names_that_leave_their_folder(tmp_path):
    from vdeval.errors import VdevalError
    from vdeval.store import RunDir

    run = RunDir(tmp_path / "run")
    assert run.clip_path("final", "p000_s0") == tmp_path / "run" / "clips" / "final" / "p000_s0.npy"
    for gen, clip in [("..", "p000_s0"), (".", "x"), ("", "x"), ("a/b", "x"), ("g", "../x"), ("g", "a\0")]:
        with pytest.raises(VdevalError, match="cannot name a folder or file"):
            run.clip_path(gen, clip)


def test_unwritable_cache_dir_is_one_line(tmp_path, capsys):
    suite = _write(tmp_path, BASE.replace("frame_difference}", "warping_error, backbone: dis}"))
    (tmp_path / "afile").write_text("x")
    code = cli_exit_code(["run", str(suite), "--out", str(tmp_path / "run"), "--cache-dir",
                          str(tmp_path / "afile" / "cache"), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write cached features under" in err and "Traceback" not in err


def test_report_and_check_outputs_that_cannot_be_written_are_one_line(tmp_path, capsys):
    from vdeval.errors import VdevalError, WriteError
    from vdeval.store import atomic_write_text

    (tmp_path / "afile").write_text("x")
    with pytest.raises(WriteError, match="cannot write .*afile/x.txt") as e:
        atomic_write_text(tmp_path / "afile" / "x.txt", "y")
    assert isinstance(e.value, VdevalError) and isinstance(e.value, OSError)  # old `except OSError` still hold
    from helpers import make_results, write_run
    run = write_run(tmp_path / "run", make_results({"final": {"step": 1}}), with_clips=False)
    rules = _write(tmp_path, "- {metric: warping_error, max: 1}\n", "rules.yaml")
    code = cli_exit_code(["check", str(run), "--rules", str(rules), "--junit", str(tmp_path / "afile" / "j.xml")])
    err = capsys.readouterr().err
    assert code == 2 and "cannot write" in err and "Traceback" not in err
