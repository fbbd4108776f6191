"""The terminal summary: pivoted (generators as columns), best marked like the HTML report."""
from __future__ import annotations

from helpers import STEPS, make_results


def test_terminal_summary_is_pivoted_with_best_marks():
    from vdeval.report.terminal import render

    res = make_results(STEPS, failed=("ckpt_2k", 4))
    text = render(res, width=200)
    lines = text.splitlines()
    header = next(line for line in lines if "metric" in line and "ckpt_1k" in line)
    # generators are columns, in the suite's order
    assert header.index("ckpt_1k") < header.index("ckpt_2k") < header.index("ckpt_4k")
    # one row block per metric (5), not one per (generator, metric) pair (15)
    for m in ("warping_error ↓", "clip_score ↑", "frozen_motion ↓", "fvd ↓", "kvd ↓"):
        assert sum(m in line for line in lines) == 1, m
    # the final checkpoint is significantly best on warping_error: ★ in its column of that row
    row = next(line for line in lines if "warping_error" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[3].endswith("★") and "★" not in cells[1] + cells[2]
    assert "+1 failed" in text and "no CI" in text  # kvd has no interval
    assert "\x1b[" not in text  # plain text unless colours are asked for


def test_terminal_summary_shows_errors_and_escapes_markup():
    from vdeval.report.terminal import render

    res = make_results({"[bold]x": {}}, metrics=["warping_error", "fvd"], seeds=[0, 1])
    for r in res.summary:
        if r.metric == "fvd":
            r.value, r.ci_low, r.ci_high, r.error = None, None, None, "FeatureError: no real set"
    text = render(res, width=160)
    assert "[bold]x" in text and "FeatureError: no real set" in text and "n/a" in text
