"""action.yml, the composite GitHub Action: its inputs and outputs, and its shell steps run here
in order (with the `${{ ... }}` expressions filled in as GitHub would) on a tiny suite."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text())

TINY = """
name: tiny
world: {height: 16, width: 16, frames: 6}
prompts: {source: world, count: 3, seed: 10}
generators:
  - {name: world, kind: world}
  - {name: flicker, kind: world, corruption: {name: flicker, severity: 0.5}}
metrics: [{name: frame_difference}]
checks: [{metric: frame_difference, generator: world, max: 1000}]
"""


def test_action_declares_inputs_outputs_and_steps():
    assert ACTION["runs"]["using"] == "composite"
    inputs = ACTION["inputs"]
    assert inputs["suite"]["required"] is True
    assert set(inputs) == {"suite", "out", "baseline", "rules", "check", "limit", "device", "install", "report-name"}
    assert all(v.get("description") for v in inputs.values())
    assert set(ACTION["outputs"]) == {"run-dir", "check-exit-code"}
    steps = ACTION["runs"]["steps"]
    assert all(s.get("shell") == "bash" for s in steps if "run" in s)  # composite steps must name a shell
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert "/report" in upload["with"]["path"] and "always()" in upload["if"]
    # inputs reach scripts through env only, never pasted into the script text (no shell injection)
    for s in steps:
        assert "${{" not in s.get("run", ""), s["name"]


def _expr(text: str, ctx: dict) -> str:
    def one(m):
        e = m.group(1).strip()
        if e.startswith("inputs."):
            return str(ctx["inputs"][e[7:]])
        if e == "github.action_path":
            return str(ROOT)
        m2 = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e)
        if m2:
            return ctx["steps"].get(m2.group(1), {}).get(m2.group(2), "")
        raise AssertionError(f"expression not handled by the test: {e}")
    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def _condition(cond: str | None, ctx: dict) -> bool:
    """The few `if:` forms the action uses: always(), inputs.X == 'v', inputs.X != '', joined by &&."""
    if cond is None:
        return ctx["ok"]
    result = True
    for part in cond.split("&&"):
        part = part.strip()
        if part == "always()":
            continue
        m = re.fullmatch(r"inputs\.([\w-]+) (==|!=) '(.*)'", part)
        assert m, f"condition not handled by the test: {part}"
        v = str(ctx["inputs"][m.group(1)])
        result &= (v == m.group(3)) if m.group(2) == "==" else (v != m.group(3))
    return result and (ctx["ok"] or "always()" in cond)


def run_action(inputs: dict, workdir: Path) -> dict:
    """Run the action's shell steps in order; `uses:` steps are recorded, not run."""
    full = {k: v.get("default", "") for k, v in ACTION["inputs"].items()} | inputs
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    shim = bindir / "vdeval"  # this checkout's vdeval, as `pip install $GITHUB_ACTION_PATH` would give
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m vdeval \"$@\"\n")
    shim.chmod(0o755)
    ctx = {"inputs": full, "steps": {}, "ok": True, "ran": [], "rc": {}}
    summary = workdir / "step_summary.md"  # each job has its own summary file
    summary.unlink(missing_ok=True)
    for step in ACTION["runs"]["steps"]:
        if not _condition(step.get("if"), ctx):
            continue
        ctx["ran"].append(step["name"])
        if "uses" in step:
            continue
        out = workdir / f"output_{len(ctx['ran'])}"
        out.write_text("")
        env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(out),
               "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTION_PATH": str(ROOT)}
        env.update({k: _expr(str(v), ctx) for k, v in (step.get("env") or {}).items()})
        r = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workdir, env=env, capture_output=True, text=True,
                           timeout=300)
        ctx["rc"][step["name"]] = r.returncode
        if "id" in step:
            ctx["steps"][step["id"]] = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        if r.returncode != 0:
            ctx["ok"] = False
            ctx.setdefault("stderr", r.stderr)
    ctx["summary"] = summary.read_text() if summary.exists() else ""
    return ctx


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("action")
    (d / "tiny.yaml").write_text(TINY)
    return d


def test_action_runs_checks_summarises_and_passes(work):
    ctx = run_action({"suite": "tiny.yaml", "out": "runs/first", "install": ""}, work)
    assert ctx["ok"], ctx.get("stderr")
    assert ctx["ran"] == ["Install vdeval", "Run the suite", "Check against the rules", "Write the step summary",
                          "Upload the report", "Fail on a failed check"]
    assert ctx["steps"]["run"]["run-dir"] == "runs/first" and ctx["steps"]["check"]["exit-code"] == "0"
    assert "vdeval check: ✅ all 1 passed" in ctx["summary"] and "### Summary" in ctx["summary"]
    assert (work / "runs/first/report/index.html").exists() and (work / "runs/first/check.xml").exists()


def test_a_check_that_cannot_judge_replaces_the_earlier_verdict_in_the_summary(work):
    if not (work / "runs/first/check.md").exists():  # run alone: make the earlier verdict first
        assert run_action({"suite": "tiny.yaml", "out": "runs/first", "install": "", "report-name": ""}, work)["ok"]
    # the same folder again (the run resumes), now against a baseline that does not exist: exit 2
    ctx = run_action({"suite": "tiny.yaml", "out": "runs/first", "install": "", "baseline": "runs/none",
                      "report-name": ""}, work)
    assert not ctx["ok"] and ctx["steps"]["check"]["exit-code"] == "2"
    assert "Write the step summary" in ctx["ran"]
    assert "all 1 passed" not in ctx["summary"]  # the earlier check.md is gone, not shown as this verdict
    assert not (work / "runs/first/check.md").exists() and not (work / "runs/first/check.xml").exists()
    assert "vdeval check could not judge the run (exit 2)" in ctx["summary"] and "runs/none" in ctx["summary"]


def test_a_failed_run_puts_its_error_in_the_summary(work):
    ctx = run_action({"suite": "tiny.yml", "out": "runs/typo", "install": "", "report-name": ""}, work)
    assert not ctx["ok"] and ctx["ran"] == ["Install vdeval", "Run the suite", "Write the step summary"]
    assert ctx["steps"]["run"]["exit-code"] == "2"
    assert "### vdeval run failed (exit 2)" in ctx["summary"] and "tiny.yml" in ctx["summary"]
    assert "```" in ctx["summary"] and "### Summary" not in ctx["summary"]


@pytest.mark.slow  # a second suite run through the action (~25 s here)
def test_action_fails_the_job_when_a_rule_fails(work):
    if not (work / "runs/first/results.json").exists():  # run alone: make the baseline first
        assert run_action({"suite": "tiny.yaml", "out": "runs/first", "install": "", "report-name": ""}, work)["ok"]
    (work / "rules.yaml").write_text(yaml.safe_dump([
        {"metric": "frame_difference", "max_regression": 0.01},  # same suite, same seeds: holds
        {"metric": "frame_difference", "generator": "flicker", "compare_to": "world", "max_regression": 0.1},
    ]))
    ctx = run_action({"suite": "tiny.yaml", "out": "runs/second", "install": "", "baseline": "runs/first",
                      "rules": "rules.yaml", "report-name": ""}, work)
    assert not ctx["ok"]
    assert "Upload the report" not in ctx["ran"]  # report-name empty: nothing uploaded
    assert ctx["steps"]["check"]["exit-code"] == "1" and ctx["rc"]["Fail on a failed check"] == 1
    assert "❌ 1 of 3 failed" in ctx["summary"]  # the summary is written before the job fails
