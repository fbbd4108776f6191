"""The regression rules of `vdeval check` and their evaluation on typed results (the command,
its exit codes and output files are in vdeval/check/cli.py).

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

from vdeval.compare import Difference, clip_values, is_worse, num, pair_values, paired_difference, set_difference
from vdeval.errors import ResultsError, closest
from vdeval.results import Results, SummaryRow, load_results
from vdeval.rules import Rule, RulesError, parse_rules

MAX_RULES_BYTES = 1 << 20  # a page of rules, like a suite file


def load_rules(path: Path) -> list[Rule]:
    import yaml

    from vdeval.userfiles import read_text

    p = Path(path)
    text = read_text(p, MAX_RULES_BYTES, "rules file", RulesError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RulesError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    except RecursionError:
        raise RulesError(f"{p}: the YAML is nested too deeply") from None
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


def _fmt(x: float) -> str:
    from vdeval.report.tables import fmt

    return fmt(x)


def _unknown(kind: str, name: str, known, what: str) -> str:
    guess = closest(name, known)
    return f"did you mean {guess!r}?" if guess else f"{what}: {', '.join(sorted(known) if kind == 'metric' else known) or 'none'}"


def _check_names(rules: list[Rule], run: Results, baseline: Results | None, source: str) -> None:
    """Every name a rule uses exists in the run (and the baseline run): a typo is bad input (exit 2)."""
    metrics, gens = run.metrics, run.generator_names()
    for i, rule in enumerate(rules, 1):
        if rule.metric not in metrics:
            raise RulesError(f"{source}: rule {i}: unknown metric {rule.metric!r}",
                             _unknown("metric", rule.metric, metrics, "metrics in the run"))
        if rule.generator is not None and rule.generator not in gens:
            raise RulesError(f"{source}: rule {i}: unknown generator {rule.generator!r}",
                             _unknown("generator", rule.generator, gens, "generators in the run"))
        if rule.compare_to is not None and rule.compare_to not in gens:
            raise RulesError(f"{source}: rule {i}: compare_to names no generator of the run: {rule.compare_to!r}",
                             _unknown("generator", rule.compare_to, gens, "generators in the run"))
        if rule.needs_baseline:
            _check_baseline(rule, i, gens, baseline, source)


def _check_baseline(rule: Rule, i: int, gens: list[str], baseline: Results | None, source: str) -> None:
    if baseline is None:
        raise RulesError(f"{source}: rule {i} ({rule.conditions()}) compares with a baseline run", "pass --baseline RUN")
    if rule.metric not in baseline.metrics:
        raise ResultsError(f"rule {i}: the baseline run has no metric {rule.metric!r}",
                           f"its metrics: {', '.join(sorted(baseline.metrics)) or 'none'}")
    bgens = baseline.generator_names()
    if rule.generator is not None and rule.generator not in bgens:
        guess = closest(rule.generator, bgens)
        raise ResultsError(f"rule {i}: the baseline run has no generator {rule.generator!r}",
                           f"did you mean {guess!r}?" if guess else f"its generators: {', '.join(bgens)}")
    if rule.generator is None and not set(gens) & set(bgens):
        raise ResultsError("the run and the baseline run have no generator in common",
                           f"run: {', '.join(gens)}; baseline: {', '.join(bgens)}")


def _no_value(row: SummaryRow | None) -> str:
    return f" (missing or null{': ' + row.error if row is not None and row.error else ''})"


def _evaluate(rule: Rule, index: int, g: str, run: Results, baseline: Results | None) -> Outcome:
    """One rule on one generator: bounds, then the comparison with the baseline or compare_to."""
    row = run.row(g, rule.metric)
    value = num(row.value if row is not None else None)
    if row is None or not math.isfinite(value):
        return Outcome(rule, index, g, False, "no value in the run" + _no_value(row))
    ci = (num(row.ci_low), num(row.ci_high))
    ci_txt = f" [{_fmt(ci[0])}, {_fmt(ci[1])}]" if all(map(math.isfinite, ci)) else ""
    parts = [f"value {_fmt(value)}{ci_txt} n={row.n}"]
    ok = True
    if rule.min is not None and value < rule.min:
        ok = False
        parts.append(f"below min {rule.min:g}")
    if rule.max is not None and value > rule.max:
        ok = False
        parts.append(f"above max {rule.max:g}")
    if rule.compares:
        passed, text = _compare(rule, index, g, row, run, baseline)
        parts.append(text)
        ok = ok and passed
    return Outcome(rule, index, g, ok, "; ".join(parts))


def _compare(rule: Rule, index: int, g: str, row: SummaryRow, run: Results,
             baseline: Results | None) -> tuple[bool, str]:
    """(passed, numbers) against another generator of this run (compare_to) or the same generator
    of the baseline run."""
    ref, ref_g, ref_name = ((run, rule.compare_to, rule.compare_to) if rule.compare_to is not None
                            else (baseline, g, "the baseline run"))
    assert ref is not None  # a rule that compares with the baseline run was checked for one (_check_baseline)
    brow = ref.row(ref_g, rule.metric)
    bb_base = brow.backbone if brow is not None else ""
    if row.backbone and bb_base and row.backbone != bb_base:
        raise ResultsError(f"rule {index}: {rule.metric} of {g} comes from backbone {row.backbone} but {ref_name}'s "
                           f"from {bb_base}: the numbers are not comparable",
                           "re-run the baseline with the same suite metrics")
    bvalue = num(brow.value if brow is not None else None)
    if brow is None or not math.isfinite(bvalue):
        return False, f"no value for {ref_name}" + _no_value(brow)
    ok = True
    parts: list[str] = []
    if rule.max_regression is not None:
        passed, text = _regression(rule, num(row.value), bvalue, run.metrics[rule.metric].higher_is_better)
        ok, parts = ok and passed, parts + [text]
    if rule.not_significantly_worse:
        passed, text = _significance(rule, g, row, brow, run, ref, ref_g, ref_name)
        ok, parts = ok and passed, parts + [text]
    return ok, "; ".join(parts)


def _regression(rule: Rule, value: float, bvalue: float, hib: bool) -> tuple[bool, str]:
    assert rule.max_regression is not None  # called only for rules that set it
    worse_by = (bvalue - value) if hib else (value - bvalue)
    rel = worse_by / abs(bvalue) if bvalue != 0 else (0.0 if worse_by <= 0 else math.inf)
    label = "baseline" if rule.compare_to is None else rule.compare_to
    text = (f"{label} {_fmt(bvalue)}, {abs(rel):.1%} {'worse' if rel > 0 else 'better or equal'}"
            f" (limit {rule.max_regression:.0%})")
    return rel <= rule.max_regression, text


def _significance(rule: Rule, g: str, row: SummaryRow, brow: SummaryRow, run: Results, ref: Results,
                  ref_g: str, ref_name: str) -> tuple[bool, str]:
    """Not significantly worse: the paired test on clips matched by prompt and seed (per-clip
    metrics) or the two bootstrap intervals (set-level); a comparison that cannot be judged fails."""
    meta = run.metrics[rule.metric]
    hib = meta.higher_is_better
    if meta.level == "set":
        d = set_difference(row, brow, generator=g, baseline=ref_g, metric=rule.metric, higher_is_better=hib)
    else:
        xa, xb = pair_values(clip_values(run.clips, g, rule.metric), clip_values(ref.clips, ref_g, rule.metric))
        if xa.size < 2:
            return False, f"cannot test: {xa.size} clips match {ref_name} by prompt and seed"
        d = paired_difference(xa, xb, generator=g, baseline=ref_g, metric=rule.metric, higher_is_better=hib,
                              alpha=rule.alpha)
    if d.significant is None:
        return False, f"cannot test: {d.note or 'no interval'}"
    return _verdict(d, hib, meta.level)


def _verdict(d: Difference, hib: bool, level: str) -> tuple[bool, str]:
    p = f", {d.test} p={d.p_value:.3g}" if d.p_value is not None else f", {d.test}"
    sig_worse = bool(d.significant and is_worse(d.diff, hib))
    verdict = "significantly worse" if sig_worse else ("significantly better" if d.significant else "not significant")
    over = f"over {d.n} pairs" if level != "set" else "(set-level)"
    return not sig_worse, f"difference {_fmt(d.diff)} [{_fmt(d.ci_low)}, {_fmt(d.ci_high)}] {over}{p}: {verdict}"


def run_check(run_path: Path, baseline_path: Path | None = None, rules_path: Path | None = None) -> list[Outcome]:
    """Evaluate every rule on every generator it covers; raises VdevalError on bad input."""
    run = load_results(run_path)
    baseline = load_results(baseline_path) if baseline_path is not None else None
    if rules_path is not None:
        rules, source = load_rules(rules_path), str(rules_path)
    else:
        if not run.checks:
            raise RulesError(f"{run_path}: the run's suite has no `checks:` section", "pass --rules FILE")
        source = "suite checks"
        rules = parse_rules(run.checks, source)
    _check_names(rules, run, baseline, source)
    outcomes = []
    for i, rule in enumerate(rules, 1):
        for g in _covered(rule, i, run, baseline, source):
            outcomes.append(_evaluate(rule, i, g, run, baseline))
    return outcomes


def _covered(rule: Rule, i: int, run: Results, baseline: Results | None, source: str) -> list[str]:
    """The generators a rule judges: its own, else every generator of the run (those the baseline
    also has, when it compares with one), never compare_to itself."""
    gens = [rule.generator] if rule.generator else run.generator_names()
    if rule.needs_baseline and rule.generator is None:
        assert baseline is not None  # checked by _check_baseline before any rule is evaluated
        gens = [g for g in gens if g in baseline.generator_names()]
    if rule.compare_to is not None:
        gens = [g for g in gens if g != rule.compare_to]
    if not gens:  # a rule that judges nothing would pass a gate it never saw
        raise ResultsError(f"{source}: rule {i} ({rule.metric}) applies to no generator of the run",
                           "check the run has results for its generators")
    return gens


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
