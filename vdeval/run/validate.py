"""`vdeval validate SUITE [--deep]`: every problem of a suite, one line each, exit 2 when any.

Fast (always): the suite as data (schema, names, params, limits, `checks:`), without importing torch
or any backbone, so it runs in a second in CI or a pre-commit hook.
Deep (`--deep`, on every part of the suite the fast checks could read, so both lists come at
once): what the run would find only once it started. The
prompts are built (files, sidecars, folders); each generator is set up as the run sets it up (a
missing folder or checkpoint, diffusers arguments); folder generators are matched against the
clips (files that match no clip, clips with no file, file counts against prompt counts); the real
set is counted; every metric's backbone is loaded as the run loads it (missing or corrupt weights,
with the command that installs them). This imports torch and loads the backbones.
"""
from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from vdeval import registry
from vdeval.errors import VdevalError
from vdeval.generators.base import allow_remote_code as remote_code
from vdeval.generators.folder import FolderGenerator, list_videos
from vdeval.run.cli import _REMOTE_CODE_HELP
from vdeval.suite import Checked, Suite, check_suite

MAX_LISTED = 5  # file names shown per problem line


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _one_line(e: VdevalError) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def folder_problems(where: str, gen, requests: list, n_prompts: int, samples: int,
                    vbench_names: list[str] | None = None) -> list[str]:
    """A folder generator's files against the clips the suite asks for: paired by prompt text and
    sample (a sidecar's or VBench-style names' prompts against the suite's), the first mismatching
    files named (`vbench_names`: each clip's VBench file stem, <prompt>-<sample>, for match: vbench)."""
    clip_ids = [r.clip_id for r in requests]
    match, n_clips, files = gen.config.match, len(clip_ids), gen.files
    if match == "vbench" and vbench_names is not None:
        absent = [n for n in vbench_names if n not in gen.by_stem]
        return [f"{where}: no file for {len(absent)} clip(s) in {gen.folder}: {_some(absent)} "
                "(VBench's naming: <prompt>-<sample>.mp4)"] if absent else []
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


def generator_problems(suite: Suite, requests: list | None, n_prompts: int, device: str,
                       vbench_names: list[str] | None = None, position=lambda key, j: j) -> list[str]:
    """Each generator set up as the run sets it up; folders matched against the clips (when the
    prompts could be built). Entries whose config the fast check refused are skipped."""
    from vdeval.run.runner import make_generator  # deep mode only (see deep_problems)

    out = []
    for j, entry in enumerate(suite.generators):
        try:
            config = registry.resolve("generator", str(entry.get("kind"))).Config(**entry)
        except (VdevalError, ValidationError, TypeError):
            continue  # listed by the fast check
        where = f"generators[{position('generators', j)}] ({config.name})"
        try:
            gen = make_generator(config, suite)
            gen.prepare(device)
        except VdevalError as e:
            out.append(f"{where}: {_one_line(e)}")
            continue
        if isinstance(gen, FolderGenerator) and requests is not None:
            out += folder_problems(where, gen, requests, n_prompts, suite.samples_per_prompt, vbench_names)
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


def weights_problems(suite: Suite, device: str, position=lambda key, j: j, partial: bool = False) -> list[str]:
    """Every metric's backbone checked as the run checks it before any work (options, weights file,
    sha256 and format; no network built): missing weights, one line per metric."""
    from vdeval.run.domains import load_metric_backbones, metric_backbone, suite_domain
    from vdeval.run.featurize import BackbonePool  # deep mode only (see deep_problems)

    # the domain from the generators whose kind exists (a misspelt one is the fast check's problem)
    kinds = [str(g.get("kind")) for g in suite.generators if g.get("kind") in registry.names("generator")]
    domain = suite_domain(kinds, suite.real.kind if suite.real else None)
    pool, out = BackbonePool(device), []
    for j, (label, entry) in enumerate(zip(suite.metric_labels(), suite.metrics)):
        where = f"metrics[{position('metrics', j)}]"
        try:
            cls = registry.resolve("metric", entry.name)
            metric = cls(backbone=metric_backbone(cls, entry.backbone, domain), **entry.params)
        except (VdevalError, ValidationError, TypeError) as e:
            if not partial:  # with fast problems, the fast check has listed this entry's
                out.append(f"{where}: {_one_line(e) if isinstance(e, VdevalError) else e}")
            continue
        try:
            load_metric_backbones({label: metric}, pool, {label: entry.backbone})
        except VdevalError as e:
            out.append(f"{where}: {_one_line(e)}")
    return out


def deep_problems(suite: Suite, device: str = "cpu", checked: Checked | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes) that only reading files and loading backbones finds; every one at once:
    a prompt source that cannot be read still lets the generators, real set and weights be checked.
    `checked` (check_suite's answer) when the suite had fast problems: its parts that parsed."""
    # imported here, not at the top: every CLI command registers this module, and the fast check
    # must not pay for the runner and the backbones
    from vdeval.run.runner import build_prompts, build_requests

    position = checked.position if checked is not None else (lambda key, j: j)
    partial = checked is not None and bool(checked.problems)
    out: list[str] = []
    prompts = None
    try:
        prompts = build_prompts(suite)
        if not prompts:
            out.append("prompts: the prompt source gives no prompts")
    except VdevalError as e:
        out.append(f"prompts: {_one_line(e)}")
    if prompts and suite.prompts.source != "world" and "count" in suite.prompts.model_fields_set \
            and suite.prompts.count != len(prompts):
        out.append(f"prompts.count: {suite.prompts.count} given, but the {suite.prompts.source} source holds "
                   f"{len(prompts)} prompts and all are used (count applies to world prompts; remove it, or "
                   "use --limit N)")
    requests, vbench_names = None, None
    if prompts:
        try:
            requests = build_requests(suite, prompts)
            vbench_names = [f"{r.prompt}-{r.meta['sample']}" for r in requests]
        except VdevalError as e:
            out.append(f"prompts: {_one_line(e)}")
    out += generator_problems(suite, requests, len(prompts or []), device, vbench_names, position)
    real, notes = real_problems(suite)
    return out + real + weights_problems(suite, device, position, partial), notes


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
    with remote_code(allow_remote_code):
        checked = check_suite(suite)  # a file that is not YAML raises its one problem
    problems = list(checked.problems)
    s = checked.partial
    if deep and s is not None:  # on what parsed, so --deep adds its problems instead of waiting a round
        with remote_code(allow_remote_code):
            found, notes = deep_problems(s, device, checked)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        problems += found
    if problems or s is None:
        _report(suite, problems)
    assert s is not None  # no problems: the whole suite parsed
    summary = f"{len(s.generators)} generators, {len(s.metrics)} metrics"
    if deep:
        summary += "; prompts, folders, generators and weights checked"
    typer.echo(f"{suite}: ok ({summary})")


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
