"""Ingestion options for videos read from files (folder generators and the real set): which frames
and at what size a file becomes a clip, and where each file's prompt comes from.

Frames: `frames` (count), `stride`, `sample_fps` (target frame rate, VBench's round(fps / target)
rule), `window` (first / centre / random with `seed`: StyleGAN-V's FVD protocol takes a random
16-frame window of each real video). Size: `short_side` (resize, aspect kept) or `max_short_side`
(shrink only). All of it is applied while decoding (see video/protocol.py).

Prompts per file: a sidecar, CSV with a header `file,prompt` or JSON (a list of {"file", "prompt"}
objects or one {file: prompt} object), or the file name itself (VBench's convention, its
`get_prompt_from_filename`: the name without its extension and without a trailing `-<digits>`
sample index, so `a red car-3.mp4` is "a red car").
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vdeval.errors import VdevalError
from vdeval.limits import Seed
from vdeval.video.protocol import InputSpec


class IngestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frames: int | None = Field(None, ge=1)
    window: Literal["first", "centre", "random"] = "first"
    stride: int = Field(1, ge=1)
    sample_fps: float | None = Field(None, gt=0)
    short_side: int | None = Field(None, ge=8, le=4320)
    max_short_side: int | None = Field(None, ge=8)
    seed: Seed = 0

    def spec(self) -> InputSpec:
        return InputSpec(short_side=self.short_side, max_short_side=self.max_short_side, frames=self.frames,
                         window=self.window, stride=self.stride, fps=self.sample_fps, seed=self.seed)


MAX_SIDECAR_BYTES = 64 << 20  # a row per file: 100,000 files with long prompts


def read_sidecar(path: Path) -> list[tuple[str, str]]:
    """[(file name, prompt)] in the sidecar's order; a clear error for anything unreadable."""
    from vdeval.userfiles import read_json, read_text

    if not os.path.lexists(path):
        raise VdevalError(f"sidecar {path} does not exist", "give a CSV (file,prompt) or JSON file")
    try:
        if path.suffix.lower() == ".json":
            rows = _json_rows(read_json(path, MAX_SIDECAR_BYTES, "sidecar"))
        else:
            rows = _csv_rows(read_text(path, MAX_SIDECAR_BYTES, "sidecar"))
    except csv.Error as e:
        raise VdevalError(f"sidecar {path}: cannot read it ({type(e).__name__}: {e})".splitlines()[0]) from None
    except ValueError as e:
        raise VdevalError(f"sidecar {path}: {e}") from None
    if not rows:
        raise VdevalError(f"sidecar {path} lists no files")
    seen = set()
    for name, _ in rows:
        if name in seen:
            raise VdevalError(f"sidecar {path} lists {name!r} twice")
        seen.add(name)
    return rows


def _csv_rows(text: str) -> list[tuple[str, str]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"file", "prompt"} <= set(reader.fieldnames):
        raise ValueError(f"a CSV sidecar needs the header columns file,prompt (got {reader.fieldnames})")
    return [(str(r["file"]).strip(), str(r["prompt"] or "")) for r in reader if (r["file"] or "").strip()]


def _json_rows(data) -> list[tuple[str, str]]:
    if isinstance(data, dict):
        return [(str(k), str(v)) for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(r, dict) and "file" in r for r in data):
        return [(str(r["file"]), str(r.get("prompt", ""))) for r in data]
    raise ValueError('a JSON sidecar is a list of {"file": ..., "prompt": ...} objects or one {file: prompt} object')


def prompt_from_name(path: Path) -> str:
    """VBench's convention: the file name without extension and trailing `-<digits>` is the prompt."""
    import re

    name = path.name if path.is_dir() else path.stem
    # a name whose bytes are not UTF-8 reaches Python with lone surrogates, which are no text:
    # the prompt keeps the readable part, with U+FFFD where a byte could not be decoded
    name = os.fsencode(name).decode("utf-8", "replace")
    return re.sub(r"-\d+$", "", name)
