"""Published prompt suites shipped as data (each with its licence and attribution beside it).

VBench (vbench/, see its README.md): `vbench_prompts(dimensions)` gives the prompts of VBench's
dimensions in the order of VBench_full_info.json, each once with every dimension it serves (two
prompts appear twice there; VBench names both entries' videos the same, so they are one here).
`camera_motion` is VBench-2.0's camera-motion list. Samples follow VBench's naming,
`vbench_video_name(prompt, i)` = "{prompt}-{i}.mp4", five per prompt.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

VBENCH_DIR = Path(__file__).parent / "vbench"
VBENCH_SAMPLES = 5  # VBench samples five videos a prompt (25 for temporal_flickering, filtered)
VBENCH_CAMERA = "camera_motion"


@lru_cache(maxsize=1)
def _full_info() -> tuple[tuple[str, tuple[str, ...]], ...]:
    data = json.loads((VBENCH_DIR / "VBench_full_info.json").read_text())
    cams = json.loads((VBENCH_DIR / "vbench2" / "Camera_Motion.json").read_text())
    merged: dict[str, list[str]] = {}
    for e in data:
        dims = merged.setdefault(e["prompt_en"], [])
        dims += [d for d in e["dimension"] if d not in dims]
    for e in cams:
        dims = merged.setdefault(e["prompt_en"], [])
        if VBENCH_CAMERA not in dims:
            dims.append(VBENCH_CAMERA)
    return tuple((p, tuple(d)) for p, d in merged.items())


def vbench_dimensions() -> list[str]:
    """Every dimension named in VBench's full info (and VBench-2.0's camera_motion), sorted."""
    return sorted({d for _, dims in _full_info() for d in dims})


def vbench_prompts(dimensions: list[str] | None = None) -> list[tuple[str, tuple[str, ...]]]:
    """(prompt, its dimensions) for the prompts of `dimensions` (None: every dimension)."""
    want = set(dimensions) if dimensions else None
    return [(p, d) for p, d in _full_info() if want is None or want & set(d)]


def vbench_camera_labels() -> dict[str, str]:
    """VBench-2.0's camera-motion prompts -> the motion each asks for (e.g. "pan_left")."""
    cams = json.loads((VBENCH_DIR / "vbench2" / "Camera_Motion.json").read_text())
    return {e["prompt_en"]: e["auxiliary_info"] for e in cams}


def vbench_video_name(prompt: str, index: int, suffix: str = ".mp4") -> str:
    """VBench's file name of sample `index` of `prompt`."""
    return f"{prompt}-{index}{suffix}"
