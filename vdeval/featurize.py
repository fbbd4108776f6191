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
    """features/<backbone identity hash[:16]>/<kind>/<input hash>.safetensors; no pickle.

    Each file has an index entry beside it, <input hash>.json: the sha256 of the file's bytes and
    every array's shape and dtype. A read checks both and a file that does not match (tampered,
    torn, swapped for another clip's, or written without an entry) is recomputed, never trusted;
    each such file is logged once and listed in `rejected`."""

    INDEX_VERSION = 1

    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root) if root else None
        self.rejected: list[str] = []  # "path: why" for every cached file refused in this process

    def _path(self, backbone: Backbone, kind: str, key: str) -> Path:
        return self.root / backbone.identity_hash()[:16] / kind / f"{key}.safetensors"

    @staticmethod
    def _index_path(path: Path) -> Path:
        return path.with_suffix(".json")

    def load(self, backbone: Backbone, kind: str, key: str) -> dict[str, np.ndarray] | None:
        if self.root is None:
            return None
        p = self._path(backbone, kind, key)
        if not p.exists():
            return None
        arrays, why = self._read_verified(p, key)
        if why is not None:
            self._reject(p, why)
        return arrays

    def _read_verified(self, p: Path, key: str) -> tuple[dict[str, np.ndarray] | None, str | None]:
        """The arrays of `p` if its bytes and shapes match its index entry, else (None, why)."""
        import hashlib
        import json

        from safetensors.numpy import load

        try:
            entry = json.loads(self._index_path(p).read_text())
        except FileNotFoundError:
            return None, "no integrity record (written by an older vdeval, or torn)"
        except (OSError, ValueError):
            return None, "unreadable integrity record"
        if not isinstance(entry, dict) or entry.get("version") != self.INDEX_VERSION or entry.get("key") != key:
            return None, "integrity record is not this file's"
        try:
            data = p.read_bytes()  # hash and parse the same bytes: nothing can change in between
        except OSError as e:
            return None, f"unreadable ({e.strerror or e})"
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            return None, "content does not match its recorded sha256 (changed or torn)"
        try:
            arrays = load(data)
        except Exception as e:  # recorded hash of a file safetensors cannot read: recompute
            return None, f"not readable as safetensors ({type(e).__name__})"
        shapes = {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}
        if shapes != entry.get("arrays"):
            return None, f"arrays {shapes} differ from the recorded {entry.get('arrays')}"
        return arrays, None

    def _reject(self, p: Path, why: str) -> None:
        import logging

        self.rejected.append(f"{p}: {why}")
        logging.getLogger("vdeval.featurize").warning("note: cached features %s: %s; recomputing", p, why)

    def save(self, backbone: Backbone, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if self.root is None:
            return
        import hashlib
        import json

        from safetensors.numpy import save

        from vdeval.store import atomic_write_bytes

        arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
        data = save(arrays)
        p = self._path(backbone, kind, key)
        entry = {"version": self.INDEX_VERSION, "key": key, "kind": kind, "backbone": backbone.identity_hash(),
                 "sha256": hashlib.sha256(data).hexdigest(),
                 "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()}}
        # data first, then its entry: a crash in between leaves a file without an entry, recomputed
        try:
            atomic_write_bytes(p, data, durable=False)
            atomic_write_bytes(self._index_path(p), json.dumps(entry, sort_keys=True).encode(), durable=False)
        except OSError as e:  # WriteError included
            why = getattr(e, "message", None) or e.strerror or str(e)
            raise FeatureError(f"cannot write cached features under {self.root}: {why}",
                               "choose a --cache-dir you can write to") from None


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
