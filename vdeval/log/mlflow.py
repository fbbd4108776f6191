"""MLflow: one MLflow run. Metrics with steps, params, the tables (log_table), figures and
preview GIFs as artifacts. dest is a tracking URI, or a directory for a local file store (MLflow 3
keeps that store in maintenance mode behind MLFLOW_ALLOW_FILE_STORE, which a directory dest sets:
asking for a directory is asking for that store; pass a sqlite:/// or http URI for another)."""
from __future__ import annotations

import tempfile
from pathlib import Path


def write(content, dest, project=None, name=None) -> str:
    import os

    import mlflow

    is_uri = isinstance(dest, str) and ("://" in dest or dest.startswith(("file:", "sqlite:")))
    uri = dest if is_uri else Path(dest).resolve().as_uri()
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(project or "vdeval")
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in content.params.items()})
        for s in content.scalars:
            mlflow.log_metric(s.tag, s.value, step=s.step)
        mlflow.log_table(content.summary.astype(object).where(content.summary.notna(), None),
                         artifact_file="tables/summary.json")
        mlflow.log_table(content.clips, artifact_file="tables/clips.json")
        with tempfile.TemporaryDirectory() as tmp:
            for k, png in content.figures.items():
                (Path(tmp) / f"{k}.png").write_bytes(png)
            if content.figures:
                mlflow.log_artifacts(tmp, "figures")
        with tempfile.TemporaryDirectory() as tmp:
            for k, gif in content.previews.items():
                (Path(tmp) / f"{k.replace('/', '__')}.gif").write_bytes(gif)
            if content.previews:
                mlflow.log_artifacts(tmp, "previews")
        run_id = run.info.run_id
    return f"{uri} (run {run_id})"
