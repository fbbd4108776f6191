"""Stage 0: what to make. The suite's prompts (a list, a file, a sidecar, a folder's file names,
conditioning images, world captions, or VBench's prompt suite) become clip requests: one per prompt and sample, each
with its own seed (suite seed + prompt index * samples_per_prompt + sample)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vdeval.errors import VdevalError
from vdeval.generators.base import ClipRequest
from vdeval.suite import Suite
from vdeval.userfiles import read_text

MAX_PROMPTS_BYTES = 64 << 20  # 100,000 prompts (the suite's limit) of several hundred characters
from vdeval.world import sample_clip


@dataclass
class PromptItem:
    prompt: str
    reference_image: np.ndarray | None = None
    world_seed: int | None = None


def build_prompts(suite: Suite, limit: int | None = None) -> list[PromptItem]:
    p = suite.prompts
    if p.source == "world":
        spec = suite.world.spec()
        items = []
        for i in range(p.count if limit is None else min(p.count, limit)):
            clip = sample_clip(p.seed + i, spec)
            items.append(PromptItem(clip.caption, clip.reference_image, p.seed + i))
        return items
    if p.source == "vbench":
        from vdeval.prompt_suites import vbench_prompts

        items = [PromptItem(t) for t, _ in vbench_prompts(p.dimensions)]
        return items if limit is None else items[:limit]
    if p.source == "images":  # the user's own conditioning images, with a prompt each
        from vdeval.video.conditioning import read_conditioning

        assert p.file is not None  # Prompts' validator requires `file:` for this source
        path = Path(p.file) if Path(p.file).is_absolute() else suite.suite_dir / p.file
        items = [PromptItem(t, img) for t, img in read_conditioning(path)]
        return items if limit is None else items[:limit]
    if p.source in ("sidecar", "folder"):
        lines = _file_prompts(suite)
    elif p.source == "file":
        assert p.file is not None  # as above
        path = Path(p.file)
        if not path.is_absolute():
            path = suite.suite_dir / path
        try:
            text = read_text(path, MAX_PROMPTS_BYTES, "prompts file")
        except VdevalError as e:
            raise VdevalError(f"prompts.file: {e.message}", e.hint) from None
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if not lines:
            raise VdevalError(f"prompts.file: {path} holds no prompts")
    else:
        assert p.items is not None  # Prompts' validator requires `items:` for source list
        lines = list(p.items)
    return [PromptItem(t) for t in (lines if limit is None else lines[:limit])]


def _file_prompts(suite: Suite) -> list[str]:
    """Prompts of a sidecar (in its order) or the file names of a folder (sorted)."""
    from vdeval.generators.folder import list_videos
    from vdeval.video.ingest import prompt_from_name, read_sidecar

    p = suite.prompts
    name = p.file if p.source == "sidecar" else p.path
    assert name is not None  # Prompts' validator requires `file:` (sidecar) or `path:` (folder)
    where = Path(name)
    where = where if where.is_absolute() else suite.suite_dir / where
    if p.source == "sidecar":
        return [prompt for _, prompt in read_sidecar(where)]
    if not where.is_dir():
        raise VdevalError(f"prompts.path: {where} is not a folder")
    files = list_videos(where)
    if not files:
        raise VdevalError(f"prompts.path: {where} holds no videos")
    return [prompt_from_name(f) for f in files]


def build_requests(suite: Suite, prompts: list[PromptItem]) -> list[ClipRequest]:
    out = []
    n = suite.samples_per_prompt
    seen: dict[str, int] = {}  # prompt text -> clips asked for it so far: folders pair by content
    for i, item in enumerate(prompts):
        for j in range(n):
            k = seen[item.prompt] = seen.get(item.prompt, -1) + 1
            meta = {"prompt_index": i, "sample": j, "index": i * n + j, "occurrence": k}
            if item.world_seed is not None:
                meta["world_seed"] = item.world_seed
            out.append(ClipRequest(f"p{i:03d}_s{j}", item.prompt, suite.seed + i * n + j, item.reference_image, meta))
    return out
