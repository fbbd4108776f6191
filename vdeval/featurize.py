"""Compute each requested feature once per clip and backbone, through the on-disk cache.

This is the only place backbones run. The runner, the audit and benchmarks all call
`featurize`, so every path shares the same cache and the same batching.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from vdeval import registry
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError
from vdeval.features import ClipFeatures, ClipInput, FeatureRequest


class BackbonePool:
    """One instance per (backbone name, options) for the life of a run: weights load once."""

    def __init__(self, device: str = "cpu"):
        self.device = device
        self._live: dict[tuple, Backbone] = {}

    def get(self, name: str, options: tuple = ()) -> Backbone:
        key = (name, options)
        if key not in self._live:
            cls = registry.resolve("backbone", name)
            self._live[key] = cls(device=self.device, **dict(options))
        return self._live[key]


class FeatureCache:
    """features/<backbone identity hash[:16]>/<kind>/<input hash>.safetensors; no pickle."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root else None

    def _path(self, backbone: Backbone, kind: str, key: str) -> Path:
        return self.root / backbone.identity_hash()[:16] / kind / f"{key}.safetensors"

    def load(self, backbone: Backbone, kind: str, key: str) -> dict[str, np.ndarray] | None:
        if self.root is None:
            return None
        p = self._path(backbone, kind, key)
        if not p.exists():
            return None
        from safetensors.numpy import load_file

        try:
            return load_file(str(p))
        except Exception:  # a torn or corrupt cache file is recomputed, never trusted
            return None

    def save(self, backbone: Backbone, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            return
        from safetensors.numpy import save

        from vdeval.store import atomic_write_bytes

        data = save({k: np.ascontiguousarray(v) for k, v in arrays.items()})
        atomic_write_bytes(self._path(backbone, kind, key), data, durable=False)


def _autocast(backbone: Backbone):
    """bfloat16 autocast on CUDA for backbones whose protocol allows it; a no-op otherwise."""
    import contextlib

    if not backbone.uses_amp():
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cuda", dtype=torch.bfloat16)


def _is_out_of_memory(e: Exception) -> bool:
    try:
        import torch

        if isinstance(e, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(e, RuntimeError) and "out of memory" in str(e)


def _free_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def featurize(
    clips: list[ClipFeatures],
    requests: list[FeatureRequest],
    pool: BackbonePool,
    cache: FeatureCache | None = None,
    batch_size: int = 16,
) -> dict[tuple[str, str], int]:
    """Fill `clip.features[(kind, backbone)]` for every request; returns how many were computed
    (not read from cache) per (kind, backbone). Each distinct request is computed once per clip."""
    cache = cache or FeatureCache(None)
    computed: dict[tuple[str, str], int] = {}
    inputs: dict[int, ClipInput] = {}  # one per clip for all requests: its content hash is computed once

    def input_of(clip: ClipFeatures) -> ClipInput:
        if id(clip) not in inputs:
            inputs[id(clip)] = ClipInput(clip.video, clip.prompt, clip.reference_image, clip.clip_hash)
        return inputs[id(clip)]

    for req in dict.fromkeys(requests):  # de-duplicate, keep order
        backbone = pool.get(req.backbone, req.options)
        if req.kind not in backbone.provides:
            raise FeatureError(
                f"backbone {req.backbone!r} does not compute {req.kind!r}",
                f"it provides {', '.join(backbone.provides)}",
            )
        todo: list[tuple[ClipFeatures, ClipInput, str]] = []
        for clip in clips:
            if (req.kind, req.backbone) in clip.features:
                continue
            inp = input_of(clip)
            key = inp.key_for(req.kind)
            hit = cache.load(backbone, req.kind, key)
            if hit is not None:
                clip.features[(req.kind, req.backbone)] = hit
            else:
                todo.append((clip, inp, key))
        size = batch_size
        start = 0
        while start < len(todo):
            chunk = todo[start:start + size]
            try:
                with _autocast(backbone):
                    outs = backbone.compute(req.kind, [inp for _, inp, _ in chunk])
            except Exception as e:
                if not _is_out_of_memory(e) or size == 1:
                    raise
                size //= 2  # a CUDA OOM: halve the batch and retry, once per batch size
                _free_cuda()
                continue
            start += len(chunk)
            for (clip, _, key), arrays in zip(chunk, outs):
                arrays = {k: np.asarray(v) for k, v in arrays.items()}
                cache.save(backbone, req.kind, key, arrays)
                clip.features[(req.kind, req.backbone)] = arrays
        computed[(req.kind, req.backbone)] = len(todo)
    return computed
