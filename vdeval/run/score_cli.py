"""`vdeval score PATH... --metrics a,b`: score folders or files without writing a suite.

The command writes the suite it stands for into the run folder (`suite.yaml`, absolute paths), so
`vdeval run RUN/suite.yaml` re-runs it, and then runs it exactly as `vdeval run` does: the same
engine, run folder, results, report and exit codes. Each folder PATH is a generator (named after
the folder); files given one by one are one generator, `files`. Prompts: `--prompts FILE` (a CSV
`file,prompt` or JSON sidecar naming the files of every folder) or, by default and with
`--prompts-from-names`, VBench's file names (`a red car-3.mp4` is "a red car", sample 3). Each
generator's files and prompts are written to a sidecar beside the suite, so clips of different
generators pair by prompt text and sample, never by position; a generator without a file for a
prompt records that clip as failed (exit 3).
"""
from __future__ import annotations

from pathlib import Path

import typer

from vdeval.errors import VdevalError


def build_suite(paths: list[Path], metrics: list[str], run_dir: Path, prompts: Path | None = None,
                real: Path | None = None, name: str = "score") -> dict:
    """The suite mapping `vdeval score` runs (paths absolute). Each generator gets a sidecar in
    `run_dir` (its files and their prompts), so clips pair by prompt text across generators; the
    suite asks for every prompt any generator holds."""
    from vdeval.generators.folder import list_videos
    from vdeval.video.ingest import prompt_from_name, read_sidecar
    from vdeval.video.io import VIDEO_SUFFIXES

    folders = [p.resolve() for p in paths if p.is_dir()]
    files = [p.resolve() for p in paths if p.is_file()]
    for p in paths:
        if not p.exists():
            raise VdevalError(f"{p}: no such file or folder", "give folders of videos or video files")
    bad = [f for f in files if f.suffix.lower() not in VIDEO_SUFFIXES]
    if bad:
        raise VdevalError(f"{bad[0]}: not a video file ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if files and len({f.parent for f in files}) > 1:
        raise VdevalError("files from several folders: give files of one folder, or the folders themselves")
    if not metrics:
        raise VdevalError("--metrics is empty", "name one or more metrics, e.g. --metrics frozen_share,warping_error")
    run_dir.mkdir(parents=True, exist_ok=True)
    given: dict[str, str] = dict(read_sidecar(prompts.resolve())) if prompts else {}
    groups: list[tuple[Path | None, list[Path]]] = [(folder, list_videos(folder)) for folder in folders]
    if files:
        groups.append((None, files))
    generators: list[dict] = []
    used: set[str] = set()
    counts: dict[str, int] = {}
    for folder, videos in groups:
        if not videos:
            raise VdevalError(f"{folder}: holds no videos")
        gname = _unique("files" if folder is None else _safe_name(folder.name), used)
        if prompts:
            rows = [(v.name, given[v.name]) for v in videos if v.name in given]
            if not rows:
                raise VdevalError(f"{prompts}: names none of the videos in {folder or files[0].parent}")
        else:
            rows = sorted(((v.name, prompt_from_name(v)) for v in videos), key=lambda r: (r[1], _sample(r[0]), r[0]))
        per: dict[str, int] = {}
        for _, prompt in rows:
            per[prompt] = per.get(prompt, 0) + 1
            counts[prompt] = max(counts.get(prompt, 0), per[prompt])
        sidecar = run_dir / f"prompts_{gname}.csv"  # this generator's files and prompts, paired by prompt text
        _write_sidecar(sidecar, rows)
        generators.append({"name": gname, "kind": "folder", "path": str(folder or files[0].parent),
                           "match": "sidecar", "sidecar": str(sidecar)})
    samples = max(counts.values())
    # every prompt any generator holds, each asked for as many samples as the most any one holds
    items = list(counts)
    prompt_source = {"source": "list", "items": items}
    suite = {"name": name, "prompts": prompt_source, "samples_per_prompt": samples, "generators": generators,
             "metrics": [{"name": m} for m in metrics], "output": {"dir": str(run_dir.resolve())}}
    if real is not None:
        suite["real"] = {"kind": "folder", "path": str(real.resolve()), "count": 100000}
    return suite


def _sample(file_name: str) -> int:
    """The trailing -<digits> of a VBench-style name (0 without one)."""
    import re

    m = re.search(r"-(\d+)$", Path(file_name).stem)
    return int(m.group(1)) if m else 0


def _write_sidecar(path: Path, rows: list[tuple[str, str]]) -> None:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "prompt"])
    w.writerows(rows)
    path.write_text(buf.getvalue())


def _safe_name(text: str) -> str:
    import re

    s = re.sub(r"[^A-Za-z0-9_.+-]", "_", text).strip(".") or "videos"
    return s[:64] if s[0].isalnum() else ("g" + s)[:64]


def _unique(name: str, used: set[str]) -> str:
    out, k = name, 2
    while out in used:
        out, k = f"{name[:60]}_{k}", k + 1
    used.add(out)
    return out


def score(
    paths: list[Path] = typer.Argument(..., help="Folders of videos (one generator each) or video files."),
    metrics: str = typer.Option(..., "--metrics", "-m", help="Comma-separated metric names."),
    prompts: Path | None = typer.Option(None, "--prompts", help="CSV `file,prompt` or JSON sidecar: the prompts, "
                                           "paired by text across generators."),
    prompts_from_names: bool = typer.Option(False, "--prompts-from-names", help="Prompts from VBench-style file "
                                            "names (`a red car-3.mp4` is 'a red car'); the default without --prompts."),
    real: Path | None = typer.Option(None, "--real", help="Folder of real videos (FVD, KVD)."),
    out: Path = typer.Option(Path("runs/score"), "--out", "-o", help="Run folder (default runs/score)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:N]."),
    report: bool = typer.Option(True, "--report/--no-report", help="Write the HTML/Markdown report."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Score videos without a suite: the suite it stands for is written to OUT/suite.yaml."""
    import yaml

    from vdeval.run.cli import run as run_command

    if prompts is not None and prompts_from_names:
        raise VdevalError("--prompts and --prompts-from-names exclude each other", "give one of them")
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    suite = build_suite(list(paths), names, Path(out), prompts, real)
    path = Path(out) / "suite.yaml"
    from vdeval.store import atomic_write_bytes

    atomic_write_bytes(path, ("# written by `vdeval score`; re-run with `vdeval run " + str(path) + "`\n"
                              + yaml.safe_dump(suite, sort_keys=False)).encode())
    typer.echo(f"suite: {path}", err=True)
    run_command(suite=path, out=Path(out), limit=None, device=device, cache_dir=None, report=report,
                progress=progress, log=None, allow_remote_code=False)


def register(app: typer.Typer) -> None:
    app.command("score")(score)
