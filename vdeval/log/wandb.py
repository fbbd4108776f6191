"""Weights & Biases: one W&B run. Scalars against a `training_step` axis, tables as wandb.Table,
figures as images, previews as GIF videos. Offline mode (WANDB_MODE=offline) works unchanged."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path


def write(content, dest: Path, project=None, name=None) -> str:
    import wandb
    from PIL import Image

    Path(dest).mkdir(parents=True, exist_ok=True)
    run = wandb.init(project=project or "vdeval", name=name, dir=str(dest), config=content.params, reinit=True)
    try:
        run.define_metric("training_step")
        run.define_metric("*", step_metric="training_step")
        by_step: dict[int, dict] = {}
        for s in content.scalars:
            by_step.setdefault(s.step, {})[s.tag] = s.value
        for step in sorted(by_step):  # W&B wants its axis in increasing order
            run.log({"training_step": step, **by_step[step]})
        last = max(by_step, default=0)
        media = {"tables/summary": wandb.Table(dataframe=content.summary.astype(object).where(
                     content.summary.notna(), None)),
                 "tables/clips": wandb.Table(dataframe=content.clips)}
        for k, png in content.figures.items():
            media[f"figures/{k}"] = wandb.Image(Image.open(io.BytesIO(png)))
        with tempfile.TemporaryDirectory() as tmp:
            for i, (k, gif) in enumerate(content.previews.items()):
                path = Path(tmp) / f"preview{i}.gif"
                path.write_bytes(gif)
                media[k] = wandb.Video(str(path), format="gif")
            run.log({"training_step": last, **media})
        where = run.dir
    finally:
        run.finish()
    return str(Path(where).parent)
