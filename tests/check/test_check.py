"""vdeval check: rules, regressions and noise, CI outputs, bad input (exit 2)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from vdeval.check import RulesError, parse_rules, run_check
from helpers import cli_exit_code, make_results, write_run

ROOT = Path(__file__).resolve().parents[2]


_cli = cli_exit_code


def _rules(tmp_path: Path, rules, name: str = "rules.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(rules, sort_keys=False))
    return p


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("check_runs")
    # last night's checkpoint, and tonight's in three versions: same model (new noise), a real
    # regression, and a model whose warping error moved by far less than its noise
    base = {"final": {"step": 4000}, "ema": {"step": 4000}}
    return {
        "baseline": write_run(d / "baseline", make_results(base, rng_seed=0), with_clips=False),
        "same": write_run(d / "same", make_results(base, rng_seed=1), with_clips=False),
        "regressed": write_run(d / "regressed", make_results(
            {"final": {"step": 5000, "shift": {"warping_error": 0.004, "clip_score": -0.02, "fvd": 10.0}},
             "ema": {"step": 5000}}, rng_seed=1), with_clips=False),
        "noisy": write_run(d / "noisy", make_results(
            {"final": {"step": 5000, "shift": {"warping_error": 0.0002}}, "ema": {"step": 5000}},
            rng_seed=2, noise=0.001), with_clips=False),
    }


def _outcomes(runs, name, rules, tmp_path):
    return {(o.index, o.generator): o for o in run_check(runs[name], runs["baseline"], _rules(tmp_path, rules))}


RULES = [
    {"metric": "warping_error", "generator": "final", "max": 0.03},
    {"metric": "fvd", "max_regression": 0.1},
    {"metric": "warping_error", "not_significantly_worse": True},
    {"metric": "clip_score", "not_significantly_worse": True, "max_regression": 0.05},
    {"metric": "fvd", "not_significantly_worse": True},
]


def test_same_model_passes_every_rule(runs, tmp_path):
    out = _outcomes(runs, "same", RULES, tmp_path)
    assert len(out) == 1 + 2 + 2 + 2 + 2  # rules without generator cover final and ema
    assert all(o.passed for o in out.values()), [o.line() for o in out.values() if not o.passed]


def test_regression_fails_the_right_rules_with_numbers(runs, tmp_path):
    out = _outcomes(runs, "regressed", RULES, tmp_path)
    failed = {k for k, o in out.items() if not o.passed}
    # fvd 60 vs 50: +20% > 10%; paired tests see +0.004 warping error and -0.02 clip score;
    # fvd's CIs (50 [47, 54] vs 60 [57, 64]) are apart; ema did not change
    assert failed == {(2, "final"), (3, "final"), (4, "final"), (5, "final")}
    assert "baseline 50, 20.0% worse (limit 10%)" in out[(2, "final")].line()
    assert "Wilcoxon signed-rank p=" in out[(3, "final")].line() and "significantly worse" in out[(3, "final")].line()
    assert out[(1, "final")].passed and "value 0.0" in out[(1, "final")].line()


def test_difference_within_noise_does_not_fail(runs, tmp_path):
    out = _outcomes(runs, "noisy", RULES, tmp_path)
    assert all(o.passed for o in out.values()), [o.line() for o in out.values() if not o.passed]
    line = out[(3, "final")].line()
    assert "not significant" in line and "over 12 pairs" in line


def test_absolute_bounds(runs, tmp_path):
    out = _outcomes(runs, "same", [{"metric": "warping_error", "generator": "final", "max": 0.01},
                                   {"metric": "clip_score", "min": 0.0, "max": 1.0}], tmp_path)
    assert not out[(1, "final")].passed and "above max 0.01" in out[(1, "final")].line()
    assert out[(2, "final")].passed and out[(2, "ema")].passed


def test_null_value_fails_instead_of_passing(tmp_path):
    res = make_results({"final": {}}, metrics=["warping_error", "fvd"])
    for r in res.summary:
        if r.metric == "fvd":
            r.value = r.ci_low = r.ci_high = None
            r.error = "FeatureError: too few clips for a covariance"
    run = write_run(tmp_path / "r", res, with_clips=False)
    [o] = run_check(run, None, _rules(tmp_path, [{"metric": "fvd", "max": 100}]))
    assert not o.passed and "too few clips" in o.detail


def test_cli_exit_codes_and_ci_files(runs, tmp_path, capsys):
    rules = _rules(tmp_path, RULES)
    junit, mdfile = tmp_path / "junit.xml", tmp_path / "check.md"
    assert _cli(["check", str(runs["same"]), "--baseline", str(runs["baseline"]), "--rules", str(rules)]) == 0
    assert "9 passed, 0 failed" in capsys.readouterr().out
    code = _cli(["check", str(runs["regressed"]), "--baseline", str(runs["baseline"]), "--rules", str(rules),
                 "--junit", str(junit), "--markdown", str(mdfile)])
    out = capsys.readouterr().out
    assert code == 1 and "5 passed, 4 failed" in out
    assert sum(line.startswith(("PASS", "FAIL")) for line in out.splitlines()) == 9
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "9" and suite.get("failures") == "4"
    assert len(suite.findall("testcase/failure")) == 4
    md = mdfile.read_text()
    assert md.startswith("### vdeval check: ❌ 4 of 9 failed") and md.count("| ❌ |") == 4


def test_junit_survives_control_characters(tmp_path):
    from vdeval.check import junit_xml

    res = make_results({"final": {}}, metrics=["fvd"])
    res.summary[0].value, res.summary[0].error = None, "\x1b[31mboom\x00"
    run = write_run(tmp_path / "r", res, with_clips=False)
    outcomes = run_check(run, None, _rules(tmp_path, [{"metric": "fvd", "max": 1, "name": "fvd <& bound"}]))
    root = ET.fromstring(junit_xml(outcomes))
    assert root.find("testsuite/testcase").get("name") == "fvd <& bound"
    assert "boom" in root.find("testsuite/testcase/failure").get("message")


def test_rules_from_the_suite_checks_section(tmp_path, capsys):
    res = make_results({"final": {}}, metrics=["warping_error"], checks=[{"metric": "warping_error", "max": 0.001}])
    run = write_run(tmp_path / "r", res, with_clips=False)
    assert _cli(["check", str(run)]) == 1
    assert "FAIL  warping_error[final] max 0.001" in capsys.readouterr().out


def test_example_rules_file_is_valid_and_runs(runs, capsys):
    example = ROOT / "suites" / "checks-example.yaml"
    rules = parse_rules(yaml.safe_load(example.read_text()), str(example))
    assert {r.metric for r in rules} <= {"warping_error", "clip_score", "frozen_motion", "fvd", "kvd"}
    assert _cli(["check", str(runs["same"]), "--baseline", str(runs["baseline"]), "--rules", str(example)]) == 0
    assert _cli(["check", str(runs["regressed"]), "--baseline", str(runs["baseline"]), "--rules", str(example)]) == 1


@pytest.mark.parametrize("rules, message", [
    ([{"metric": "fvd", "max_regresion": 0.1}], "rule 1: unknown key 'max_regresion' (did you mean 'max_regression'?)"),
    ([{"metric": "fvd", "max": 1}, {"metric": "warp_error", "max": 1}],
     "rule 2: unknown metric 'warp_error' (did you mean 'warping_error'?)"),
    ([{"metric": "fvd", "generator": "finale", "max": 1}], "unknown generator 'finale' (did you mean 'final'?)"),
    ([{"metric": "fvd"}], "rule 1: a rule needs at least one of min, max, max_regression, not_significantly_worse"),
    ([{"metric": "fvd", "max_regression": -1}], "rule 1: max_regression: Input should be greater than or equal to 0"),
    ({"chekcs": []}, "did you mean 'checks'"),
    ([], "no rules"),
])
def test_bad_rules_exit_2_with_one_clear_line(runs, tmp_path, capsys, rules, message):
    path = _rules(tmp_path, rules)
    assert _cli(["check", str(runs["same"]), "--baseline", str(runs["baseline"]), "--rules", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("error: ") and err.count("\n") == 1


def test_bad_runs_exit_2(runs, tmp_path, capsys):
    rules = _rules(tmp_path, [{"metric": "fvd", "max_regression": 0.1}])
    assert _cli(["check", str(runs["same"]), "--baseline", str(tmp_path / "nope"), "--rules", str(rules)]) == 2
    assert "no results file" in capsys.readouterr().err
    assert _cli(["check", str(runs["same"]), "--rules", str(rules)]) == 2
    assert "pass --baseline RUN" in capsys.readouterr().err
    future = write_run(tmp_path / "future", make_results({"final": {}}), with_clips=False, version=99)
    assert _cli(["check", str(runs["same"]), "--baseline", str(future), "--rules", str(rules)]) == 2
    assert "results version 99 is not supported" in capsys.readouterr().err
    other = write_run(tmp_path / "other", make_results({"a": {}}, metrics=["fvd"]), with_clips=False)
    assert _cli(["check", str(runs["same"]), "--baseline", str(other), "--rules", str(rules)]) == 2
    assert "no generator in common" in capsys.readouterr().err
    no_fvd = write_run(tmp_path / "nofvd", make_results({"final": {}}, metrics=["clip_score"]), with_clips=False)
    assert _cli(["check", str(runs["same"]), "--baseline", str(no_fvd), "--rules", str(rules)]) == 2
    assert "the baseline run has no metric 'fvd'" in capsys.readouterr().err
    res = make_results({"final": {}, "ema": {}})
    for r in res.summary:
        r.backbone = "i3d"  # the published tier: its FVD is another quantity than the embedded one
    i3d = write_run(tmp_path / "i3d", res, with_clips=False)
    assert _cli(["check", str(runs["same"]), "--baseline", str(i3d), "--rules", str(rules)]) == 2
    assert "comes from backbone embedded but the baseline run's from i3d" in capsys.readouterr().err
    assert _cli(["check", str(runs["same"])]) == 2  # fixture suite has no checks:
    assert "has no `checks:` section" in capsys.readouterr().err
    with pytest.raises(RulesError):
        parse_rules([{"metric": "fvd", "min": 2, "max": 1}], "inline")


# --------------------------------------------------------------------------- compare_to: within one run

@pytest.fixture(scope="module")
def steps_run(tmp_path_factory) -> Path:
    from helpers import STEPS

    return write_run(tmp_path_factory.mktemp("steps") / "nightly", make_results(STEPS), with_clips=False)


def test_compare_to_judges_two_generators_of_the_same_run(steps_run, tmp_path):
    rules = [
        # is the final checkpoint no worse than the middle one? (it is better: passes)
        {"metric": "warping_error", "generator": "ckpt_4k", "compare_to": "ckpt_2k", "not_significantly_worse": True},
        # is the first no worse than the final? (it is worse by ~33%: both conditions fail)
        {"metric": "warping_error", "generator": "ckpt_1k", "compare_to": "ckpt_4k", "not_significantly_worse": True,
         "max_regression": 0.1},
        # set-level, every generator but the reference: fvd 60 and 80 against 51
        {"metric": "fvd", "compare_to": "ckpt_4k", "max_regression": 0.5},
    ]
    out = {(o.index, o.generator): o for o in run_check(steps_run, None, _rules(tmp_path, rules))}
    assert set(out) == {(1, "ckpt_4k"), (2, "ckpt_1k"), (3, "ckpt_1k"), (3, "ckpt_2k")}
    assert out[(1, "ckpt_4k")].passed and "significantly better" in out[(1, "ckpt_4k")].detail
    o = out[(2, "ckpt_1k")]
    assert not o.passed and "significantly worse" in o.detail and "ckpt_4k 0.01699, 35.8% worse (limit 10%)" in o.detail
    assert "than ckpt_4k" in o.label
    assert out[(3, "ckpt_2k")].passed and not out[(3, "ckpt_1k")].passed  # 17.6% vs 56.9% worse
    # through the CLI: no --baseline needed; exit 1 because one rule fails
    assert _cli(["check", str(steps_run), "--rules", str(_rules(tmp_path, rules[:1], "one.yaml"))]) == 0
    assert _cli(["check", str(steps_run), "--rules", str(_rules(tmp_path, rules, "all.yaml"))]) == 1


def test_compare_to_bad_rules_exit_2(steps_run, tmp_path, capsys):
    bad = [
        ([{"metric": "warping_error", "compare_to": "ckpt_3k", "not_significantly_worse": True}],
         "compare_to names no generator of the run: 'ckpt_3k'"),
        ([{"metric": "warping_error", "compare_to": "ckpt_4k", "max": 1.0}],
         "compare_to needs max_regression or not_significantly_worse"),
        ([{"metric": "warping_error", "generator": "ckpt_4k", "compare_to": "ckpt_4k", "max_regression": 0.1}],
         "compare_to names the rule's own generator"),
    ]
    for i, (rules, msg) in enumerate(bad):
        assert _cli(["check", str(steps_run), "--rules", str(_rules(tmp_path, rules, f"bad{i}.yaml"))]) == 2
        err = capsys.readouterr().err
        assert msg in err, err
