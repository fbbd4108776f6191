"""TensorBoard: event files under a log dir. Scalars with their steps, figures and animated
preview GIFs as image summaries (TensorBoard shows GIFs animated), tables as Markdown text.

Idempotent per run and step, the way TensorBoard handles a restarted training run: the writer
opens with `purge_step` = the first step it logs, so readers drop what earlier files of the same
log dir hold at that step and after. Logging the same results twice gives each point once;
logging step 2000 after step 1000 (an Evaluator) keeps step 1000."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image


def _image(tag: str, data: bytes, step: int):
    import io

    from tensorboard.compat.proto.summary_pb2 import Summary

    w, h = Image.open(io.BytesIO(data)).size
    img = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=data)
    return Summary(value=[Summary.Value(tag=tag, image=img)])


def markdown_table(df) -> str:
    cols = list(df.columns)
    rows = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        rows.append("| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |")
    return "\n".join(rows)


def write(content, dest: Path, project=None, name=None) -> str:
    from torch.utils.tensorboard import SummaryWriter

    log_dir = Path(dest) / (name or content.name)
    first = min([s.step for s in content.scalars], default=0)
    writer = SummaryWriter(log_dir=str(log_dir), purge_step=first)
    file_writer = writer.file_writer
    assert file_writer is not None  # SummaryWriter opens it in __init__
    try:
        for s in content.scalars:
            writer.add_scalar(s.tag, s.value, s.step)
        step = max([s.step for s in content.scalars], default=0)
        writer.add_text("vdeval/summary", markdown_table(content.summary), step)
        writer.add_text("vdeval/clips", markdown_table(content.clips), step)
        writer.add_text("vdeval/params", markdown_table(pd.DataFrame([content.params])), step)
        for k, png in content.figures.items():
            file_writer.add_summary(_image(f"figures/{k}", png, step), step)
        for k, gif in content.previews.items():
            file_writer.add_summary(_image(k, gif, step), step)
    finally:
        writer.close()
    return str(log_dir)
