"""`vdeval check RUN --baseline RUN`: regression rules for CI. Exit 0 all hold, 1 any fails, 2 bad input.

Rules come from --rules FILE (a YAML list, or a mapping with a `checks:` list) or else from the
run's suite (`checks:`). Each rule names a metric, optionally a generator (default: every
generator of the run), and one or more conditions:

  {metric: warping_error, generator: final, max: 0.02}        absolute bounds (min / max) on the value
  {metric: fvd, max_regression: 0.1}                           at most 10% worse than the baseline
                                                               run's value for the same generator
  {metric: clip_score, not_significantly_worse: true}          per-clip: paired Wilcoxon signed-rank
                                                               test on clips matched by prompt+seed;
                                                               set-level: the bootstrap CIs
  {metric: warping_error, generator: final, compare_to: middle,
   not_significantly_worse: true}                              the same comparisons against another
                                                               generator of the same run (no --baseline)

"Worse" follows the metric's direction (higher_is_better in the results). A value that is
missing (null) or a comparison that cannot be judged fails the rule, with the reason: a CI
gate must not pass on numbers it never saw.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import typer

from vdeval.errors import ResultsError
from vdeval.registry import closest
from vdeval.rules_schema import Rule, RulesError, parse_rules
from vdeval.store import load_results

def load_rules(path: Path) -> list[Rule]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise RulesError(f"rules file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise RulesError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_rules(data, str(p))


@dataclass
class Outcome:
    rule: Rule
    index: int
    generator: str
    passed: bool
    detail: str  # the numbers

    @property
    def label(self) -> str:
        return self.rule.name or f"{self.rule.metric}[{self.generator}] {self.rule.conditions()}"

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.label}: {self.detail}"


def _num(v) -> float:
    try:
        return math.nan if v is None else float(v)
    except (TypeError, ValueError):
        return math.nan


def _fmt(x: float) -> str:
    from vdeval.report.tables import fmt

    return fmt(x)


def _summary_row(results: dict, generator: str, metric: str) -> dict | None:
    for r in results.get("summary") or []:
        if r.get("generator") == generator and r.get("metric") == metric:
            return r
    return None


def _check_names(rules: list[Rule], run: dict, baseline: dict | None, source: str) -> None:
    metrics = run.get("metrics") or {}
    gens = run.get("generators") or {}
    for i, rule in enumerate(rules, 1):
        if rule.metric not in metrics:
            guess = closest(rule.metric, metrics)
            hint = f"did you mean {guess!r}?" if guess else f"metrics in the run: {', '.join(sorted(metrics)) or 'none'}"
            raise RulesError(f"{source}: rule {i}: unknown metric {rule.metric!r}", hint)
        if rule.generator is not None and rule.generator not in gens:
            guess = closest(rule.generator, gens)
            hint = f"did you mean {guess!r}?" if guess else f"generators in the run: {', '.join(gens)}"
            raise RulesError(f"{source}: rule {i}: unknown generator {rule.generator!r}", hint)
        if rule.compare_to is not None and rule.compare_to not in gens:
            guess = closest(rule.compare_to, gens)
            hint = f"did you mean {guess!r}?" if guess else f"generators in the run: {', '.join(gens)}"
            raise RulesError(f"{source}: rule {i}: compare_to names no generator of the run: {rule.compare_to!r}", hint)
        if rule.needs_baseline:
            if baseline is None:
                raise RulesError(f"{source}: rule {i} ({rule.conditions()}) compares with a baseline run",
                                 "pass --baseline RUN")
            if rule.metric not in (baseline.get("metrics") or {}):
                raise ResultsError(f"rule {i}: the baseline run has no metric {rule.metric!r}",
                                   f"its metrics: {', '.join(sorted(baseline.get('metrics') or {})) or 'none'}")
            bgens = baseline.get("generators") or {}
            if rule.generator is not None and rule.generator not in bgens:
                guess = closest(rule.generator, bgens)
                raise ResultsError(f"rule {i}: the baseline run has no generator {rule.generator!r}",
                                   f"did you mean {guess!r}?" if guess else f"its generators: {', '.join(bgens)}")
            if rule.generator is None and not set(gens) & set(bgens):
                raise ResultsError("the run and the baseline run have no generator in common",
                                   f"run: {', '.join(gens)}; baseline: {', '.join(bgens)}")


def _worse(diff: float, higher_is_better: bool) -> bool:
    return diff < 0 if higher_is_better else diff > 0


def _evaluate(rule: Rule, index: int, g: str, run: dict, baseline: dict | None) -> Outcome:
    from vdeval.report.compare import clip_values, pair_values, paired_difference, set_difference

    meta = (run.get("metrics") or {})[rule.metric]
    hib = bool(meta.get("higher_is_better", True))
    level = meta.get("level", "clip")
    row = _summary_row(run, g, rule.metric) or {}
    value = _num(row.get("value"))
    ok = True
    parts = []
    if not math.isfinite(value):
        why = f": {row['error']}" if row.get("error") else ""
        return Outcome(rule, index, g, False, f"no value in the run (missing or null{why})")
    ci = (_num(row.get("ci_low")), _num(row.get("ci_high")))
    ci_txt = f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if all(map(math.isfinite, ci)) else ""
    parts.append(f"value {_fmt(value)}{ci_txt} n={row.get('n', '?')}")
    if rule.min is not None and value < rule.min:
        ok = False
        parts.append(f"below min {rule.min:g}")
    if rule.max is not None and value > rule.max:
        ok = False
        parts.append(f"above max {rule.max:g}")

    if rule.compares:
        # the reference: another generator of this run (compare_to), or the same generator of the baseline run
        ref, ref_g, ref_name = ((run, rule.compare_to, rule.compare_to) if rule.compare_to is not None
                                else (baseline, g, "the baseline run"))
        brow = _summary_row(ref, ref_g, rule.metric) or {}
        bb, bb_base = row.get("backbone"), brow.get("backbone")
        if bb and bb_base and bb != bb_base:
            raise ResultsError(f"rule {index}: {rule.metric} of {g} comes from backbone {bb} but {ref_name}'s "
                               f"from {bb_base}: the numbers are not comparable",
                               "re-run the baseline with the same suite metrics")
        bvalue = _num(brow.get("value"))
        if not math.isfinite(bvalue):
            why = f": {brow['error']}" if brow.get("error") else ""
            return Outcome(rule, index, g, False, "; ".join(parts + [f"no value for {ref_name} (missing or null{why})"]))
        diff = value - bvalue
        if rule.max_regression is not None:
            worse_by = (-diff if hib else diff)
            rel = worse_by / abs(bvalue) if bvalue != 0 else (0.0 if worse_by <= 0 else math.inf)
            label = "baseline" if rule.compare_to is None else rule.compare_to
            parts.append(f"{label} {_fmt(bvalue)}, {abs(rel):.1%} {'worse' if rel > 0 else 'better or equal'}"
                         f" (limit {rule.max_regression:.0%})")
            if rel > rule.max_regression:
                ok = False
        if rule.not_significantly_worse:
            if level == "set":
                d = set_difference(row, brow, generator=g, baseline=ref_g, metric=rule.metric, higher_is_better=hib)
            else:
                xa, xb = pair_values(clip_values(_clips(run), g, rule.metric), clip_values(_clips(ref), ref_g, rule.metric))
                if xa.size < 2:
                    return Outcome(rule, index, g, False, "; ".join(
                        parts + [f"cannot test: {xa.size} clips match {ref_name} by prompt and seed"]))
                d = paired_difference(xa, xb, generator=g, baseline=ref_g, metric=rule.metric, higher_is_better=hib,
                                      alpha=rule.alpha)
            if d.significant is None:
                return Outcome(rule, index, g, False, "; ".join(parts + [f"cannot test: {d.note or 'no interval'}"]))
            p = f", {d.test} p={d.p_value:.3g}" if d.p_value is not None else f", {d.test}"
            sig_worse = bool(d.significant and _worse(d.diff, hib))
            verdict = "significantly worse" if sig_worse else ("significantly better" if d.significant
                                                               and not _worse(d.diff, hib) else "not significant")
            over = f"over {d.n} pairs" if level != "set" else "(set-level)"
            parts.append(f"difference {_fmt(d.diff)} [{_fmt(d.ci_low)}, {_fmt(d.ci_high)}] {over}{p}: {verdict}")
            if sig_worse:
                ok = False
    return Outcome(rule, index, g, ok, "; ".join(parts))


def _clips(results: dict) -> list[dict]:
    return results.get("clips") or []


def _generators_in_order(results: dict):
    from vdeval.report.tables import generators_in_order as order

    return order(results)


def run_check(run_path: Path, baseline_path: Path | None = None, rules_path: Path | None = None) -> list[Outcome]:
    """Evaluate every rule on every generator it covers; raises VdevalError on bad input."""
    run = load_results(run_path)
    baseline = load_results(baseline_path) if baseline_path is not None else None
    if rules_path is not None:
        rules, source = load_rules(rules_path), str(rules_path)
    else:
        checks = (run.get("suite") or {}).get("checks") if isinstance(run.get("suite"), dict) else None
        if not checks:
            raise RulesError(f"{run_path}: the run's suite has no `checks:` section", "pass --rules FILE")
        source = "suite checks"
        rules = parse_rules(checks, source)
    _check_names(rules, run, baseline, source)
    outcomes = []
    for i, rule in enumerate(rules, 1):
        gens = [rule.generator] if rule.generator else [g for g, _ in _generators_in_order(run)]
        if rule.needs_baseline and rule.generator is None:
            gens = [g for g in gens if g in (baseline.get("generators") or {})]
        if rule.compare_to is not None:
            gens = [g for g in gens if g != rule.compare_to]
        if not gens:  # a rule that judges nothing would pass a gate it never saw
            raise ResultsError(f"{source}: rule {i} ({rule.metric}) applies to no generator of the run",
                               "check the run has results for its generators")
        for g in gens:
            outcomes.append(_evaluate(rule, i, g, run, baseline))
    return outcomes


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Text XML 1.0 can hold: error messages may carry terminal escapes."""
    return _XML_BAD.sub("?", text)


def junit_xml(outcomes: list[Outcome]) -> bytes:
    failures = sum(not o.passed for o in outcomes)
    suite = ET.Element("testsuite", name="vdeval check", tests=str(len(outcomes)), failures=str(failures),
                       errors="0", skipped="0")
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", classname=_x(f"vdeval.check.{o.rule.metric}"), name=_x(o.label))
        if not o.passed:
            ET.SubElement(case, "failure", message=_x(o.detail), type="regression").text = _x(o.line())
        else:
            ET.SubElement(case, "system-out").text = _x(o.line())
    root = ET.Element("testsuites", name="vdeval", tests=str(len(outcomes)), failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def markdown(outcomes: list[Outcome]) -> str:
    from vdeval.report.markdown import md

    failed = sum(not o.passed for o in outcomes)
    status = f"❌ {failed} of {len(outcomes)} failed" if failed else f"✅ all {len(outcomes)} passed"
    head = f"### vdeval check: {status}"
    lines = [head, "", "| | rule | generator | numbers |", "|---|---|---|---|"]
    for o in outcomes:
        rule = o.rule.name or f"{o.rule.metric}: {o.rule.conditions()}"
        lines.append(f"| {'✅' if o.passed else '❌'} | {md(rule)} | {md(o.generator)} | {md(o.detail)} |")
    return "\n".join(lines) + "\n"


def check(
    run: Path = typer.Argument(..., help="Run directory (or its results.json) to check."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Run to compare with (needed by "
                                            "max_regression and not_significantly_worse rules)."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="YAML rules file (default: the suite's checks:)."),
    junit: Optional[Path] = typer.Option(None, "--junit", help="Write JUnit XML here."),
    markdown_out: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown summary here."),
) -> None:
    """Check a run against rules; exit 0 if all hold, 1 if any fails, 2 on bad input."""
    from vdeval.store import atomic_write_bytes, atomic_write_text

    outcomes = run_check(run, baseline, rules)
    for o in outcomes:
        typer.echo(o.line())
    failed = sum(not o.passed for o in outcomes)
    typer.echo(f"{len(outcomes) - failed} passed, {failed} failed")
    if junit is not None:
        atomic_write_bytes(junit, junit_xml(outcomes))
    if markdown_out is not None:
        atomic_write_text(markdown_out, markdown(outcomes))
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)


__all__: List[str] = ["Rule", "RulesError", "parse_rules", "load_rules", "run_check", "junit_xml", "markdown",
                      "register"]
