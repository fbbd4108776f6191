"""The report's reading rules (vdeval/report/rules.py) on the smoke run: tests/data/smoke_results.json
is `vdeval run suites/smoke.yaml` (72 clips, this toolkit's embedded backbones), and the slow test
below makes a fresh, shorter smoke run and checks the same rules on it."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from vdeval.report import rules
from vdeval.report.compare import best_marks, compare_generators, relative_text
from vdeval.report.tables import fmt, merge_results
from vdeval.results import Results, load_results

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "tests" / "data" / "smoke_results.json"
CANDIDATES = {"early", "final", "ablation"}


@pytest.fixture(scope="module")
def smoke() -> Results:
    return load_results(SMOKE)


def check_rules(res: Results, tmp_path: Path) -> None:
    """Every rule of rules.py, as each view shows it."""
    from vdeval.report import write_report
    from vdeval.report.terminal import render

    merged = merge_results([("smoke", Path("."), res)])
    # 1. roles from the generators' records
    assert {g: rules.role_label(merged, g) for g in merged.generators} == {
        "world": "reference", "flicker": "control: flicker", "frozen": "control: freeze",
        "early": "", "final": "", "ablation": ""}
    # 2. the frozen control is flagged (all its clips are frozen), beside the scores a still clip wins
    assert rules.frozen_fractions(merged) == {"frozen": 1.0}
    flagged = {m for m in merged.metrics if rules.frozen_flag(merged, "frozen", m)}
    assert flagged == {"warping_error", "frame_difference", "identity_drift"}
    assert not any(rules.frozen_flag(merged, g, m) for g in CANDIDATES for m in merged.metrics)
    # 3. best marks only among the candidates: the frozen control (0 warping error, 0 frame
    # difference, identity 1) and the clean world never take one
    best = best_marks(merged)
    assert best and {b.generator for b in best.values()} <= CANDIDATES
    values = {(r.generator, r.metric): r.value for r in res.summary}
    assert values[("frozen", "warping_error")] < values[(best["warping_error"].generator, "warping_error")]
    for m, b in best.items():
        others = [values[(g, m)] for g in CANDIDATES if g != b.generator]
        assert all((values[(b.generator, m)] > v) == merged.metrics[m].higher_is_better for v in others), m
    # 4. relative differences: one verdict on "baseline ≈ 0" per (metric, baseline), and "n/a" only
    # where the baseline is ~0 against the metric's scale
    for base in ("world", "frozen", "final"):  # a ~0 baseline, exact zeros, an ordinary one
        diffs = compare_generators(merged, base)
        for m in merged.metrics:
            texts = [relative_text(d, merged) for d in diffs if d.metric == m]
            na = [t.startswith("n/a") for t in texts if t != "—"]
            assert len(set(na)) <= 1, (base, m, texts)
            if na and na[0]:
                assert abs(values[(base, m)]) <= rules.ZERO * rules.metric_scale(merged, m)
    # the views: terminal at 80 columns, Markdown and HTML carry the marks, labels and one legend
    text = render(res, width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    tokens = set(re.split(r"[\s│┃]+", text))
    for r in res.summary:  # every value whole, never split across lines
        assert fmt(r.value) in tokens, (r.generator, r.metric, fmt(r.value))
    assert set(merged.generators) <= tokens  # every name whole
    assert "(control: freeze)" in text and "(reference)" in text
    legend = " ".join(text.split("↑/↓ better direction", 1)[1].split())
    for sentence in rules.legend(merged):
        assert sentence in legend
    run = tmp_path / "results_only"
    run.mkdir(parents=True)
    (run / "results.json").write_text(res.model_dump_json())
    index = write_report([run], tmp_path / "report", baseline="final")
    md, html = (tmp_path / "report" / "summary.md").read_text(), index.read_text()
    assert "frozen <sub>control: freeze</sub>" in md and "world <sub>reference</sub>" in md
    assert re.search(r"\| \*\*0\*\* frozen \\\[0, 0\\\]", md)
    assert md.count("★") + md.count("☆") - 2 == len(best)  # one mark per metric, plus the legend's two
    assert rules.LEGEND_BEST in md and rules.LEGEND_BEST in html
    assert "<span class='role'>control: freeze</span>" in html and 'class="frozen"' in html
    summary = html.split("<table class='summary'>", 1)[1].split("</table>", 1)[0]
    for row in summary.split("<tr>")[2:]:  # each metric row: the marked cell is a candidate's column
        cells = row.split("<td")[2:]  # after the direction cell, one per generator in order
        marked = [g for g, c in zip(merged.generators, cells) if "best-sig" in c or "best-ns" in c]
        assert set(marked) <= CANDIDATES


def test_report_rules_on_the_smoke_run(smoke, tmp_path):
    check_rules(smoke, tmp_path)


def test_relative_differences_are_consistent_against_one_baseline(smoke):
    """The issue's case: final's warping_error 0.002167 is a baseline like any other (no "n/a" beside
    +1922.8%); the clean world's 1.8e-8 is ~0 for every row against it."""
    merged = merge_results([("smoke", Path("."), smoke)])
    against_final = [relative_text(d, merged) for d in compare_generators(merged, "final") if d.metric == "warping_error"]
    assert "n/a (baseline ≈ 0)" not in against_final and "+1922.8%" in against_final
    against_world = [relative_text(d, merged) for d in compare_generators(merged, "world") if d.metric == "warping_error"]
    assert set(against_world) == {"n/a (baseline ≈ 0)"}


def test_candidates_that_freeze_are_flagged_and_lose_best_on_still_metrics(smoke):
    """A model (not a control) whose clips freeze gets the flag and no star on flicker metrics."""
    res = smoke.model_copy(deep=True)
    for r in res.summary:
        if r.generator == "early" and r.metric == "frozen_motion":
            r.value = 0.75
        if r.generator == "early" and r.metric == "warping_error":
            r.value = 0.0
    merged = merge_results([("smoke", Path("."), res)])
    assert rules.frozen_fractions(merged) == {"frozen": 1.0, "early": 0.75}
    assert rules.frozen_flag(merged, "early", "warping_error") == "frozen"
    assert "early" not in rules.may_be_best(merged, "warping_error")
    assert best_marks(merged)["warping_error"].generator == "final"


def test_curve_panels_state_the_curves_own_direction_and_unit():
    from vdeval.report.plots import curve_axes
    from vdeval.results import MetricRecord

    ms = MetricRecord(name="motion_smoothness", version="1", higher_is_better=True, level="clip")
    assert curve_axes("motion_smoothness", ms) == ("↓", "odd frame", "interpolation error, mean |Δ| 0–255")
    we = MetricRecord(name="warping_error", version="1", higher_is_better=False, level="clip")
    assert curve_axes("warping_error", we)[0] == "↓"
    fm = MetricRecord(name="frozen_motion", version="1", higher_is_better=False, level="clip")
    assert curve_axes("frozen_motion", fm)[:2] == ("", "frame pair")  # motion has no better direction


def test_terminal_width_without_a_terminal(monkeypatch, smoke):
    import io

    from vdeval.report.terminal import DEFAULT_WIDTH, output_width, render

    monkeypatch.delenv("COLUMNS", raising=False)
    assert output_width(io.StringIO()) == DEFAULT_WIDTH == 100
    monkeypatch.setenv("COLUMNS", "72")
    assert output_width(io.StringIO()) == 72
    narrow = render(smoke, width=40)  # not even one generator column fits: stacked, one value a line
    assert max(len(line) for line in narrow.splitlines()) <= 40
    assert "  frozen (control: freeze): 0 frozen" in narrow


@pytest.mark.slow  # runs suites/smoke.yaml on 6 prompts with a 16-clip real set (~1-2 minutes on 2 cores)
def test_report_rules_on_a_fresh_smoke_run(tmp_path):
    from vdeval.run.runner import Runner
    from vdeval.suite import load_suite

    suite = (ROOT / "suites" / "smoke.yaml").read_text().replace("count: 256", "count: 16")
    (tmp_path / "smoke.yaml").write_text(suite.replace("dir: ../runs/smoke", "dir: run"))
    outcome = Runner(load_suite(tmp_path / "smoke.yaml"), out=tmp_path / "run", limit=6, progress=False,
                     log=lambda *a, **k: None).execute()
    assert outcome.n_failed == 0
    check_rules(outcome.results, tmp_path / "views")
    # the checked-in file is this suite's output: same generators, metrics and roles
    stored = json.loads(SMOKE.read_text())
    assert set(stored["generators"]) == set(outcome.results.generators)
    shutil.rmtree(tmp_path / "run" / "clips", ignore_errors=True)
