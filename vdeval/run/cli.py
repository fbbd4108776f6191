"""`vdeval run` (`vdeval validate` is in validate.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

EXIT_SOME_CLIPS_FAILED = 3


_REMOTE_CODE_HELP = ("Let generators run Python code shipped with a model (diffusers custom_pipeline, "
                     "trust_remote_code). Only for models whose code you trust; a suite file can never allow it.")


def run(
    suite: Path = typer.Argument(..., help="Suite YAML file."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory (default: the suite's output.dir or runs/<name>)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when torch sees it, else cpu), cpu or cuda[:N]."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="Feature cache shared across runs (default: inside the run)."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML/Markdown report into the run directory."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars on stderr (--no-progress "
                                  "for CI logs)."),
    log: list[str] | None = typer.Option(None, "--log", metavar="TOOL", help="Also log to tensorboard, wandb or mlflow "
                                            "(repeat for several; see `vdeval log`)."),
    allow_remote_code: bool = typer.Option(False, "--allow-remote-code", help=_REMOTE_CODE_HELP),
):
    """Generate, score and write results; re-running resumes where it stopped.

    Under torchrun (`torchrun --nproc_per_node N -m vdeval run SUITE`) clips are split across
    ranks and rank 0 writes the results."""
    from vdeval.errors import VdevalError
    from vdeval.run import distributed
    from vdeval.store import RunLock
    from vdeval.suite import load_suite

    if log:
        from vdeval.log import TARGETS

        for target in log:  # a typo fails before the run, not after it
            if target not in TARGETS:
                raise VdevalError(f"--log must be one of {', '.join(TARGETS)}, got {target!r}")
    from vdeval.limits import device_problem

    if device_problem(device):  # the same rule as vdeval.evaluate(device=...)
        raise VdevalError(f"--device {device_problem(device)}, got {device!r}")
    from vdeval.api import resolve_device

    device = resolve_device(device)
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
        _run_locked(s, run_dir, device, limit, cache_dir, report, progress, ranks, allow_remote_code, log)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(s, run_dir: Path, device, limit, cache_dir, report, progress, ranks, allow_remote_code=False,
                log=None) -> None:
    from vdeval.report.terminal import render as render_summary
    from vdeval.run import distributed
    from vdeval.run.runner import Runner

    distributed.init(ranks, device)
    try:
        outcome = Runner(s, out=run_dir, device=device, limit=limit, cache_dir=cache_dir, progress=progress,
                         ranks=ranks, allow_remote_code=allow_remote_code).execute()
    finally:
        distributed.finish(ranks)
    if not ranks.is_main:
        return
    from vdeval.report.terminal import output_width

    # the terminal's width ($COLUMNS); a log file or pipe gets a fixed default, not 200 columns
    typer.echo(render_summary(outcome.results, width=output_width()))
    typer.echo(f"\n{outcome.n_clips} clips, {outcome.n_failed} failed, {outcome.seconds:.1f} s; results: {outcome.run_dir / 'results.json'}")
    if report and s.output.report and importlib.util.find_spec("vdeval.report") is not None:
        from vdeval.report import write_report

        index = write_report([outcome.run_dir], outcome.run_dir / "report")
        typer.echo(f"report: {index}")
    for target in log or []:
        from vdeval.log import log_run

        typer.echo(f"logged to {target}: {log_run([outcome.run_dir], target)}")
    if outcome.n_failed:
        typer.echo(f"{outcome.n_failed} clip(s) failed; see 'failures' in results.json", err=True)
        raise typer.Exit(EXIT_SOME_CLIPS_FAILED)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
