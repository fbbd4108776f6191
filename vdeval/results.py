"""The typed, versioned results model: what results.json holds, written by the runner and read by
report, check, log and the Python API through one loader, `load_results(path)`.

    Results
      vdeval_results_version   RESULTS_VERSION (2)
      created, suite (the resolved suite as plain data), suite_hash, suite_path
      provenance   versions (vdeval, torch, numpy, python), platform, device, command,
                   seeds, limit, world_size
      generators   {name: GeneratorInfo}   kind, step and the generator's config
      backbones    {label: BackboneRecord} identity (name, version, protocol, tier, weights'
                                           sha256, options, amp), identity_hash, domain
      metrics      {label: MetricRecord}   describe() of each metric plus its backbone label
      summary      [SummaryRow]            one per (generator, metric): value, 95% CI, counts,
                                           set-level extras, the error that left it empty
      clips        [ClipRecord]            one per clip: scores, extras, curves, notes, error
      failures     [Failure]               clips that could not be made
      real         RealRecord | None       the suite's real set and how many clips it gave

NaN scores are stored as null (strict JSON) and read back as None. Older files are upgraded on
load (version 1: the same layout, written before fields such as `real`, provenance seeds, limit
and world size existed); newer or unknown versions are refused with one line. The JSON Schema
is exported with `python -m vdeval.results > docs/results.schema.json`.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vdeval.errors import ResultsError
from vdeval.store import RESULTS_FILE, RunDir
from vdeval.store import write_results as _write_files
from vdeval.userfiles import read_json

RESULTS_VERSION: Literal[2] = 2
Score = float | None  # null in JSON stands for NaN: a metric that has no value for a clip


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Record):
    """Where and how the numbers were made."""

    vdeval: str
    torch: str | None = None
    numpy: str | None = None
    python: str = ""
    platform: str = ""
    device: str = "cpu"
    command: str = ""
    seeds: list[int] = Field(default_factory=list)  # every generation seed of the run
    limit: int | None = None  # --limit: the first N prompts only
    world_size: int = 1  # ranks under torchrun


class GeneratorInfo(BaseModel):
    """A generator's kind and training step; its other config keys (checkpoint hash, path...) too."""

    model_config = ConfigDict(extra="allow")

    kind: str
    step: int | None = None


class BackboneRecord(_Record):
    """A backbone's identity (its hash is the feature cache key and the provenance)."""

    name: str
    version: str
    protocol: str = ""
    tier: str = ""
    weights: dict[str, str] = Field(default_factory=dict)  # file name -> sha256
    options: dict[str, Any] = Field(default_factory=dict)
    amp: bool = False
    identity_hash: str | None = None
    domain: str | None = None  # "world" or "natural"


class MetricRecord(_Record):
    name: str
    version: str
    higher_is_better: bool
    level: Literal["clip", "set"]
    backbone: str | None = None
    backbone_label: str | None = None  # the backbones' labels as reports show them
    params: dict[str, Any] = Field(default_factory=dict)
    failure_mode: str = ""


class SummaryRow(_Record):
    """One generator on one metric: per-clip metrics the mean (or weighted mean) with its
    bootstrap interval; set-level metrics their score_set value."""

    generator: str
    metric: str
    value: Score = None
    ci_low: Score = None
    ci_high: Score = None
    n: int = 0  # clips with a finite score (set-level: clips the value rests on)
    n_failed: int = 0  # clips of the generator that could not be made
    n_real: int | None = None  # set-level: clips of the real set
    backbone: str = ""
    higher_is_better: bool = True
    level: Literal["clip", "set"] = "clip"
    aggregate: str | None = None  # e.g. "weighted by n_pairs"; None: the plain mean
    extras: dict[str, Any] = Field(default_factory=dict)  # set-level side values (protocol, note...)
    error: str | None = None  # why value is null


class ClipRecord(_Record):
    generator: str
    clip_id: str
    prompt: str = ""
    seed: int
    clip_hash: str | None = None
    error: str | None = None  # the clip could not be made
    scores: dict[str, Score] = Field(default_factory=dict)
    extras: dict[str, dict[str, Score]] = Field(default_factory=dict)
    curves: dict[str, list[Score]] = Field(default_factory=dict)
    # points per second of each curve (the frame rate its frames were sampled at): curves are
    # drawn against time in seconds, each clip at its own rate
    curve_fps: dict[str, float] = Field(default_factory=dict)
    notes: dict[str, str] = Field(default_factory=dict)  # why a score is null, or a caveat


class Failure(_Record):
    generator: str
    clip_id: str
    stage: str
    error: str
    # set where known (a clip that ran out of memory): the metric(s) and backbone it failed in and
    # what to change
    metric: str | None = None
    backbone: str | None = None
    hint: str | None = None


class RealRecord(_Record):
    """The suite's `real:` set as resolved, and n: the clips it gave."""

    kind: str
    count: int
    seed: int
    path: str | None = None
    ingest: dict[str, Any] = Field(default_factory=dict)
    n: int


class Results(_Record):
    vdeval_results_version: Literal[2] = RESULTS_VERSION
    created: str
    suite: dict[str, Any]
    suite_hash: str
    suite_path: str | None = None
    provenance: Provenance
    generators: dict[str, GeneratorInfo] = Field(default_factory=dict)
    backbones: dict[str, BackboneRecord] = Field(default_factory=dict)
    metrics: dict[str, MetricRecord] = Field(default_factory=dict)
    summary: list[SummaryRow] = Field(default_factory=list)
    clips: list[ClipRecord] = Field(default_factory=list)
    failures: list[Failure] = Field(default_factory=list)
    real: RealRecord | None = None

    # -- typed views of the resolved suite ------------------------------------------------
    @property
    def suite_name(self) -> str:
        return str(self.suite.get("name") or "")

    @property
    def baseline(self) -> str | None:
        """The suite's declared baseline generator, if any."""
        b = self.suite.get("baseline")
        return str(b) if b else None

    @property
    def checks(self) -> list | None:
        """The suite's `checks:` rules as raw data (validated by vdeval.check)."""
        return self.suite.get("checks") or None

    @property
    def world_fps(self) -> float:
        world = self.suite.get("world")
        fps = world.get("fps") if isinstance(world, dict) else None
        return float(fps) if isinstance(fps, (int, float)) else math.nan

    # -- lookups ---------------------------------------------------------------------------
    def generator_names(self) -> list[str]:
        """Generators in the suite's order: the summary and clips lists keep it (the generators
        mapping may be stored with sorted keys); one with rows but no info is never dropped."""
        order = [r.generator for r in self.summary] + [c.generator for c in self.clips] + list(self.generators)
        return list(dict.fromkeys(order))

    def metric_names(self) -> list[str]:
        """Metrics in the suite's order (as the summary keeps it), then any others."""
        return list(dict.fromkeys([r.metric for r in self.summary] + list(self.metrics)))

    def row(self, generator: str, metric: str) -> SummaryRow | None:
        return next((r for r in self.summary if r.generator == generator and r.metric == metric), None)

    def dump(self) -> dict:
        """Plain JSON data (NaN kept as float; store writes it as null)."""
        return self.model_dump(mode="python")


def schema() -> dict:
    """The JSON Schema of results.json (the current version)."""
    return Results.model_json_schema()


def schema_text() -> str:
    return json.dumps(schema(), indent=1, sort_keys=True) + "\n"


# ---- reading: upgrade what we understand, refuse the rest -------------------------------------

def _upgrade_v1(data: dict) -> dict:
    """Version 1 had the same layout; files from before a field existed simply lack it (`real`,
    provenance seeds / limit / world_size / numpy, summary extras and errors, backbone domain),
    and the model's defaults fill those in."""
    return {**data, "vdeval_results_version": 2}


UPGRADES = {1: _upgrade_v1}  # version -> function to the next version


def upgrade(data: dict, where: str = "results") -> dict:
    """Raw results data of any version this vdeval understands, brought to RESULTS_VERSION."""
    version = data.get("vdeval_results_version")
    if version is None:
        raise ResultsError(f"{where}: not a vdeval results file (no vdeval_results_version)")
    if not isinstance(version, int) or isinstance(version, bool) or (version != RESULTS_VERSION
                                                                    and version not in UPGRADES):
        raise ResultsError(
            f"{where}: results version {version} is not supported (this vdeval reads versions "
            f"{', '.join(map(str, sorted([*UPGRADES, RESULTS_VERSION])))})",
            "upgrade vdeval, or re-run the suite with this version")
    while version != RESULTS_VERSION:
        data = UPGRADES[version](data)
        version = data["vdeval_results_version"]
    return data


def parse_results(data, where: str = "results") -> Results:
    """Validated Results from raw data (e.g. a parsed results.json), upgraded when older."""
    if not isinstance(data, dict):
        raise ResultsError(f"{where}: not a vdeval results file (not a JSON object)")
    data = upgrade(data, where)
    try:
        return Results.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(top level)"
        raise ResultsError(f"{where}: {loc}: {err.get('msg', 'invalid')}",
                           "the file was edited or damaged; re-run the suite") from None


def results_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / RESULTS_FILE if p.is_dir() else p


MAX_RESULTS_BYTES = 1 << 30  # 100,000 clips with curves fit well inside


def load_results(path: str | os.PathLike) -> Results:
    """Read a results.json (or the one inside a run directory): upgraded if older, refused with
    one line (ResultsError) if newer, unknown or damaged."""
    p = results_path(path)
    if not os.path.lexists(p):
        raise ResultsError(f"{p}: no results file", "give a run directory made by `vdeval run` or its results.json")
    return parse_results(read_json(p, MAX_RESULTS_BYTES, "results file", ResultsError), str(p))


def write_results(run: RunDir, results: Results) -> None:
    """results.json, clips.csv (and clips.parquet with pyarrow), each atomically."""
    _write_files(run, results.dump())


if __name__ == "__main__":  # python -m vdeval.results > docs/results.schema.json
    import sys

    sys.stdout.write(schema_text())
