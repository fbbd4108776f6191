"""One writer per run folder (issue 15, item 9): two runs into one folder raced silently, the last
writer winning. Now the second is refused with the holder named; a lock left by a dead process
is taken over with a note."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import TINY_SUITE, cli_exit_code, write_suite
from vdeval.store import LOCK_FILE, RunLock, RunLockedError

ROOT = Path(__file__).resolve().parents[2]
SUITE = TINY_SUITE


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_run_into_a_held_folder_is_refused_naming_the_holder(tmp_path, capsys):
    # the holder is another live process, as with two CI jobs sharing a runner's folder
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from vdeval.store import RunLock
            RunLock({str(run)!r}, command="vdeval run nightly.yaml").acquire()
            print("held", flush=True)
            time.sleep(60)
        """)], env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = cli_exit_code(["run", str(write_suite(tmp_path, SUITE)), "--out", str(run), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"is in use by another run: pid {holder.pid} on {socket.gethostname()}" in err
        assert "vdeval run nightly.yaml" in err and "Traceback" not in err
        assert not (run / "results.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    dead = _dead_pid()
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": "earlier",
                                             "command": "vdeval run killed.yaml", "token": "x"}))
    code = cli_exit_code(["run", str(write_suite(tmp_path, SUITE)), "--out", str(run), "--no-progress", "--no-report"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"taking over the lock of a run that is no longer running (pid {dead}" in err
    assert (run / "results.json").is_file()
    assert not (run / LOCK_FILE).exists()  # released at the end


def test_lock_from_another_host_is_never_guessed_at(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": _dead_pid(), "host": "other-node", "started": "t",
                                             "command": "vdeval run x.yaml"}))
    with pytest.raises(RunLockedError, match=f"on other-node since t.*delete {run / LOCK_FILE}"):
        RunLock(run).acquire()


def test_unreadable_lock_is_held_not_broken(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text("{torn")
    with pytest.raises(RunLockedError, match=r"pid \? on \?"):
        RunLock(run).acquire()


def test_lock_is_released_when_the_run_fails_and_not_taken_from_a_successor(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with RunLock(run, command="a"):
            assert json.loads((run / LOCK_FILE).read_text())["pid"] == os.getpid()
            raise RuntimeError("boom")
    assert not (run / LOCK_FILE).exists()
    first = RunLock(run, command="first").acquire()
    (run / LOCK_FILE).unlink()  # someone removed it by hand and a second run took it
    second = RunLock(run, command="second").acquire()
    first.release()  # must not remove the second run's lock
    assert json.loads((run / LOCK_FILE).read_text())["command"] == "second"
    second.release()
    assert not (run / LOCK_FILE).exists()


def test_one_process_cannot_take_its_own_lock_twice(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLockedError):
            RunLock(tmp_path / "run").acquire()
