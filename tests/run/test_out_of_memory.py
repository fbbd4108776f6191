"""Running out of memory is a clip's failure, never the run's: a clip whose estimated need exceeds
the memory free fails before it starts, a MemoryError inside a backbone fails that clip alone
(after the batch was halved), each recorded with its metric, backbone and what to change; the
run finishes and exits 3."""
from __future__ import annotations

import json

import numpy as np
from helpers import cli_exit_code

SUITE = """\
name: oom
world: {height: 32, width: 32, frames: 8}
prompts: {source: world, count: 3}
generators:
  - {name: clean, kind: world}
metrics:
  - {name: frozen_share}
  - {name: frame_difference}
output: {dir: run, report: false}
"""


def test_a_clip_that_cannot_fit_fails_alone_with_metric_backbone_and_hint(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.yaml").write_text(SUITE)
    monkeypatch.setenv("VDEVAL_MEMORY_LIMIT_GB", "0.0001")  # 100 KB "free": no clip fits
    assert cli_exit_code(["run", str(tmp_path / "s.yaml"), "--no-progress"]) == 3
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(res["failures"]) == 3
    f = res["failures"][0]
    assert f["stage"] == "featurize" and f["error"].startswith("out of memory:")
    assert f["backbone"] in ("dis", "pixels") and f["metric"] and "ingest.max_short_side" in f["hint"]
    assert "output.memory_gb" in f["hint"]


def test_memory_error_in_a_backbone_fails_that_clip_not_the_run(tmp_path, monkeypatch):
    from vdeval.backbones.dis import DISFlow

    real = DISFlow.compute
    calls, doomed = [], []

    def compute(self, kind, clips, **directions):  # the first clip it is ever given runs out of memory, every time
        calls.append(len(clips))
        doomed[:] = doomed or [clips[0].clip_hash]
        if any(c.clip_hash == doomed[0] for c in clips):
            raise MemoryError()
        return real(self, kind, clips, **directions)

    monkeypatch.setattr(DISFlow, "compute", compute)
    (tmp_path / "s.yaml").write_text(SUITE)
    assert cli_exit_code(["run", str(tmp_path / "s.yaml"), "--no-progress"]) == 3
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [f["clip_id"] for f in res["failures"]] == ["p000_s0"]
    f = res["failures"][0]
    assert "out of memory" in f["error"] and f["backbone"] == "dis" and f["metric"] == "frozen_share"
    scored = [c for c in res["clips"] if c["error"] is None]
    assert len(scored) == 2 and all(np.isfinite(c["scores"]["frame_difference"]) for c in scored)
    assert max(calls) > 1 and 1 in calls  # the batch was halved down to one clip before giving up
