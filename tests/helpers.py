"""Shared test helpers (tests/ is on sys.path under pytest's default import mode)."""
from __future__ import annotations


def cli_exit_code(args: list[str]) -> int:
    """Run the real CLI entry point and return its exit code (0 when it returns normally)."""
    from vdeval import cli

    try:
        cli.main(args)
    except SystemExit as e:
        return e.code or 0
    return 0


# the smallest complete suite: two 16 x 16 world clips, one metric that needs no backbone weights
TINY_SUITE = """\
name: tiny
world: {height: 16, width: 16, frames: 4}
prompts: {source: world, count: 2}
generators:
  - {name: clean, kind: world}
metrics:
  - {name: frame_difference}
"""
