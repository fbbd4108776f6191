"""Every command's --help as a person reads it: arguments in the usage line by name (SUITE, not
typer's {suite}), flags as --x / --no-x (no <bool>), and every option with a description."""
from __future__ import annotations

import re

import pytest
from helpers import cli_exit_code

COMMANDS = [["run"], ["validate"], ["report"], ["check"], ["audit"], ["log"], ["weights", "list"],
            ["weights", "install"], ["weights", "verify"], ["weights", "path"], []]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "vdeval")
def test_help_reads_right(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option, so each line holds its description
    assert cli_exit_code([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert not re.search(r"<bool>|\{\w+\}", out), out
    options = [ln.strip() for ln in out.split("Options:", 1)[1].split("Commands:", 1)[0].splitlines()
               if ln.strip().startswith("-")]
    assert options and all(len(re.split(r"\s{2,}", ln)) >= 2 for ln in options), options  # flag, then its help


def test_usage_names_arguments_in_capitals(capsys):
    cli_exit_code(["run", "--help"])
    assert "run [OPTIONS] SUITE" in capsys.readouterr().out
    cli_exit_code(["weights", "install", "--help"])
    assert "install [OPTIONS] NAME [FILE]" in capsys.readouterr().out
