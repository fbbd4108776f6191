"""The typed results model: round trip, upgrade of version-1 files, refusal of newer or damaged
ones with one line, and the JSON Schema committed in docs/ equal to the model's."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vdeval.errors import ResultsError
from vdeval.results import RESULTS_VERSION, Results, load_results, schema_text, write_results
from vdeval.store import RunDir

from helpers import STEPS, make_results

ROOT = Path(__file__).resolve().parents[1]
V1 = Path(__file__).parent / "data" / "results_v1.json"  # written by the runner before the model existed


def test_committed_schema_is_the_models():
    committed = (ROOT / "docs" / "results.schema.json").read_text()
    assert committed == schema_text(), "regenerate it: python -m vdeval.results > docs/results.schema.json"


def test_round_trip_keeps_everything_and_nan_becomes_null(tmp_path):
    res = make_results(STEPS, failed=("ckpt_2k", 4), null_score=("ckpt_4k", 2, "warping_error"))
    write_results(RunDir(tmp_path / "run"), res)
    raw = json.loads((tmp_path / "run" / "results.json").read_text())
    assert raw["vdeval_results_version"] == RESULTS_VERSION
    back = load_results(tmp_path / "run")
    nulled = next(c for c in back.clips if c.generator == "ckpt_4k" and c.clip_id == "p00-s2")
    assert nulled.scores["warping_error"] is None and "no motion" in nulled.notes["warping_error"]
    assert back.dump() == _nan_to_none(res.dump())  # the only change on the way: NaN is written as null
    assert back.generator_names() == ["ckpt_1k", "ckpt_2k", "ckpt_4k"]
    assert back.row("ckpt_2k", "warping_error").n_failed == 1 and back.failures[0].stage == "generate"


def _nan_to_none(x):
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    return [_nan_to_none(v) for v in x] if isinstance(x, list) else x


def test_version_1_files_are_upgraded():
    import vdeval

    res = vdeval.load_results(V1)  # the Python API's door to a run
    assert res.vdeval_results_version == RESULTS_VERSION
    assert res.backbones["embedded@1"].identity_hash.startswith("8f9528cf")
    assert res.provenance.world_size == 1 and res.provenance.seeds == [0]
    assert res.row("f", "clip_score").value == pytest.approx(0.2573993678379549)


def test_version_1_files_from_before_later_fields_get_defaults(tmp_path):
    data = json.loads(V1.read_text())
    del data["real"]
    for key in ("seeds", "limit", "world_size", "numpy"):
        del data["provenance"][key]
    for b in data["backbones"].values():
        del b["domain"]
    p = tmp_path / "results.json"
    p.write_text(json.dumps(data))
    res = load_results(p)
    assert res.real is None and res.provenance.seeds == [] and res.provenance.world_size == 1
    assert res.backbones["embedded@1"].domain is None


@pytest.mark.parametrize("version, message", [
    (RESULTS_VERSION + 1, f"results version {RESULTS_VERSION + 1} is not supported"),
    ("2", "results version 2 is not supported"),
    (0, "results version 0 is not supported"),
    (None, "not a vdeval results file"),
])
def test_newer_or_unknown_versions_are_refused_with_one_line(tmp_path, version, message):
    data = json.loads(V1.read_text())
    data["vdeval_results_version"] = version
    p = tmp_path / "results.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ResultsError) as e:
        load_results(p)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_damaged_files_are_refused_with_the_key_path(tmp_path):
    data = json.loads(V1.read_text())
    data["summary"][0]["n"] = "many"
    p = tmp_path / "results.json"
    p.write_text(json.dumps(data))
    with pytest.raises(ResultsError, match=r"summary\.0\.n: ") as e:
        load_results(p)
    assert "\n" not in str(e.value)
    p.write_text("[1, 2]")
    with pytest.raises(ResultsError, match="not a JSON object"):
        load_results(p)
    p.write_text("{")
    with pytest.raises(ResultsError, match="not valid JSON"):
        load_results(p)
    with pytest.raises(ResultsError, match="no results file"):
        load_results(tmp_path / "nowhere")


def test_the_model_refuses_unknown_fields():
    """A typo in a writer fails at once instead of writing a field nobody reads."""
    res = make_results({"a": {}}, metrics=["warping_error"])
    data = res.dump()
    data["summary"][0]["vlaue"] = 1.0
    with pytest.raises(Exception, match="vlaue"):
        Results.model_validate(data)
