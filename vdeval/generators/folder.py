"""Kind `folder`: videos made elsewhere, referenced by path and content hash (never copied).

Which file is which clip (`match`): by content, never by position, wherever the files say
what they show, so that clips of different generators with the same id show the same prompt and
sample (seed):
  clip_id  the file named `<clip_id>.<ext>` (clip ids are p<prompt index>_s<sample>, e.g. p003_s0.mp4);
  sidecar  by prompt text: the k-th clip asking for prompt P takes the k-th row of `sidecar:` (CSV
           `file,prompt` or JSON, in its order) whose prompt is P;
  order    files named VBench-style (`{prompt}-{i}.mp4`, every name ending in -<digits>): by
           prompt text, the k-th clip asking for P takes the file of P with the k-th smallest i;
           files whose names carry no prompt: the i-th file in sorted order (by position: the
           only case, and `vdeval validate --deep` says so).
  vbench   VBench's naming: sample i of a prompt is `<prompt>-<i>.<ext>` (e.g. "a cat-0.mp4").
Ingestion options (frames, window, stride, sample_fps, short_side, ...; see video/ingest.py) are
applied while decoding; window `random` draws each file's window from the seed and the file's name. Container files (mp4, webm, mkv, mov, avi, gif) are decoded on demand;
frame folders and .npy / .pt arrays are read whole when the clip is made.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Literal

from vdeval.errors import VdevalError, VideoReadError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig
from vdeval.limits import Fps
from vdeval.video.ingest import IngestOptions, prompt_from_name, read_sidecar
from vdeval.video.io import CONTAINER_SUFFIXES, VIDEO_SUFFIXES, read_video
from vdeval.video.protocol import FULL
from vdeval.video.source import ArraySource, FileSource, fingerprint


class FolderConfig(GeneratorConfig):
    path: str
    match: Literal["clip_id", "order", "sidecar", "vbench"] = "clip_id"
    sidecar: str | None = None  # CSV (file,prompt) or JSON; relative to the suite file
    fps: Fps | None = None  # override the files' frame rate
    ingest: IngestOptions = IngestOptions()


def list_videos(folder: Path) -> list[Path]:
    """Video files and frame folders directly inside `folder`, sorted by name."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or p.is_dir():
            out.append(p)
    return out


def open_clip(path: Path, ingest: IngestOptions | None = None, fps: float | None = None):
    """A source for one file: decoded on demand for containers, read whole otherwise. Its identity
    is always the hash of the file's bytes, computed from the file (never a stored hash: a file
    edited in place can keep its size, modification time and first bytes). The fingerprint is
    kept only so report previews can tell whether the file is still the one scored."""
    spec = ingest.spec() if ingest else FULL
    if spec.window == "random":  # a window of its own for each file (StyleGAN-V draws one per video)
        spec = replace(spec, seed=int(hashlib.sha256(f"{spec.seed}:{path.name}".encode()).hexdigest()[:8], 16))
    if path.is_file() and path.suffix.lower() in CONTAINER_SUFFIXES:
        if path.stat().st_size == 0:
            raise VideoReadError(f"{path}: the file is empty")
        src = FileSource(path, spec, fps=fps)
        src.fingerprint = fingerprint(path)
        return src
    video = read_video(path, fps=fps)
    if spec != FULL:
        video = ArraySource(video).decode(spec)
    return ArraySource(video)


_VBENCH_NAME = re.compile(r".+-\d+")


def occurrence(request: ClipRequest) -> int:
    """Which of the clips asking for the same prompt text this one is (0, 1, ...): the sample
    index, counted across prompt indices when a prompt is listed twice (set by build_requests)."""
    return int(request.meta.get("occurrence", request.meta.get("sample", 0)))


class FolderGenerator(Generator[FolderConfig]):
    kind = "folder"
    Config = FolderConfig
    stores_frames = False  # clips are referenced by path and content hash, not copied into the run

    def __init__(self, config: FolderConfig, suite_dir=None, world=None):
        super().__init__(config, suite_dir)
        folder = self._resolve(config.path)
        if not folder.is_dir():
            raise VdevalError(f"generator {config.name!r}: folder {folder} does not exist", "check `path:` in the suite")
        self.folder = folder
        self.files = list_videos(folder)
        self.by_stem = {p.stem if p.is_file() else p.name: p for p in self.files}
        self.rows: list[tuple[str, str]] | None = None
        if config.match == "sidecar" or config.sidecar:
            if not config.sidecar:
                raise VdevalError(f"generator {config.name!r}: match: sidecar needs `sidecar:` (a CSV or JSON file)")
            self.rows = read_sidecar(self._resolve(config.sidecar))

    def _resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() or self.suite_dir is None else Path(self.suite_dir) / p

    def info(self) -> dict:
        return {**super().info(), "folder": str(self.folder), "files": len(self.files)}

    def unlisted(self) -> list[str]:
        """Files in the folder that the sidecar does not name (not scored)."""
        if self.rows is None:
            return []
        named = {name for name, _ in self.rows}
        return [p.name for p in self.files if p.name not in named]

    def pairing(self) -> str:
        """How files become clips: "clip_id" (by name), "sidecar" or "names" (by prompt text and
        sample), or "order" (by position: only for files whose names carry no prompt)."""
        if self.config.match in ("clip_id", "sidecar"):
            return self.config.match
        stems = [p.stem if p.is_file() else p.name for p in self.files]
        return "names" if stems and all(_VBENCH_NAME.fullmatch(s) for s in stems) else "order"

    def by_prompt(self) -> dict[str, list[tuple[str, str]]]:
        """{prompt: [(file name, prompt), ...] in sample order} of a sidecar or of VBench-style names."""
        if getattr(self, "_by_prompt", None) is None:
            out: dict[str, list] = {}
            if self.pairing() == "sidecar":
                for name, prompt in self.rows or []:
                    out.setdefault(prompt, []).append((name, prompt))
            else:
                def sample(p: Path) -> tuple[int, str]:
                    stem = p.stem if p.is_file() else p.name
                    return int(stem.rsplit("-", 1)[1]), p.name

                for p in sorted(self.files, key=sample):
                    out.setdefault(prompt_from_name(p), []).append((p.name, prompt_from_name(p)))
            self._by_prompt = out
        return self._by_prompt

    def _file_for(self, request: ClipRequest, index: int) -> tuple[Path, str | None]:
        mode = self.pairing()
        if mode in ("sidecar", "names"):
            k = occurrence(request)
            have = self.by_prompt().get(request.prompt, [])
            if k >= len(have):
                where = f"the sidecar {self.config.sidecar}" if mode == "sidecar" else f"the file names in {self.folder}"
                raise VdevalError(f"no file for prompt {request.prompt!r} (sample {k}): {where} hold {len(have)} for it",
                                  "clips are paired by prompt text and sample, never by position")
            name, prompt = have[k]
            path = self.folder / name
            if not path.exists():
                raise VdevalError(f"{path}: named in the sidecar but missing from the folder")
            return path, prompt
        if self.config.match == "vbench":
            stem = f"{request.prompt}-{int(request.meta.get('sample', 0))}"
            p = self.by_stem.get(stem)
            if p is None:
                raise VdevalError(f"{self.folder}: no video named {stem!r}.* for this clip (VBench's <prompt>-<i> naming)")
            return p, None
        if self.config.match == "clip_id":
            p = self.by_stem.get(request.clip_id)
            if p is None:
                raise VdevalError(f"{self.folder}: no video named {request.clip_id}.* for this clip")
            return p, None
        if index >= len(self.files):
            raise VdevalError(f"{self.folder}: holds {len(self.files)} videos, clip {index + 1} was asked for")
        return self.files[index], None

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        for r in requests:
            try:
                path, prompt = self._file_for(r, int(r.meta.get("index", 0)))
                source = open_clip(path, self.config.ingest, self.config.fps)
            except VdevalError as e:
                yield GeneratedClip(r, None, error=str(e))
                continue
            if prompt is not None:
                r.prompt = prompt
            yield GeneratedClip(r, source, meta={"file": str(path),
                                                 "fingerprint": getattr(source, "fingerprint", None)})
