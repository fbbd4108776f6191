"""Suite files: YAML as pure data, validated with pydantic, with `include:` for shared parts.

A suite names its generators, where prompts come from, seeds and samples per prompt, the real
(reference) set for distribution metrics, the metrics with their backbones, output settings and
optional regression `checks:`. `load_suite` returns a validated Suite or raises SuiteError whose
`problems` list every issue with its key path and, for misspelt names, the closest valid one.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vdeval import registry
from vdeval.errors import SuiteError, VdevalError
from vdeval.limits import MAX_SEED, BatchSize, Count, MemoryGB, Seed
from vdeval.rules import parse_rules
from vdeval.userfiles import read_text
from vdeval.video.ingest import IngestOptions
from vdeval.world.settings import MAX_FRAMES, MAX_SIDE, WorldSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Limits: a typo (an extra zero) must be refused in `validate`, not found by the OOM killer.
# Each field has a bound (MAX_SIDE and MAX_FRAMES in vdeval.world.settings), and CLIP_MEMORY_BUDGET
# caps their product: one clip's uint8 frames plus its optical flow (forward + backward, float32),
# e.g. 512 x 512 x 512 frames is about 2.4 GiB.
MAX_COUNT = 100_000  # prompts, real clips
MAX_SAMPLES = 1_000  # samples per prompt
CLIP_MEMORY_BUDGET = 2 * 2**30  # bytes: one clip's frames plus its flow features
MAX_SUITE_BYTES = 1 << 20  # a suite file is a page of YAML, not a data set
MAX_YAML_NODES = 100_000  # after expanding aliases: refuses "billion laughs" documents
# generator and suite names become folder names: one safe path component, never '.', '..' or empty
SAFE_NAME = re.compile(r"[^\W_][\w.+-]{0,63}")


def clip_memory_bytes(height: int, width: int, frames: int) -> int:
    """Estimated working memory of one clip: uint8 RGB frames plus forward and backward flow
    (2 channels, float32) over its frame pairs, the largest per-clip features a run keeps."""
    return height * width * (frames * 3 + max(frames - 1, 0) * 2 * 2 * 4)


def name_problem(name) -> str | None:
    """Why `name` cannot name a generator or a suite (it becomes a folder name), or None."""
    if not isinstance(name, str):
        return f"must be text, got {type(name).__name__} {name!r} (quote it: name: '{name}')"
    if not SAFE_NAME.fullmatch(name):
        return (f"{name!r} is not a safe folder name: use 1-64 letters, digits, '_', '.', '+' or '-', "
                "starting with a letter or digit")
    return None


class Prompts(_Strict):
    """source: world (captions of world clips, with their first frames as image-to-video
    references), file (one prompt per line), list (inline `items`), sidecar (the prompts of a
    CSV `file,prompt` or JSON sidecar, in its order: pair with a folder generator's
    `match: sidecar`), folder (the file names of the videos in `path`, VBench's convention,
    in sorted order: pair with `match: order`), images (your own conditioning images for
    image-to-video: `file:` a CSV / JSON sidecar of image and prompt, or a folder of images;
    see vdeval.video.conditioning), or vbench (VBench's prompt suite, the prompts of
    `dimensions`, default all; five samples a prompt unless `samples_per_prompt` says; pair a
    folder of VBench-named samples with `match: vbench`; see vdeval.prompt_suites)."""

    source: Literal["world", "file", "list", "sidecar", "folder", "images", "vbench"] = "world"
    count: Count = Field(8, ge=1, le=MAX_COUNT)
    seed: Seed = 0
    file: str | None = None
    items: list[str] | None = None
    path: str | None = None
    dimensions: list[str] | None = None  # source vbench: VBench's dimensions whose prompts to take

    @model_validator(mode="after")
    def _needs(self):
        if self.dimensions is not None and self.source != "vbench":
            raise ValueError("`dimensions:` is for source 'vbench'")
        if self.source == "vbench" and self.dimensions is not None:
            from vdeval.errors import closest
            from vdeval.prompt_suites import vbench_dimensions

            known = vbench_dimensions()
            for d in self.dimensions:
                if d not in known:
                    guess = closest(d, known)
                    raise ValueError(f"unknown VBench dimension {d!r}" + (f": did you mean {guess!r}?" if guess else
                                                                          f"; one of {', '.join(known)}"))
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
    count: Count = Field(64, ge=2, le=MAX_COUNT)
    seed: Seed = 100_000
    path: str | None = None
    ingest: IngestOptions = Field(default_factory=IngestOptions)  # frames, window, size of each real video

    @model_validator(mode="after")
    def _needs(self):
        if self.kind == "folder" and not self.path:
            raise ValueError("kind 'folder' needs `path:`")
        return self


def stylegan_v_fvd(entry: MetricEntry) -> bool:
    """Whether a metric entry is FVD under StyleGAN-V's protocol (named, or `auto` on i3d, which a
    suite with a folder real set uses when no backbone is named: natural footage)."""
    if entry.name != "fvd":
        return False
    protocol = entry.params.get("protocol", "auto")
    return protocol == "stylegan-v" or (protocol == "auto" and (entry.backbone or "i3d") == "i3d")


class Output(_Strict):
    dir: str | None = None  # relative to the suite file; default: runs/<suite name> in the working directory
    report: bool = True
    batch_size: BatchSize = 8
    # clips are featurized in groups whose frames and flow fit this (estimated at the backbones' input sizes)
    memory_gb: MemoryGB = 2.0
    # features larger than this per clip (flow of long real footage) are recomputed on a re-run, not stored
    cache_max_mb: float = Field(32.0, ge=0)


class Suite(_Strict):
    name: str
    description: str = ""
    world: WorldSettings = Field(default_factory=WorldSettings)
    prompts: Prompts = Field(default_factory=Prompts)
    samples_per_prompt: Count = Field(1, ge=1, le=MAX_SAMPLES)
    seed: Seed = 0
    generators: list[dict[str, Any]] = Field(min_length=1)
    real: RealSet | None = None
    metrics: list[MetricEntry] = Field(min_length=1)
    output: Output = Field(default_factory=Output)
    checks: list[dict[str, Any]] | None = None

    def real_ingest(self) -> IngestOptions:
        """The real set's ingest options. Where FVD runs StyleGAN-V's protocol and `real.ingest`
        names no window, StyleGAN-V's choice: a random window of 16 consecutive frames of each real
        video (seeded by `real.ingest.seed` and the file's name), not its first 16."""
        ingest = self.real.ingest if self.real else IngestOptions()
        if "window" in ingest.model_fields_set or not any(stylegan_v_fvd(m) for m in self.metrics):
            return ingest
        return ingest.model_copy(update={"window": "random", "frames": ingest.frames or 16})
    baseline: str | None = None  # the generator reports compare the others with (a generator's name)
    # set by load_suite, not by users
    source_path: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _vbench_samples(self):
        # VBench's protocol samples five videos a prompt: its default unless the suite says otherwise
        if self.prompts.source == "vbench" and "samples_per_prompt" not in self.model_fields_set:
            from vdeval.prompt_suites import VBENCH_SAMPLES

            self.samples_per_prompt = VBENCH_SAMPLES
        return self

    def generator_configs(self):
        """The generator entries as their kinds' validated Config objects."""
        return [registry.resolve("generator", g["kind"]).Config.model_validate(g) for g in self.generators]

    def metric_labels(self) -> list[str]:
        return metric_labels(self.metrics)

    @property
    def suite_dir(self) -> Path:
        return Path(self.source_path).parent if self.source_path else Path.cwd()

    def output_dir(self) -> Path:
        """Absolute run directory: `output.dir` relative to the suite file (like every path in a
        suite), else runs/<name> in the working directory."""
        if self.output.dir:
            p = Path(self.output.dir).expanduser()
            return p if p.is_absolute() else (self.suite_dir / p).resolve()
        return (Path.cwd() / "runs" / self.name).resolve()


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _expanded_size(node, memo: dict, active: set) -> int:
    """Nodes in the document once aliases are expanded; shared nodes count at every use."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise SuiteError("a YAML alias refers to a node that contains it (a recursive document)")
    active.add(key)
    size = 1
    if isinstance(node, yaml.MappingNode):
        _no_duplicate_keys(node)
    if isinstance(node.value, list):
        for item in node.value:
            for child in (item if isinstance(item, tuple) else (item,)):  # mappings hold (key, value) pairs
                size += _expanded_size(child, memo, active)
                if size > MAX_YAML_NODES:
                    break
    active.discard(key)
    memo[key] = size
    return size


def _no_duplicate_keys(node) -> None:
    """PyYAML keeps the last of two equal keys silently: a second `metrics:` would drop the first."""
    seen: dict = {}
    for k, _ in node.value:
        if isinstance(k, yaml.ScalarNode) and k.value != "<<":
            if k.value in seen:
                raise SuiteError(f"key {k.value!r} appears twice in one mapping (lines {seen[k.value]} and "
                                 f"{k.start_mark.line + 1}); the first would be ignored")
            seen[k.value] = k.start_mark.line + 1


def _safe_yaml(text: str, path: Path):
    """yaml.safe_load, refusing documents whose aliases expand past MAX_YAML_NODES nodes (a
    "billion laughs" suite would exhaust memory when merged, validated and hashed)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            n = _expanded_size(node, {}, set())
        except SuiteError as e:
            raise SuiteError(f"{path}: {e.message}", e.hint) from None
        if n > MAX_YAML_NODES:
            raise SuiteError(f"{path}: the YAML expands to more than {MAX_YAML_NODES:,} values through aliases "
                             "(&anchor / *alias)", "write the values out, or use fewer aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _includes(data: dict, path: Path) -> list[str]:
    includes = data.pop("include", None)
    if includes is None:
        return []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i and "\0" not in i for i in includes):
        raise SuiteError(f"{path}: include: must be a file name or a list of file names, got {includes!r}",
                         "e.g. include: shared.yaml")
    return includes


def _read_yaml(path: Path, seen: tuple = (), included_by: Path | None = None) -> dict:
    by = f" (included by {included_by})" if included_by else ""
    if path.resolve() in seen:
        raise SuiteError(f"{path}: include cycle through {' -> '.join(map(str, seen))}")
    if included_by is not None and path.suffix.lower() not in (".yaml", ".yml"):
        # an include is a part of a suite: refusing other names keeps `include: /etc/shadow` from
        # being read, and its lines from coming back as "unknown key" problems
        raise SuiteError(f"{path}: an include must be a .yaml or .yml file{by}", "include suite parts only")
    try:
        text = read_text(path, MAX_SUITE_BYTES, "suite file", SuiteError)
    except SuiteError as e:
        raise SuiteError(f"{e.message}{by}", e.hint) from None
    try:
        data = _safe_yaml(text, path)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SuiteError(f"{path}: not valid YAML{where} ({getattr(e, 'problem', None) or e}){by}") from None
    except RecursionError:
        raise SuiteError(f"{path}: the YAML is nested too deeply{by}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite must be a YAML mapping (key: value), got {type(data).__name__}{by}")
    merged: dict = {}
    for inc in _includes(data, path):
        merged = _merge(merged, _read_yaml(path.parent / inc, seen + (path.resolve(),), included_by=path))
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


def metric_labels(metrics: list[MetricEntry]) -> list[str]:
    """Each entry's column name: its label, else its name, or name[backbone] where names repeat."""
    counts: dict[str, int] = {}
    for m in metrics:
        counts[m.name] = counts.get(m.name, 0) + 1
    return [m.label or (m.name if counts[m.name] == 1 else f"{m.name}[{m.backbone or 'default'}]") for m in metrics]


def metric_problems(metrics: list[MetricEntry], has_real: bool | None = None, prefix: str = "metrics") -> list[str]:
    """What is wrong with metric entries: names, backbones each metric accepts, params, and (when
    `has_real` is given) a real set for metrics that compare with one. Suites and
    vdeval.evaluate / evaluate_set apply the same rules here."""
    problems: list[str] = []
    for i, m in enumerate(metrics):
        where = f"{prefix}[{i}]"
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
            cls.Params.model_validate(m.params)
        except ValidationError as e:
            problems += _pydantic_problems(e, f"{where}.params", valid_keys=lambda loc, c=cls: list(c.Params.model_fields))
        if getattr(cls, "needs_real", False) and has_real is False:
            problems.append(f"{where}: {m.name} compares with a real set; add a `real:` section")
    labels = metric_labels(metrics)
    dup = {lab for lab in labels if labels.count(lab) > 1}
    if dup:
        problems.append(f"{prefix}: labels {sorted(dup)} repeat; give each entry a distinct `label:`")
    return problems


class _PartialSuite(Suite):
    """What remains of a suite once the parts that failed its schema are left out, so that the
    checks after the schema run on it too and every problem is listed at once (not in rounds)."""

    name: str = "suite"
    generators: list[dict[str, Any]] = Field(default_factory=list)
    metrics: list[MetricEntry] = Field(default_factory=list)


def partial_suite(data: dict, err: ValidationError) -> tuple[Suite | None, dict]:
    """(the suite without what `err` names, {"generators"/"metrics": original index of each kept
    item}); None when even that does not parse (a top level that is no mapping)."""
    bad_top: set = set()
    bad_items: dict[str, set] = {"generators": set(), "metrics": set()}
    for e in err.errors():
        loc = e["loc"]
        if not loc:
            return None, {}
        if loc[0] in bad_items and len(loc) > 1 and isinstance(loc[1], int):
            bad_items[str(loc[0])].add(loc[1])
        else:
            bad_top.add(loc[0])
    kept = {k: v for k, v in data.items() if k not in bad_top}
    index = {}
    for key, bad in bad_items.items():
        items = kept.get(key)
        if isinstance(items, list):
            index[key] = [i for i in range(len(items)) if i not in bad]
            kept[key] = [items[i] for i in index[key]]
    try:
        return _PartialSuite.model_validate(kept), index
    except (ValidationError, TypeError):
        return None, {}


@dataclass
class Checked:
    """A suite mapping's problems, and the part of it the later checks (`validate --deep`) can
    still look at: `partial` with `index[key][j]` the original position of its j-th entry."""

    problems: list[str]
    partial: Suite | None
    index: dict = field(default_factory=dict)

    @property
    def suite(self) -> Suite | None:
        return self.partial if not self.problems else None

    def position(self, key: str, j: int) -> int:
        return self.index[key][j] if key in self.index else j


def validate_data(data: dict, source: str = "suite") -> tuple[Suite | None, list[str]]:
    """Every problem in a suite mapping, each as 'key.path: what is wrong'."""
    checked = check_data(data, source)
    return checked.suite, checked.problems


def check_data(data: dict, source: str = "suite") -> Checked:
    """Every problem at once. When the schema fails, the later checks still run on the rest of
    the suite (partial_suite); cross-references into a section left out whole are not reported,
    since they may be right."""
    problems: list[str] = []
    index: dict = {}
    suite: Suite | None
    try:  # model_validate, not Suite(**data): a key that is not text (`5: x`) is a problem, not a TypeError
        suite = Suite.model_validate(data)
    except ValidationError as e:
        problems = _pydantic_problems(e, valid_keys=lambda loc: _model_keys(Suite, loc))
        suite, index = partial_suite(data, e) if isinstance(data, dict) else (None, {})
    if suite is None:
        return Checked(problems, None)
    left_out = {k: [x for i, x in enumerate(data.get(k) or []) if i not in v]
                for k, v in index.items() if isinstance(data.get(k), list)}
    gen_index = index.get("generators", range(len(suite.generators)))
    metric_index = index.get("metrics", range(len(suite.metrics)))
    names_seen: set[str] = set()
    for i, g in zip(gen_index, suite.generators):
        where = f"generators[{i}]"
        kind, name = g.get("kind"), g.get("name")
        if name is None:
            problems.append(f"{where}.name: required key is missing")
        elif name_problem(name):
            problems.append(f"{where}.name: {name_problem(name)}")
            continue  # its Config would repeat the type error
        elif name in names_seen:
            problems.append(f"{where}.name: generator name {name!r} is used twice")
        if name is not None:
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
            cls.Config.model_validate(g)
        except ValidationError as e:
            problems += _pydantic_problems(e, where, valid_keys=lambda loc, c=cls: _model_keys(c.Config, loc))
    # each metric problem at the entry's own position in the file (a partial suite left some out)
    problems += [re.sub(r"^metrics\[(\d+)\]", lambda m: f"metrics[{metric_index[int(m.group(1))]}]", x)
                 for x in metric_problems(suite.metrics, has_real=suite.real is not None or "real" in data)]
    # names of left-out entries still count for cross-references; with a whole section left out
    # a reference may be right, so none into it is reported
    named = lambda items: [x.get("label") or x.get("name") for x in items if isinstance(x, dict)  # noqa: E731
                           and isinstance(x.get("label") or x.get("name"), str)]
    extra = {k: named(v) for k, v in left_out.items()}
    gens_complete = "generators" in suite.model_fields_set
    metrics_complete = "metrics" in suite.model_fields_set
    names = [g.get("name") for g in suite.generators] + extra.get("generators", [])
    if suite.baseline is not None and suite.baseline not in names and gens_complete:
        guess = registry.closest(suite.baseline, [str(n) for n in names])
        problems.append(f"baseline: {suite.baseline!r} is not a generator of this suite"
                        + (f" (did you mean {guess!r}?)" if guess else f" (generators: {', '.join(map(str, names))})"))
    if suite.checks is not None:
        problems += _check_problems(suite, gens_complete, metrics_complete, extra)
    problems += _limit_problems(suite)
    try:
        suite.world.spec()
    except VdevalError as e:
        problems.append(f"world: {e.message.removeprefix('invalid world spec: ')}")
    return Checked(problems, suite, index)


def _limit_problems(suite: Suite) -> list[str]:
    """Names that become folders, and sizes whose product no single field limit catches."""
    problems = []
    if name_problem(suite.name):
        problems.append(f"name: {name_problem(suite.name)}")
    if suite.output.dir is not None and "\0" in suite.output.dir:
        problems.append("output.dir: contains a NUL byte")
    w = suite.world
    need = clip_memory_bytes(w.height, w.width, w.frames)
    if need > CLIP_MEMORY_BUDGET:
        problems.append(f"world: {w.height}x{w.width}x{w.frames} frames needs about {need / 2**30:.1f} GiB per clip "
                        f"(frames and flow; limit {CLIP_MEMORY_BUDGET / 2**30:.0f} GiB): use fewer frames or pixels")
    for i, g in enumerate(suite.generators):  # generators that make their own frame counts and sizes
        sizes = {k: g.get(k) for k in ("num_frames", "window")}
        call = g.get("call_args")
        call = call if isinstance(call, dict) else {}
        sizes.update({f"call_args.{k}": call.get(k) for k in ("num_frames", "height", "width")})
        for key, v in sizes.items():
            limit = MAX_SIDE if key.endswith(("height", "width")) else MAX_FRAMES
            if isinstance(v, int) and not isinstance(v, bool) and not 1 <= v <= limit:
                problems.append(f"generators[{i}].{key}: {v} is outside 1..{limit}")
    last_seed = suite.seed + suite.prompts.count * suite.samples_per_prompt
    if last_seed > MAX_SEED:
        problems.append(f"seed: clip seeds run up to {last_seed}, above {MAX_SEED}: use a smaller seed")
    return problems


def _check_problems(suite: Suite, gens_complete: bool = True, metrics_complete: bool = True,
                    extra: dict | None = None) -> list[str]:
    """`checks:` must parse and name this suite's metrics and generators: a rule on a name the
    run never produces could only fail later, in CI, with a confusing message. Every rule is
    looked at, so one bad rule does not hide the next."""
    try:
        parse_rules(suite.checks, "checks")
    except VdevalError as e:
        if not isinstance(suite.checks, list) or not suite.checks:
            return [str(e)]
    problems, rules = [], []
    for i, raw in enumerate(suite.checks or []):
        try:
            rules.append((i, parse_rules([raw], f"checks[{i}]")[0]))
        except VdevalError as e:
            problems.append(str(e).replace(f"checks[{i}]: rule 1", f"checks[{i}]", 1))
    labels = suite.metric_labels() + (extra or {}).get("metrics", [])
    gens = [str(g.get("name")) for g in suite.generators] + (extra or {}).get("generators", [])
    for i, rule in rules:
        if rule.metric not in labels and metrics_complete:
            guess = registry.closest(rule.metric, labels)
            problems.append(f"checks[{i}].metric: {rule.metric!r} is not a metric of this suite"
                            + (f" (did you mean {guess!r}?)" if guess else f" (its metrics: {', '.join(labels)})"))
        if rule.generator is not None and rule.generator not in gens and gens_complete:
            guess = registry.closest(rule.generator, gens)
            problems.append(f"checks[{i}].generator: {rule.generator!r} is not a generator of this suite"
                            + (f" (did you mean {guess!r}?)" if guess else f" (its generators: {', '.join(gens)})"))
    return problems


def check_suite(path: str | os.PathLike) -> Checked:
    """A suite file's problems, every one at once (a file that is not YAML raises SuiteError)."""
    p = Path(path)
    checked = check_data(_read_yaml(p), str(p))
    if checked.partial is not None:
        checked.partial.source_path = str(p.resolve())
    return checked


def load_suite(path: str | os.PathLike) -> Suite:
    p = Path(path)
    data = _read_yaml(p)
    suite, problems = validate_data(data, str(p))
    if problems:
        err = SuiteError(f"{p}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: " + "; ".join(problems))
        err.problems = problems
        raise err
    assert suite is not None  # validate_data gives a suite where it finds no problems
    suite.source_path = str(p.resolve())
    return suite


def resolved_dict(suite: Suite) -> dict:
    """The suite as plain data with every default filled in: what results record and hash."""
    return suite.model_dump(mode="json")
