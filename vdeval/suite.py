"""Suite files: YAML as pure data, validated with pydantic, with `include:` for shared parts.

A suite names its generators, where prompts come from, seeds and samples per prompt, the real
(reference) set for distribution metrics, the metrics with their backbones, output settings and
optional regression `checks:`. `load_suite` returns a validated Suite or raises SuiteError whose
`problems` list every issue with its key path and, for misspelt names, the closest valid one.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdeval import registry
from vdeval.errors import SuiteError, VdevalError
from vdeval.video.ingest import IngestOptions
from vdeval.world.scene import WorldSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldSettings(_Strict):
    """The shapes world used for world prompts, world generators and world real sets."""

    height: int = Field(32, ge=8)
    width: int = Field(32, ge=8)
    frames: int = Field(8, ge=1)
    fps: float = Field(8.0, gt=0)
    min_objects: int = Field(1, ge=1, le=2)
    max_objects: int = Field(1, ge=1, le=2)
    shapes: list[str] | None = None
    colors: list[str] | None = None
    sizes: list[str] | None = None
    motions: list[str] | None = None
    speeds: list[str] | None = None
    backgrounds: list[str] | None = None
    pan_probability: float = Field(0.0, ge=0, le=1)

    def spec(self) -> WorldSpec:
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in self.model_dump().items() if v is not None}
        return WorldSpec(**d)


class Prompts(_Strict):
    """source: world (captions of world clips, with their first frames as image-to-video
    references), file (one prompt per line), list (inline `items`), sidecar (the prompts of a
    CSV `file,prompt` or JSON sidecar, in its order: pair with a folder generator's
    `match: sidecar`), folder (the file names of the videos in `path`, VBench's convention,
    in sorted order: pair with `match: order`), or images (your own conditioning images for
    image-to-video: `file:` a CSV / JSON sidecar of image and prompt, or a folder of images;
    see vdeval.video.conditioning)."""

    source: Literal["world", "file", "list", "sidecar", "folder", "images"] = "world"
    count: int = Field(8, ge=1)
    seed: int = 0
    file: str | None = None
    items: list[str] | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _needs(self):
        if self.source in ("file", "sidecar", "images") and not self.file:
            raise ValueError(f"source {self.source!r} needs `file:`")
        if self.source == "folder" and not self.path:
            raise ValueError("source 'folder' needs `path:` (the folder of videos)")
        if self.source == "list" and not self.items:
            raise ValueError("source 'list' needs a non-empty `items:` list")
        return self


class MetricEntry(_Strict):
    name: str
    backbone: str | None = None
    label: str | None = None  # column name in results; default: name, or name[backbone] on clashes
    params: dict[str, Any] = Field(default_factory=dict)


class RealSet(_Strict):
    """The reference set for distribution metrics (FVD, KVD)."""

    kind: Literal["world", "folder"] = "world"
    count: int = Field(64, ge=2)
    seed: int = 100_000
    path: str | None = None
    ingest: IngestOptions = Field(default_factory=IngestOptions)  # frames, window, size of each real video

    @model_validator(mode="after")
    def _needs(self):
        if self.kind == "folder" and not self.path:
            raise ValueError("kind 'folder' needs `path:`")
        return self


class Output(_Strict):
    dir: str | None = None  # default: runs/<suite name>
    report: bool = True
    batch_size: int = Field(8, ge=1)
    # clips are featurized in groups whose frames and flow fit this (estimated at the backbones' input sizes)
    memory_gb: float = Field(2.0, gt=0)
    # features larger than this per clip (flow of long real footage) are recomputed on a re-run, not stored
    cache_max_mb: float = Field(32.0, ge=0)


class Suite(_Strict):
    name: str
    description: str = ""
    world: WorldSettings = Field(default_factory=WorldSettings)
    prompts: Prompts = Field(default_factory=Prompts)
    samples_per_prompt: int = Field(1, ge=1)
    seed: int = 0
    generators: list[dict[str, Any]] = Field(min_length=1)
    real: RealSet | None = None
    metrics: list[MetricEntry] = Field(min_length=1)
    output: Output = Field(default_factory=Output)
    checks: list[dict[str, Any]] | None = None
    baseline: str | None = None  # the generator reports compare the others with (a generator's name)
    # set by load_suite, not by users
    source_path: str | None = Field(None, exclude=True)

    def generator_configs(self):
        """The generator entries as their kinds' validated Config objects."""
        return [registry.resolve("generator", g["kind"]).Config(**g) for g in self.generators]

    def metric_labels(self) -> list[str]:
        counts: dict[str, int] = {}
        for m in self.metrics:
            counts[m.name] = counts.get(m.name, 0) + 1
        return [m.label or (m.name if counts[m.name] == 1 else f"{m.name}[{m.backbone or 'default'}]") for m in self.metrics]

    @property
    def suite_dir(self) -> Path:
        return Path(self.source_path).parent if self.source_path else Path.cwd()


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if path.resolve() in seen:
        raise SuiteError(f"{path}: include cycle through {' -> '.join(map(str, seen))}")
    if not path.exists():
        raise SuiteError(f"{path}: no such suite file")
    if path.is_dir():
        raise SuiteError(f"{path}: is a folder, not a suite file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e})") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a text file") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping (key: value), got {type(data).__name__}")
    includes = data.pop("include", None) or []
    if isinstance(includes, str):
        includes = [includes]
    merged: dict = {}
    for inc in includes:
        merged = _merge(merged, _read_yaml((path.parent / inc), seen + (path.resolve(),)))
    return _merge(merged, data)


def _loc(loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _pydantic_problems(err: ValidationError, prefix: str = "", valid_keys=None) -> list[str]:
    problems = []
    for e in err.errors():
        path = _loc(((prefix,) if prefix else ()) + tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            key = e["loc"][-1]
            options = valid_keys(e["loc"][:-1]) if valid_keys else []
            guess = registry.closest(str(key), options)
            problems.append(f"{path}: unknown key" + (f" (did you mean {guess!r}?)" if guess else ""))
        elif e["type"] == "missing":
            problems.append(f"{path}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {msg} (got {e.get('input')!r})" if "input" in e and not isinstance(e.get("input"), dict) else f"{path}: {msg}")
    return problems


def _model_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for "did you mean" on unknown keys."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        ann = getattr(field, "annotation", None)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            args = getattr(ann, "__args__", ()) or ()
            nested = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not nested:
                return []
            model = nested[0]
    return list(model.model_fields)


def validate_data(data: dict, source: str = "suite") -> tuple[Suite | None, list[str]]:
    """Every problem in a suite mapping, each as 'key.path: what is wrong'."""
    problems: list[str] = []
    try:
        suite = Suite(**data)
    except ValidationError as e:
        return None, _pydantic_problems(e, valid_keys=lambda loc: _model_keys(Suite, loc))
    names_seen: set[str] = set()
    for i, g in enumerate(suite.generators):
        where = f"generators[{i}]"
        kind, name = g.get("kind"), g.get("name")
        if name is None:
            problems.append(f"{where}.name: required key is missing")
        elif name in names_seen:
            problems.append(f"{where}.name: generator name {name!r} is used twice")
        elif name.startswith("_") or "/" in str(name):
            problems.append(f"{where}.name: {name!r} may not start with '_' or contain '/'")
        names_seen.add(name)
        if kind is None:
            problems.append(f"{where}.kind: required key is missing (one of {', '.join(registry.names('generator'))})")
            continue
        try:
            cls = registry.resolve("generator", kind)
        except VdevalError as e:
            problems.append(f"{where}.kind: {e}")
            continue
        try:
            cls.Config(**g)
        except ValidationError as e:
            problems += _pydantic_problems(e, where, valid_keys=lambda loc, c=cls: _model_keys(c.Config, loc))
    for i, m in enumerate(suite.metrics):
        where = f"metrics[{i}]"
        try:
            cls = registry.resolve("metric", m.name)
        except VdevalError as e:
            problems.append(f"{where}.name: {e}")
            continue
        if m.backbone is not None:
            try:
                registry.check_name("backbone", m.backbone)
            except VdevalError as e:
                problems.append(f"{where}.backbone: {e}")
                continue
            if cls.allowed_backbones == ():
                problems.append(f"{where}.backbone: {m.name} takes no backbone; remove `backbone: {m.backbone}`")
            elif cls.allowed_backbones is not None and m.backbone not in cls.allowed_backbones:
                problems.append(f"{where}.backbone: {m.name} works with {', '.join(cls.allowed_backbones)}, not {m.backbone!r}")
        try:
            cls.Params(**m.params)
        except ValidationError as e:
            problems += _pydantic_problems(e, f"{where}.params", valid_keys=lambda loc, c=cls: list(c.Params.model_fields))
        if getattr(cls, "needs_real", False) and suite.real is None:
            problems.append(f"{where}: {m.name} compares with a real set; add a `real:` section")
    names = [g.get("name") for g in suite.generators]
    if suite.baseline is not None and suite.baseline not in names:
        guess = registry.closest(suite.baseline, [str(n) for n in names])
        problems.append(f"baseline: {suite.baseline!r} is not a generator of this suite"
                        + (f" (did you mean {guess!r}?)" if guess else f" (generators: {', '.join(map(str, names))})"))
    if suite.checks is not None:
        from vdeval.check import parse_rules

        try:
            parse_rules(suite.checks, "checks")
        except VdevalError as e:
            problems.append(str(e))
    labels = suite.metric_labels()
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        problems.append(f"metrics: labels {sorted(dup)} repeat; give each entry a distinct `label:`")
    try:
        suite.world.spec()
    except VdevalError as e:
        problems.append(f"world: {e.message.removeprefix('invalid world spec: ')}")
    return (suite if not problems else None), problems


def load_suite(path: str | os.PathLike) -> Suite:
    p = Path(path)
    data = _read_yaml(p)
    suite, problems = validate_data(data, str(p))
    if problems:
        err = SuiteError(f"{p}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: " + "; ".join(problems))
        err.problems = problems
        raise err
    suite.source_path = str(p.resolve())
    return suite


def resolved_dict(suite: Suite) -> dict:
    """The suite as plain data with every default filled in: what results record and hash."""
    return suite.model_dump(mode="json")
