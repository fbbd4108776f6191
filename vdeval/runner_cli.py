"""`vdeval run` and `vdeval validate`."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional

import typer

from vdeval.errors import SuiteError

EXIT_SOME_CLIPS_FAILED = 3


_REMOTE_CODE_HELP = ("Let generators run Python code shipped with a model (diffusers custom_pipeline, "
                     "trust_remote_code). Only for models whose code you trust; a suite file can never allow it.")


def validate(suite: Path = typer.Argument(..., help="Suite YAML file."),
             allow_remote_code: bool = typer.Option(False, "--allow-remote-code", help=_REMOTE_CODE_HELP)):
    """Check a suite file and list every problem with its key path."""
    from vdeval.generators.base import allow_remote_code as remote_code
    from vdeval.suite import load_suite

    try:
        with remote_code(allow_remote_code):
            s = load_suite(suite)
    except SuiteError as e:
        problems = getattr(e, "problems", None)
        if not problems:
            raise
        typer.echo(f"{suite}: {len(problems)} problem{'s' if len(problems) > 1 else ''}", err=True)
        for p in problems:
            typer.echo(f"  {p}", err=True)
        raise typer.Exit(2)
    typer.echo(f"{suite}: ok ({len(s.generators)} generators, {len(s.metrics)} metrics)")


def run(
    suite: Path = typer.Argument(..., help="Suite YAML file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run directory (default: the suite's output.dir or runs/<name>)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when torch sees it, else cpu), cpu or cuda[:N]."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Feature cache shared across runs (default: inside the run)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML/Markdown report into the run directory."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    allow_remote_code: bool = typer.Option(False, "--allow-remote-code", help=_REMOTE_CODE_HELP),
):
    """Generate, score and write results; re-running resumes where it stopped.

    Under torchrun (`torchrun --nproc_per_node N -m vdeval run SUITE`) clips are split across
    ranks and rank 0 writes the results."""
    from vdeval import distributed
    from vdeval.store import RunLock
    from vdeval.suite import load_suite

    if not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise typer.BadParameter(f"--device must be auto, cpu or cuda[:N], got {device!r}")
    if device == "auto":
        from vdeval.api import resolve_device

        device = resolve_device(device)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            from vdeval.errors import VdevalError

            raise VdevalError("--device cuda was asked for but torch sees no CUDA device", "use --device cpu")
    from vdeval.generators.base import allow_remote_code as remote_code

    with remote_code(allow_remote_code):
        s = load_suite(suite)
    ranks = distributed.from_environment()  # set by torchrun; one rank otherwise
    run_dir = Path(out) if out is not None else s.output_dir()
    # one writer per run folder: rank 0 holds the lock for all ranks, until the report is written
    lock = RunLock(run_dir, log=lambda m: typer.echo(m, err=True)) if ranks.is_main else None
    if lock is not None:
        lock.acquire()
    try:
        _run_locked(s, run_dir, device, limit, cache_dir, report, progress, ranks, allow_remote_code)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(s, run_dir: Path, device, limit, cache_dir, report, progress, ranks, allow_remote_code=False) -> None:
    from vdeval import distributed
    from vdeval.runner import Runner, format_summary

    distributed.init(ranks, device)
    try:
        outcome = Runner(s, out=run_dir, device=device, limit=limit, cache_dir=cache_dir, progress=progress,
                         ranks=ranks, allow_remote_code=allow_remote_code).execute()
    finally:
        distributed.finish(ranks)
    if not ranks.is_main:
        return
    typer.echo(format_summary(outcome.results))
    typer.echo(f"\n{outcome.n_clips} clips, {outcome.n_failed} failed, {outcome.seconds:.1f} s; results: {outcome.run_dir / 'results.json'}")
    if report and s.output.report and importlib.util.find_spec("vdeval.report") is not None:
        from vdeval.report import write_report

        index = write_report([outcome.run_dir], outcome.run_dir / "report")
        typer.echo(f"report: {index}")
    if outcome.n_failed:
        typer.echo(f"{outcome.n_failed} clip(s) failed; see 'failures' in results.json", err=True)
        raise typer.Exit(EXIT_SOME_CLIPS_FAILED)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("validate")(validate)
