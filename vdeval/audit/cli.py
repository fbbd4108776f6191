"""`vdeval audit`: the command (parse, call run_audit, write the outputs)."""
from __future__ import annotations

from pathlib import Path

import typer

from vdeval.audit.core import run_audit
from vdeval.audit.rendering import to_markdown, write_audit
from vdeval.errors import VdevalError
from vdeval.run.featurize import FeatureCache


def _split(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _natural(given: list[Path], out: Path) -> Path:
    """frozen_motion on natural footage: moving windows vs held frames (vdeval/audit/natural_calibration.py)."""
    import pandas as pd

    from vdeval.audit.natural_calibration import HELD_TARGET, MOVING_TARGET, frozen_motion_natural, summary
    from vdeval.generators.folder import list_videos

    files = [f for g in given for f in (list_videos(g) if g.is_dir() else [g])]
    rows = frozen_motion_natural(files)
    s = summary(rows)
    path = out / "natural.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    typer.echo(f"frozen_motion on natural footage ({s['windows']} windows of {len(files)} files): moving called frozen "
               f"{s['moving_frozen']:.1%} (target <= {MOVING_TARGET:.0%}), held frames {s['held_frozen']:.1%} "
               f"(target >= {HELD_TARGET:.0%})")
    return path


def _partial_freezes(world_videos: list, natural_files: list[Path], out: Path) -> Path:
    """Partial freezes (25/50/75% at start, middle, end) on world and natural clips (audit/freezes.py)."""
    import pandas as pd

    from vdeval.audit.freezes import partial_freeze_audit
    from vdeval.video.protocol import InputSpec
    from vdeval.video.source import FileSource

    rows = partial_freeze_audit(world_videos, "world")
    if natural_files:
        rows += partial_freeze_audit([FileSource(f).decode(InputSpec(max_short_side=256)) for f in natural_files], "natural")
    path = out / "partial_freezes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    typer.echo("partial freezes: true share, frozen_share measured, its AUROC, longest stretch (s), caught by "
               "frozen_motion (VBench's clip rule)")
    for r in rows:
        typer.echo(f"  {r['domain']:7s} {r['share']:.0%} at {r['where']:6s}: share {r['frozen_share']:.2f}, AUROC "
                   f"{r['frozen_share_auroc']:.2f}, {r['frozen_seconds']:.2f} s, frozen_motion {r['frozen_motion_caught']:.0%}")
    return path
def _grid(given: list[Path], out: Path, n: int, large: bool, families, metrics=None, backbone=None) -> None:
    from vdeval.audit.core import _parse_backbones
    from vdeval.audit.grid import FAMILY_SCORES, grid_markdown, run_grid, write_grid
    from vdeval.generators.folder import list_videos

    files = [f for g in given for f in (list_videos(g) if g.is_dir() else [g])]
    scored = sorted({m for pairs in FAMILY_SCORES.values() for m, _ in pairs})
    result = run_grid(files, n=n or 8, large=large, families=families, metrics=metrics,
                      progress=lambda m: typer.echo(m, err=True), backbones=_parse_backbones(backbone, scored))
    paths = write_grid(result, out)
    typer.echo(grid_markdown(result))
    typer.echo(f"{result.n_clips} clip scorings in {result.seconds:.0f} s; written: " + ", ".join(str(p) for p in paths.values()))


def audit_command(
    out: Path = typer.Option(Path("audit"), "--out", "-o", help="Directory for audit.csv/.md/.png and scores.csv."),
    n: int | None = typer.Option(None, "--n", min=2, help="Clean world clips (default 32; with --grid: clips per condition and split, default 8)."),
    height: int = typer.Option(32, "--height", help="Height of the world clips in pixels."),
    width: int = typer.Option(32, "--width", help="Width of the world clips in pixels."),
    frames: int = typer.Option(8, "--frames", help="Frames per world clip."),
    pan_probability: float = typer.Option(0.0, "--pan-probability", help="Share of world clips whose camera pans."),
    severities: str = typer.Option("0.25,0.5,1.0", "--severities", help="Comma-separated, each in (0, 1]."),
    metrics: str | None = typer.Option(None, "--metrics", help="Comma-separated metric names (default: every per-clip metric)."),
    corruptions: str | None = typer.Option(None, "--corruptions", help="Comma-separated (default: all, plus caption_swap)."),
    backbone: list[str] | None = typer.Option(None, "--backbone", help="metric=backbone, or a backbone for every metric that allows it; repeatable (with --grid: the tier audited in both domains instead of the defaults)."),
    seed: int = typer.Option(0, "--seed", help="First world seed."),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="On-disk feature cache (default: in memory)."),
    natural: list[Path] | None = typer.Option(None, "--natural", help="Natural video files or folders: also report frozen_motion on moving and held windows of them (natural.csv)."),
    grid: bool = typer.Option(False, "--grid", help="The generalization audit instead: world conditions x natural windows (--natural) x two forms per failure family, calibration and evaluation splits; worst cell per score (grid.md, grid_cells.csv, grid_worst.csv)."),
    grid_large: bool = typer.Option(False, "--grid-large", help="With --grid: more conditions (longer clips, more sizes and frame rates); tens of minutes on 2 CPU cores."),
    families: str | None = typer.Option(None, "--families", help="With --grid: comma-separated failure families (default: all); --metrics keeps only those scores."),
):
    """Score every metric on clean vs corrupted world clips: AUROC and Spearman per (metric, corruption)."""
    from vdeval.world import WorldSpec

    if grid or grid_large:
        _grid(natural or [], out, n or 8, grid_large, _split(families), _split(metrics), backbone)
        return

    try:
        sev = [float(s) for s in _split(severities) or []]
    except ValueError:
        raise VdevalError(f"--severities must be comma-separated numbers, got {severities!r}") from None
    spec = WorldSpec(height=height, width=width, frames=frames, pan_probability=pan_probability)
    n = n or 32
    result = run_audit(n, spec, sev, _split(metrics), _split(corruptions), backbone, seed,
                       cache=FeatureCache(cache_dir) if cache_dir else None, progress=lambda m: typer.echo(m, err=True))
    for s in result.skipped:
        typer.echo(f"note: {s}", err=True)
    for f in result.failures:
        typer.echo(f"note: clip left out: {f}", err=True)
    paths = write_audit(result, out)
    typer.echo(to_markdown(result))
    from vdeval.generators.folder import list_videos
    from vdeval.world import sample_clip

    natural_files = [f for g in natural or [] for f in (list_videos(g) if g.is_dir() else [g])]
    if natural:
        paths["natural"] = _natural(natural, out)
    asked = _split(metrics)
    if asked is None or any(m in ("frozen_share", "frozen_seconds", "frozen_motion") for m in asked):
        world = [sample_clip(seed + i, WorldSpec(height=height, width=width, frames=max(frames, 16),
                                                 pan_probability=pan_probability)).video for i in range(min(n, 16))]
        paths["partial_freezes"] = _partial_freezes(world, natural_files, out)
    typer.echo("written: " + ", ".join(str(p) for p in paths.values()))


def register(app) -> None:
    app.command("audit")(audit_command)
