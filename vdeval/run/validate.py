"""`vdeval validate SUITE [--deep]`: every problem of a suite, one line each, exit 2 when any.

Fast (always): the suite as data (schema, names, params, limits, `checks:`), without importing torch
or any backbone, so it runs in a second in CI or a pre-commit hook.
Deep (`--deep`, after the fast checks pass): what the run would find only once it started. The
prompts are built (files, sidecars, folders); each generator is set up as the run sets it up (a
missing folder or checkpoint, diffusers arguments); folder generators are matched against the
clips (files that match no clip, clips with no file, file counts against prompt counts); the real
set is counted; every metric's backbone is loaded as the run loads it (missing or corrupt weights,
with the command that installs them). This imports torch and loads the backbones.
"""
from __future__ import annotations

from pathlib import Path

import typer

from vdeval.errors import SuiteError, VdevalError
from vdeval.generators.base import allow_remote_code as remote_code
from vdeval.generators.folder import FolderGenerator, list_videos
from vdeval.run.cli import _REMOTE_CODE_HELP
from vdeval.suite import Suite, load_suite

MAX_LISTED = 5  # file names shown per problem line


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _one_line(e: VdevalError) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def folder_problems(where: str, gen, requests: list, n_prompts: int, samples: int) -> list[str]:
    """A folder generator's files against the clips the suite asks for: paired by prompt text and
    sample (a sidecar's or VBench-style names' prompts against the suite's), the first mismatching
    files named."""
    clip_ids = [r.clip_id for r in requests]
    match, n_clips, files = gen.config.match, len(clip_ids), gen.files
    mode = gen.pairing()
    out = []
    if gen.rows is not None:  # a sidecar names the files
        missing = [name for name, _ in gen.rows if not (gen.folder / name).exists()]
        if missing:
            out.append(f"{where}.sidecar: names {len(missing)} file(s) missing from {gen.folder}: {_some(missing)}")
        if gen.unlisted():
            out.append(f"{where}: {len(gen.unlisted())} file(s) in {gen.folder} match no clip (not in the sidecar): "
                       f"{_some(gen.unlisted())}")
    if mode in ("sidecar", "names"):
        return out + content_problems(where, gen, requests, mode)
    if gen.rows is not None:
        return out
    if match == "order":
        if len(files) != n_clips:
            return [f"{where}: {gen.folder} holds {len(files)} videos for {n_clips} clips ({n_prompts} prompts x "
                    f"{samples} samples; match: order pairs the i-th file with the i-th clip)"]
        return []
    wanted = set(clip_ids)
    stray = sorted(p.name for stem, p in gen.by_stem.items() if stem not in wanted)
    absent = [c for c in clip_ids if c not in gen.by_stem]
    out = []
    if stray:
        out.append(f"{where}: {len(stray)} file(s) in {gen.folder} match no clip: {_some(stray)} (clips are named "
                   f"p<prompt>_s<sample>, here p000_s0 to {clip_ids[-1]}; or use match: order)")
    if absent:
        out.append(f"{where}: no file for {len(absent)} clip(s): {_some(absent)}")
    return out


def content_problems(where: str, gen, requests: list, mode: str) -> list[str]:
    """Files whose prompt (sidecar row or VBench-style name) the suite does not ask for, and clips
    with no file of their prompt and sample: each with the first one named."""
    from vdeval.generators.folder import occurrence

    source = "sidecar" if mode == "sidecar" else "file name"
    wanted = {r.prompt for r in requests}
    have = gen.by_prompt()
    foreign = [(name, p) for p, rows in have.items() if p not in wanted for name, _ in rows]
    out = []
    if foreign:
        name, p = foreign[0]
        near = sorted(wanted)[:1]
        out.append(f"{where}: {len(foreign)} file(s) whose {source} prompt is not among the suite's prompts, first "
                   f"{name!r} ({p!r}{f'; the suite has e.g. {near[0]!r}' if near else ''}): clips are paired by prompt "
                   "text and sample, never by position")
    absent = [r for r in requests if occurrence(r) >= len(have.get(r.prompt, []))]
    if absent:
        r = absent[0]
        out.append(f"{where}: no file for {len(absent)} clip(s), first {r.clip_id} (prompt {r.prompt!r}, sample "
                   f"{occurrence(r)})")
    return out


def generator_problems(suite: Suite, requests: list, n_prompts: int, device: str) -> list[str]:
    """Each generator set up as the run sets it up; folders matched against the clips."""
    from vdeval.run.runner import make_generator  # deep mode only (see deep_problems)

    out = []
    for i, config in enumerate(suite.generator_configs()):
        where = f"generators[{i}] ({config.name})"
        try:
            gen = make_generator(config, suite)
            gen.prepare(device)
        except VdevalError as e:
            out.append(f"{where}: {_one_line(e)}")
            continue
        if isinstance(gen, FolderGenerator):
            out += folder_problems(where, gen, requests, n_prompts, suite.samples_per_prompt)
    return out


def real_problems(suite: Suite) -> tuple[list[str], list[str]]:
    """(problems, notes) of a folder real set: it needs 2 videos, and uses min(count, files)."""
    real = suite.real
    if real is None or real.kind != "folder":
        return [], []
    assert real.path is not None  # Real's validator requires `path:` for kind folder
    folder = Path(real.path) if Path(real.path).is_absolute() else suite.suite_dir / real.path
    if not folder.is_dir():
        return [f"real.path: {folder} is not a folder"], []
    n = len(list_videos(folder))
    if n < 2:
        return [f"real.path: {folder} holds {n} videos; distribution metrics need at least 2"], []
    if n < real.count:
        return [], [f"real.count is {real.count} but {folder} holds {n} videos: the real set will have {n}"]
    return [], []


def weights_problems(suite: Suite, device: str) -> list[str]:
    """Every metric's backbone loaded as the run loads it: missing weights, one line per metric."""
    from vdeval import registry
    from vdeval.run.domains import load_metric_backbones, metric_backbone, suite_domain
    from vdeval.run.featurize import BackbonePool  # deep mode only (see deep_problems)

    domain = suite_domain([g["kind"] for g in suite.generators], suite.real.kind if suite.real else None)
    pool, out = BackbonePool(device), []
    for i, (label, entry) in enumerate(zip(suite.metric_labels(), suite.metrics)):
        try:
            cls = registry.resolve("metric", entry.name)
            metric = cls(backbone=metric_backbone(cls, entry.backbone, domain), **entry.params)
            load_metric_backbones({label: metric}, pool, {label: entry.backbone})
        except VdevalError as e:
            out.append(f"metrics[{i}]: {_one_line(e)}")
    return out


def deep_problems(suite: Suite, device: str = "cpu") -> tuple[list[str], list[str]]:
    """(problems, notes) that only reading files and loading backbones finds."""
    # imported here, not at the top: every CLI command registers this module, and the fast check
    # must not pay for the runner and the backbones
    from vdeval.run.runner import build_prompts, build_requests

    try:
        prompts = build_prompts(suite)
    except VdevalError as e:
        return [f"prompts: {_one_line(e)}"], []
    if not prompts:
        return ["prompts: the prompt source gives no prompts"], []
    count_problem = []
    if suite.prompts.source != "world" and "count" in suite.prompts.model_fields_set and suite.prompts.count != len(prompts):
        count_problem = [f"prompts.count: {suite.prompts.count} given, but the {suite.prompts.source} source holds "
                         f"{len(prompts)} prompts and all are used (count applies to world prompts; remove it, or "
                         "use --limit N)"]
    problems = generator_problems(suite, build_requests(suite, prompts), len(prompts), device)
    real, notes = real_problems(suite)
    return count_problem + problems + real + weights_problems(suite, device), notes


def _report(suite_path: Path, problems: list[str]) -> None:
    typer.echo(f"{suite_path}: {len(problems)} problem{'s' if len(problems) > 1 else ''}", err=True)
    for p in problems:
        typer.echo(f"  {p}", err=True)
    raise typer.Exit(2)


def validate(suite: Path = typer.Argument(..., help="Suite YAML file."),
             deep: bool = typer.Option(False, "--deep", help="Also read the prompts and folders, set up the generators "
                                       "and load every backbone (imports torch)."),
             device: str = typer.Option("cpu", "--device", help="With --deep: the device generators are set up for."),
             allow_remote_code: bool = typer.Option(False, "--allow-remote-code", help=_REMOTE_CODE_HELP)):
    """Check a suite file and list every problem with its key path."""
    try:
        with remote_code(allow_remote_code):
            s = load_suite(suite)
    except SuiteError as e:
        if not getattr(e, "problems", None):
            raise
        _report(suite, e.problems)
    summary = f"{len(s.generators)} generators, {len(s.metrics)} metrics"
    if deep:
        with remote_code(allow_remote_code):
            problems, notes = deep_problems(s, device)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        if problems:
            _report(suite, problems)
        summary += "; prompts, folders, generators and weights checked"
    typer.echo(f"{suite}: ok ({summary})")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
