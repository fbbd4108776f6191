"""Parquet next to CSV: clips.parquet beside clips.csv, summary.parquet beside summary.csv."""
from __future__ import annotations

import importlib.util
import math

import pandas as pd
import pytest

from helpers import STEPS, make_results, write_run

pytest.importorskip("pyarrow", reason="the `parquet` extra (pyarrow) is not installed")


def test_clips_parquet_matches_csv_and_keeps_types(tmp_path):
    res = make_results(STEPS, failed=("ckpt_2k", 4), null_score=("ckpt_4k", 2, "warping_error"))
    run = write_run(tmp_path / "run", res, with_clips=False)
    pq = pd.read_parquet(run / "clips.parquet")
    csv = pd.read_csv(run / "clips.csv")
    assert list(pq.columns) == list(csv.columns) and len(pq) == len(csv) == 36
    for m in ("warping_error", "clip_score", "frozen_motion"):
        assert pq[m].dtype == "float64"
        pd.testing.assert_series_equal(pq[m], csv[m], check_names=False)  # same numbers, exactly
    # a failed clip and a null score are nulls, not zeros or strings
    failed = pq[(pq.generator == "ckpt_2k") & (pq.clip_id == "p01-s1")].iloc[0]
    assert "sampler diverged" in failed.error and math.isnan(failed.warping_error)
    assert pq[(pq.generator == "ckpt_4k") & (pq.clip_id == "p00-s2")].warping_error.isna().all()
    assert pq.seed.dtype.kind == "i"


def test_report_writes_summary_parquet(tmp_path):
    from vdeval.report import write_report

    run = write_run(tmp_path / "run", make_results(STEPS), with_clips=False)
    write_report([run], tmp_path / "out")
    a = pd.read_parquet(tmp_path / "out" / "summary.parquet")
    b = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert len(a) == len(b) == 15
    assert a.value.tolist() == pytest.approx(b.value.tolist())


def test_without_pyarrow_only_csv(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    run = write_run(tmp_path / "run", make_results({"a": {}}), with_clips=False)
    assert (run / "clips.csv").exists() and not (run / "clips.parquet").exists()
