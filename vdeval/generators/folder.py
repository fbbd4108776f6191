"""Kind `folder`: videos made elsewhere. A clip is the file named `<clip_id>.<ext>` (clip ids are
p<prompt index>_s<sample>, e.g. p003_s0.mp4); with `match: order`, the i-th file in sorted order."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Literal

from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig
from vdeval.video.io import VIDEO_SUFFIXES, read_video


class FolderConfig(GeneratorConfig):
    path: str
    match: Literal["clip_id", "order"] = "clip_id"
    fps: float | None = None  # override the files' frame rate


def list_videos(folder: Path) -> list[Path]:
    """Video files and frame folders directly inside `folder`, sorted by name."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or p.is_dir():
            out.append(p)
    return out


class FolderGenerator(Generator):
    kind = "folder"
    Config = FolderConfig

    def __init__(self, config: FolderConfig, suite_dir=None, world=None):
        super().__init__(config, suite_dir)
        folder = Path(config.path)
        if not folder.is_absolute() and suite_dir is not None:
            folder = Path(suite_dir) / folder
        if not folder.is_dir():
            raise VdevalError(f"generator {config.name!r}: folder {folder} does not exist", "check `path:` in the suite")
        self.folder = folder
        self.files = list_videos(folder)
        self.by_stem = {p.stem if p.is_file() else p.name: p for p in self.files}

    def info(self) -> dict:
        return {**super().info(), "folder": str(self.folder), "files": len(self.files)}

    def _file_for(self, request: ClipRequest, index: int) -> Path:
        if self.config.match == "clip_id":
            p = self.by_stem.get(request.clip_id)
            if p is None:
                raise VdevalError(f"{self.folder}: no video named {request.clip_id}.* for this clip")
            return p
        if index >= len(self.files):
            raise VdevalError(f"{self.folder}: holds {len(self.files)} videos, clip {index + 1} was asked for")
        return self.files[index]

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        for r in requests:
            try:
                path = self._file_for(r, int(r.meta.get("index", 0)))
                video = read_video(path, fps=self.config.fps)
            except VdevalError as e:
                yield GeneratedClip(r, None, error=str(e))
                continue
            yield GeneratedClip(r, video, meta={"file": str(path)})
