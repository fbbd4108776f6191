"""`vdeval check RUN --baseline RUN`: regression rules for CI. Exit 0 all hold, 1 any fails, 2 bad input.

rules.py holds the rules (their schema, parsing and evaluation on typed results, JUnit and
Markdown output); cli.py is the thin command. See rules.py for the rule language.
"""
from __future__ import annotations

from vdeval.check.rules import Outcome, Rule, RulesError, junit_xml, load_rules, markdown, parse_rules, run_check


def register(app) -> None:
    """Add `vdeval check` to the CLI (imports typer only when the CLI is built)."""
    from vdeval.check.cli import register as register_cli

    register_cli(app)


__all__ = ["Outcome", "Rule", "RulesError", "parse_rules", "load_rules", "run_check", "junit_xml", "markdown",
           "register"]
