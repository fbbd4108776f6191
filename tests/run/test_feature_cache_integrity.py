"""Tampered or torn feature files (issue 15, item 4): a features .safetensors file replaced with
valid but different values was read back silently (identity drift went from 0.97 to 0.03, exit 0),
and a wrong-shape flow file became NaN with a misleading note. Every cached file now has an index
entry (sha256 of its bytes, each array's shape and dtype); a mismatch is recomputed and logged."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from helpers import cli_exit_code
from vdeval.run.featurize import FeatureCache, featurize
from vdeval.features import FeatureRequest

from test_featurize import clips, pool  # noqa: F401  (the counting flow backbone fixture)

REQ = FeatureRequest("flow", "counting")


def _cached(tmp_path):
    files = sorted(tmp_path.rglob("*.safetensors"))
    assert files
    return files


def _first_run(pool, tmp_path, n=2):  # noqa: F811
    cs = clips(n)
    assert featurize(cs, [REQ], pool, FeatureCache(tmp_path)) == {("flow", "counting"): n}
    return cs


def _again(pool, tmp_path, n=2):  # noqa: F811
    cache = FeatureCache(tmp_path)
    fresh = clips(n)
    done = featurize(fresh, [REQ], pool, cache)
    return done[("flow", "counting")], fresh, cache


def test_intact_cache_is_reused_with_its_index(pool, tmp_path):  # noqa: F811
    _first_run(pool, tmp_path)
    for f in _cached(tmp_path):
        entry = json.loads(f.with_suffix(".json").read_text())
        assert entry["key"] == f.stem and len(entry["sha256"]) == 64
        assert entry["arrays"]["forward"]["dtype"] == "float64" and len(entry["arrays"]["forward"]["shape"]) == 4
    n, _, cache = _again(pool, tmp_path)
    assert n == 0 and cache.rejected == []


def test_valid_but_different_values_are_recomputed_and_said(pool, tmp_path, caplog):  # noqa: F811
    first = _first_run(pool, tmp_path)
    f = _cached(tmp_path)[0]
    arrays = load_file(str(f))
    save_file({k: (v + 7.0).astype(v.dtype) for k, v in arrays.items()}, str(f))  # a well-formed lie
    with caplog.at_level(logging.WARNING, logger="vdeval.run.featurize"):
        n, fresh, cache = _again(pool, tmp_path)
    assert n == 1 and len(cache.rejected) == 1 and "does not match its recorded sha256" in cache.rejected[0]
    assert "recomputing" in caplog.text and str(f) in caplog.text
    for a, b in zip(first, fresh):
        np.testing.assert_array_equal(a.get("flow", "counting")["forward"], b.get("flow", "counting")["forward"])


def test_wrong_shape_flow_is_recomputed_not_turned_into_nan(pool, tmp_path):  # noqa: F811
    first = _first_run(pool, tmp_path, n=1)
    f = _cached(tmp_path)[0]
    a = load_file(str(f))
    save_file({k: np.ascontiguousarray(v[:-1]) for k, v in a.items()}, str(f))  # one frame pair short
    n, fresh, cache = _again(pool, tmp_path, n=1)
    assert n == 1 and cache.rejected
    assert fresh[0].get("flow", "counting")["forward"].shape == first[0].get("flow", "counting")["forward"].shape


def test_file_and_index_swapped_from_another_clip_are_refused(pool, tmp_path):  # noqa: F811
    _first_run(pool, tmp_path)
    a, b = _cached(tmp_path)
    a.write_bytes(b.read_bytes())
    a.with_suffix(".json").write_bytes(b.with_suffix(".json").read_bytes())
    n, _, cache = _again(pool, tmp_path)
    assert n == 1 and "not this file's" in cache.rejected[0]


@pytest.mark.parametrize("damage", ["torn", "no index", "bad index", "shapes edited"])
def test_torn_files_and_indexes_are_recomputed(pool, tmp_path, damage):  # noqa: F811
    _first_run(pool, tmp_path, n=1)
    f = _cached(tmp_path)[0]
    idx = f.with_suffix(".json")
    if damage == "torn":
        f.write_bytes(f.read_bytes()[:40])
    elif damage == "no index":
        idx.unlink()
    elif damage == "bad index":
        idx.write_text("{")
    else:  # the index edited to match a wrong file is still checked against the bytes
        e = json.loads(idx.read_text())
        e["arrays"]["forward"]["shape"][0] += 1
        idx.write_text(json.dumps(e))
    n, _, cache = _again(pool, tmp_path, n=1)
    assert n == 1 and len(cache.rejected) == 1
    n, _, cache = _again(pool, tmp_path, n=1)  # and the recomputed file is trusted again
    assert n == 0 and not cache.rejected


SUITE = """\
name: tamper
world: {height: 16, width: 16, frames: 4}
prompts: {source: world, count: 2}
generators:
  - {name: clean, kind: world}
metrics:
  - {name: warping_error, backbone: dis}
"""


def test_run_after_tampering_gives_the_same_numbers(tmp_path, caplog):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "run"
    args = ["run", str(suite), "--out", str(out), "--no-report", "--no-progress"]
    assert cli_exit_code(args) == 0
    first = json.loads((out / "results.json").read_text())["summary"][0]["value"]
    for f in (out / "features").rglob("*.safetensors"):
        a = load_file(str(f))
        save_file({k: np.full_like(v, 3.0) for k, v in a.items()}, str(f))
    with caplog.at_level(logging.WARNING, logger="vdeval.run.featurize"):
        assert cli_exit_code(args) == 0
    assert json.loads((out / "results.json").read_text())["summary"][0]["value"] == first
    assert "does not match its recorded sha256" in caplog.text
