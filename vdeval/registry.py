"""Named, lazily imported generators, backbones and metrics, with "did you mean" on typos.

Entries are "module:attribute" strings so that listing names never imports torch models.
"""
from __future__ import annotations

import difflib
import importlib

from vdeval.errors import UnknownNameError

GENERATORS = {
    "world": "vdeval.generators.world:WorldGenerator",
    "folder": "vdeval.generators.folder:FolderGenerator",
    "reference": "vdeval.generators.reference:ReferenceGenerator",
    "diffusers": "vdeval.generators.diffusers_adapter:DiffusersGenerator",
    "callable": "vdeval.generators.callable:CallableGenerator",
}

BACKBONES = {
    "dis": "vdeval.backbones.dis:DISFlow",
    "embedded": "vdeval.backbones.embedded:EmbeddedBackbone",
    "i3d": "vdeval.backbones.i3d:I3DBackbone",
    "clip": "vdeval.backbones.clip:ClipBackbone",
    "raft": "vdeval.backbones.raft:RaftFlow",
    "raft_vbench": "vdeval.backbones.raft:RaftVBench",
    "dino": "vdeval.backbones.dino:DinoBackbone",
    "dino_vbench": "vdeval.backbones.dino:DinoVBench",
    "niqe": "vdeval.backbones.niqe:NiqeBackbone",
    "niqe_world": "vdeval.backbones.niqe:NiqeWorld",
    "musiq": "vdeval.backbones.musiq:MusiqBackbone",
    "laion_aesthetic": "vdeval.backbones.aesthetic:AestheticBackbone",
    "pixels": "vdeval.backbones.pixels:PixelBackbone",
}

METRICS = {
    "frame_difference": "vdeval.metrics.frame_difference:FrameDifference",
    "frozen_motion": "vdeval.metrics.frozen_motion:FrozenMotion",
    "warping_error": "vdeval.metrics.warping_error:WarpingError",
    "identity_drift": "vdeval.metrics.identity_drift:IdentityDrift",
    "reference_fidelity": "vdeval.metrics.identity_drift:ReferenceFidelity",
    "clip_score": "vdeval.metrics.prompt_alignment:ClipScoreMetric",
    "video_text_alignment": "vdeval.metrics.prompt_alignment:VideoTextAlignment",
    "prompt_drift": "vdeval.metrics.prompt_alignment:PromptDrift",
    "scene_cuts": "vdeval.metrics.scene_cuts:SceneCuts",
    "motion_jitter": "vdeval.metrics.motion_jitter:MotionJitter",
    "physical_plausibility": "vdeval.metrics.physical_plausibility:PhysicalPlausibility",
    "grounded_alignment": "vdeval.metrics.grounded_alignment:GroundedAlignment",
    "motion_smoothness": "vdeval.metrics.motion_smoothness:MotionSmoothness",
    "background_consistency": "vdeval.metrics.background_consistency:BackgroundConsistency",
    "world_background_consistency": "vdeval.metrics.background_consistency:WorldBackgroundConsistency",
    "motion_blur": "vdeval.metrics.motion_blur:MotionBlur",
    "imaging_quality": "vdeval.metrics.imaging_quality:ImagingQuality",
    "aesthetic_quality": "vdeval.metrics.aesthetic_quality:AestheticQuality",
    "fvd": "vdeval.metrics.fvd:FVD",
    "kvd": "vdeval.metrics.kvd:KVD",
}

_TABLES = {"generator": GENERATORS, "backbone": BACKBONES, "metric": METRICS}


def closest(name: str, options) -> str | None:
    match = difflib.get_close_matches(str(name), list(options), n=1, cutoff=0.5)
    return match[0] if match else None


def _available(table: dict) -> list[str]:
    """Names whose module exists in this install (entries may name optional modules)."""
    out = []
    for name, target in table.items():
        module = target.split(":")[0]
        try:
            if importlib.util.find_spec(module) is not None:
                out.append(name)
        except ModuleNotFoundError:
            pass
    return out


def names(kind: str) -> list[str]:
    return _available(_TABLES[kind])


def check_name(kind: str, name: str) -> None:
    valid = names(kind)
    if name not in valid:
        guess = closest(name, valid)
        hint = f"did you mean {guess!r}?" if guess else f"valid {kind}s: {', '.join(sorted(valid))}"
        raise UnknownNameError(f"unknown {kind} {name!r}", hint)


def resolve(kind: str, name: str):
    """The class registered under `name`, imported now."""
    check_name(kind, name)
    module, attr = _TABLES[kind][name].split(":")
    return getattr(importlib.import_module(module), attr)
