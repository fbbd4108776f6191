"""Send results to the tools training runs already log to: TensorBoard, Weights & Biases, MLflow.

`log_run(run_dirs, to, ...)` reads results files only (like the report) and logs, per tool:
every summary value with its 95% interval and n, metric against training step as a stepped
series, the per-clip table, the report's figures and preview GIFs. Each tool is an optional
extra (`pip install 'vdeval[tensorboard]'`, `[wandb]`, `[mlflow]`, or `[logging]` for all).
"""
from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from vdeval.errors import VdevalError, closest

TARGETS = {
    # name: (module of vdeval.log, package that must be importable, extra)
    "tensorboard": ("vdeval.log.tensorboard", "tensorboard", "tensorboard"),
    "wandb": ("vdeval.log.wandb", "wandb", "wandb"),
    "mlflow": ("vdeval.log.mlflow", "mlflow", "mlflow"),
}


def log_run(run_dirs, to: str, *, dest: str | Path | None = None, project: str | None = None,
            name: str | None = None, step: int | None = None, previews: int = 1) -> str:
    """Log one or more runs to `to`; returns where the record went (a directory or URI).

    dest: TensorBoard log dir / W&B dir / MLflow tracking URI or directory (default under the
    first run: RUN/logs/<tool>). step: the step for values of generators that have none."""
    if to not in TARGETS:
        guess = closest(to, TARGETS)
        raise VdevalError(f"cannot log to {to!r}", f"did you mean {guess!r}?" if guess else
                          f"choose one of {', '.join(TARGETS)}")
    module, package, extra = TARGETS[to]
    if importlib.util.find_spec(package) is None:
        raise VdevalError(f"logging to {to} needs the {package} package", f"pip install 'vdeval[{extra}]'")
    from vdeval.log.content import collect

    dirs = [Path(p) for p in (run_dirs if isinstance(run_dirs, (list, tuple)) else [run_dirs])]
    content = collect(dirs, step=step, previews=previews)
    first = dirs[0].parent if dirs[0].is_file() else dirs[0]
    dest = Path(dest) if dest is not None and "://" not in str(dest) and not str(dest).startswith("file:") else dest
    return importlib.import_module(module).write(content, dest=dest or first / "logs" / to, project=project,
                                                 name=name or content.name)


__all__ = ["TARGETS", "log_run"]
