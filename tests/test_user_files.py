"""Files a user names, read one way (issue 24, item 3 and the file cases of item 4): special files
(FIFOs, devices) are refused before they block or fill memory, sizes are capped while reading
(st_size is 0 for devices and /proc files), text must be UTF-8 and JSON is refused past a nesting
depth. Each case is exit 2 with one line, through every command that reads such a file."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from helpers import TINY_SUITE, cli_exit_code, make_results, write_run
from vdeval.errors import ResultsError, SuiteError, VdevalError
from vdeval.userfiles import json_depth, read_bytes, read_json, read_text

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _within(seconds: float, fn):
    """fn() in a daemon thread: a read that blocks (a FIFO without a writer) fails the test
    instead of hanging it."""
    out = {}

    def go():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            out["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked reading a special file"
    if "error" in out:
        raise out["error"]
    return out["value"]


def _cli(args, capsys, seconds: float = 60) -> tuple[int, str]:
    code = _within(seconds, lambda: cli_exit_code([str(a) for a in args]))
    err = capsys.readouterr().err
    assert "Traceback" not in err and "unexpected" not in err, err
    return code, err


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_reader_refuses_special_files_and_caps_size_while_reading(tmp_path):
    with pytest.raises(SuiteError, match="named pipe"):
        _within(10, lambda: read_text(_fifo(tmp_path / "p.yaml"), 1 << 20, "suite file", SuiteError))
    with pytest.raises(VdevalError, match="character device"):
        _within(10, lambda: read_bytes("/dev/zero", 1 << 20))
    with pytest.raises(VdevalError, match="is a folder"):
        read_bytes(tmp_path, 10)
    with pytest.raises(VdevalError, match="no such prompts file"):
        read_bytes(tmp_path / "gone.txt", 10, "prompts file")
    (tmp_path / "ok.txt").write_bytes(b"x" * 10)
    assert read_bytes(tmp_path / "ok.txt", 10) == b"x" * 10
    with pytest.raises(VdevalError, match="larger than 9 bytes"):
        read_bytes(tmp_path / "ok.txt", 9)
    proc = Path("/proc/self/status")  # st_size 0, yet more than 100 bytes to read
    if proc.exists():
        assert proc.stat().st_size == 0
        with pytest.raises(VdevalError, match="larger than 100 bytes"):
            read_bytes(proc, 100)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(VdevalError, match="not UTF-8 text .byte 3 on line 1"):
        read_text(tmp_path / "latin1.txt", 100)
    (tmp_path / "bom.txt").write_bytes("\ufeffhé".encode("utf-8"))
    assert read_text(tmp_path / "bom.txt", 100) == "hé"


def test_json_depth_guard(tmp_path):
    assert json_depth('{"a": [1, {"b": "[[[[{{"}]}') == 3  # brackets in strings are not structure
    assert json_depth('"\\"[[["') == 0 and json_depth("") == 0
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ResultsError, match="nested 200,000 levels deep"):
        read_json(deep, 1 << 30, "results file", ResultsError)
    (tmp_path / "ok.json").write_text('{"a": [[1]]}')
    assert read_json(tmp_path / "ok.json", 100) == {"a": [[1]]}


def test_a_suite_that_is_a_fifo_or_a_device_is_one_line(tmp_path, capsys):
    code, err = _cli(["validate", _fifo(tmp_path / "s.yaml")], capsys)
    assert code == 2 and "s.yaml: is a named pipe (FIFO), not a regular file" in err
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    code, err = _cli(["validate", tmp_path / "zero.yaml"], capsys)
    assert code == 2 and "character device" in err


def test_includes_fifo_device_proc_and_non_yaml(tmp_path, capsys, monkeypatch):
    _fifo(tmp_path / "pipe.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    for inc in ("pipe.yaml", "zero.yaml"):
        (tmp_path / "top.yaml").write_text(f"include: {inc}\n" + TINY_SUITE)
        code, err = _cli(["validate", tmp_path / "top.yaml"], capsys)
        assert code == 2 and f"{inc}: is a" in err and "(included by" in err, err
    # an include of an arbitrary file is refused before it is read: its lines never come back
    secret = tmp_path / "secret"
    secret.write_text("root: $6$hash-that-must-not-be-printed\n")
    (tmp_path / "top.yaml").write_text(f"include: {secret}\n" + TINY_SUITE)
    code, err = _cli(["validate", tmp_path / "top.yaml"], capsys)
    assert code == 2 and "an include must be a .yaml or .yml file" in err and "hash-that" not in err
    proc = Path("/proc/self/status")
    if proc.exists():  # st_size 0: the old limit on st_size let any size through
        import vdeval.suite

        monkeypatch.setattr(vdeval.suite, "MAX_SUITE_BYTES", 200)
        os.symlink(proc, tmp_path / "status.yaml")
        (tmp_path / "top.yaml").write_text("include: status.yaml\n")
        code, err = _cli(["validate", tmp_path / "top.yaml"], capsys)
        assert code == 2 and "too large for a suite file" in err


def _prompts_suite(tmp_path: Path, prompts: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(TINY_SUITE.replace("prompts: {source: world, count: 2}",
                                    f"prompts: {{source: file, file: {prompts}}}"))
    return p


def test_prompts_file_fifo_device_and_non_utf8(tmp_path, capsys):
    _fifo(tmp_path / "pipe.txt")
    os.symlink("/dev/zero", tmp_path / "zero.txt")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    for name, needle in (("pipe.txt", "named pipe"), ("zero.txt", "character device"),
                         ("latin1.txt", "not UTF-8 text")):
        suite = _prompts_suite(tmp_path, name)
        code, err = _cli(["run", suite, "--out", tmp_path / f"run_{name}", "--no-report", "--no-progress"], capsys)
        assert code == 2 and f"prompts.file: {tmp_path / name}: " in err and needle in err, err
        assert len(err.strip().splitlines()) == 1


def test_rules_file_fifo_and_non_utf8(tmp_path, capsys):
    run = write_run(tmp_path / "run", make_results({"final": {"step": 1}}), with_clips=False)
    (tmp_path / "latin1.yaml").write_bytes("- {metric: warping_error, max: 1, name: caf\xe9}\n".encode("latin-1"))
    code, err = _cli(["check", run, "--rules", tmp_path / "latin1.yaml"], capsys)
    assert code == 2 and "latin1.yaml: not UTF-8 text" in err
    code, err = _cli(["check", run, "--rules", _fifo(tmp_path / "pipe.yaml")], capsys)
    assert code == 2 and "named pipe" in err


def test_results_json_fifo_and_deep_nesting(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    _fifo(run / "results.json")
    for cmd in (["report", run, "-o", tmp_path / "r"], ["check", run]):
        code, err = _cli(cmd, capsys)
        assert code == 2 and "named pipe" in err, err
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "results.json").write_text("[" * 200_000 + "]" * 200_000)
    for cmd in (["report", deep, "-o", tmp_path / "r2"], ["check", deep]):
        code, err = _cli(cmd, capsys)
        assert code == 2 and "nested 200,000 levels deep" in err, err


def test_frame_folder_with_a_fifo_frame_is_an_error_row(tmp_path):
    import numpy as np
    from PIL import Image

    import vdeval

    clip = tmp_path / "videos" / "clip_a"
    clip.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(clip / f"{i:03d}.png")
    _fifo(clip / "003.png")
    df = _within(60, lambda: vdeval.evaluate(tmp_path / "videos", metrics=["frame_difference"], device="cpu"))
    assert len(df) == 1 and "003.png: is a named pipe" in df["error"][0]
