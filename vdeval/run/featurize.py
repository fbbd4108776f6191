"""Compute each requested feature once per clip and backbone, through the on-disk cache.

This is the only place backbones run. The runner, the audit and benchmarks all call
`featurize`, so every path shares the same cache and the same batching.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, cast

import numpy as np

from vdeval import registry
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError
from vdeval.features import (
    FLOW_DIRECTIONS,
    FLOW_KINDS,
    UNCACHED_KINDS,
    ClipFeatures,
    ClipInput,
    FeatureRequest,
    merge_requests,
)
from vdeval.video.protocol import InputSpec

_PLAIN = (int, float, str, bool, type(None), tuple, list, dict)


@dataclass(frozen=True)
class BackboneCard:
    """What a run reads of a backbone besides `compute` (label, identity, input specs, declared
    working set), under the same method names, kept by the pool after the network itself is
    freed: reading it never rebuilds the network."""

    name: str
    provides: tuple
    domain: str
    flow_itemsize: int
    _label: str
    _identity: dict
    _hashes: tuple  # (identity_hash, cache_identity_hash)
    _specs: dict  # feature kind -> the InputSpec it decodes to
    _settings: Backbone  # the backbone's class with its plain settings only (no network): working_set
    streams_input: bool = False

    @classmethod
    def of(cls, bb: Backbone) -> BackboneCard:
        specs = {k: bb.input_spec(k) for k in (*bb.provides, "frames")}
        settings = object.__new__(type(bb))  # batch size, options, bins...: what working_set reads
        settings.__dict__.update({k: v for k, v in vars(bb).items() if isinstance(v, _PLAIN)})
        return cls(bb.name, tuple(bb.provides), bb.domain, bb.flow_itemsize, bb.label(), bb.identity(),
                   (bb.identity_hash(), bb.cache_identity_hash()), specs, settings, bb.streams_input)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        return self._settings.working_set(kind, frames, height, width)

    def label(self) -> str:
        return self._label

    def identity(self) -> dict:
        return self._identity

    def identity_hash(self) -> str:
        return self._hashes[0]

    def cache_identity_hash(self) -> str:
        return self._hashes[1]

    def input_spec(self, kind: str) -> InputSpec:
        return self._specs[kind]


class BackbonePool:
    """One instance per (backbone name, options). `card` checks the options and weights (file,
    sha256, format) and describes the backbone without building its network; `get` builds the
    network at its first use. With `hold`, networks are freed, least recently used first, before
    another is built, down to `hold` of them, unless all held together take at most `keep_bytes`:
    hold=1 with keep_bytes=0 peaks at the largest network, as a peer's per-dimension loops do; a
    run keeps networks across memory groups while its budget allows (`keep_budget`). None holds
    every network for the life of the pool."""

    def __init__(self, device: str = "cpu", hold: int | None = None, keep_bytes: int = 0):
        self.device, self.hold, self.keep_bytes = device, hold, keep_bytes
        self._live: dict[tuple, Backbone] = {}  # built networks, least recently used first
        self._checked: dict[tuple, Backbone] = {}  # weights checked, network not built yet
        self._cards: dict[tuple, BackboneCard] = {}
        self._bytes: dict[tuple, int] = {}  # each network's parameters and buffers, measured when built
        self.built = 0  # networks built so far (each loads its weights)

    def get(self, name: str, options: tuple = ()) -> Backbone:
        key = (name, options)
        if key in self._live:
            self._live[key] = self._live.pop(key)  # now the most recently used
            return self._live[key]
        self._make_room(self._bytes.get(key, 0))
        bb = self._checked.pop(key, None) or self._check(name, options)
        bb.ensure_built()  # idempotent: a network already built stays as it is
        self.built += 1
        self._live[key] = bb
        self._bytes[key] = bb.network_bytes()
        self._make_room(0, keep=key)  # a network built for the first time: its size is known now
        return bb

    def _check(self, name: str, options: tuple) -> Backbone:
        """A new instance with options and weights checked; a backbone that builds nothing lazily
        (no `network`) is built whole here."""
        cls = registry.resolve("backbone", name)
        bb = cls.unbuilt(device=self.device, **dict(options))
        self._cards.setdefault((name, options), BackboneCard.of(bb))
        return bb

    def _make_room(self, need: int, keep: tuple | None = None) -> None:
        if self.hold is None:
            return
        while True:
            others = [k for k in self._live if k != keep]
            n = len(others) + 1 if keep is None else len(self._live)
            if not others or n <= max(self.hold, 1) or 0 < self.held_bytes() + need <= self.keep_bytes:
                return
            self.release(*others[0])

    def card(self, name: str, options: tuple = ()) -> BackboneCard:
        """The backbone's card: its options and weights checked, never its network built (a
        backbone without `network` is built, once, and held as `get` holds it)."""
        key = (name, options)
        if key not in self._cards:
            if registry.resolve("backbone", name).network:
                self._checked[key] = self._check(name, options)
            else:
                self.get(name, options)
        return self._cards[key]

    def release(self, name: str, options: tuple = ()) -> None:
        """Free the backbone's network (its card stays); a later `get` builds it again."""
        if self._live.pop((name, options), None) is not None and "torch" in sys.modules:
            _free_cuda()

    def held(self) -> list[tuple]:
        return list(self._live)

    def held_bytes(self) -> int:
        return sum(self._bytes.get(k, 0) for k in self._live)

    def largest_bytes(self) -> int:
        """The largest network built so far."""
        return max(self._bytes.values(), default=0)


def keep_budget(pool: BackbonePool, group_bytes: int, memory_gb: float) -> int:
    """Bytes of networks a run may keep across memory groups: its schedule peaks at the largest
    network plus a group of `memory_gb`, so networks may fill what this group (`group_bytes`)
    leaves of that, and no more than the memory free now (less what they hold already)."""
    from vdeval.run.memory import GIB, HEADROOM, available_bytes

    budget = pool.largest_bytes() + int(memory_gb * GIB) - group_bytes
    free = available_bytes()
    if free is not None:
        budget = min(budget, pool.held_bytes() + free - group_bytes - HEADROOM)
    return max(budget, 0)


class CacheWriteError(FeatureError):
    """The feature cache folder cannot be written: a problem of the run, not of one clip."""


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

    def _path(self, backbone: Backbone | BackboneCard, kind: str, key: str) -> Path:
        assert self.root is not None  # load and save return first without a cache folder
        return self.root / backbone.cache_identity_hash()[:16] / kind / f"{key}.safetensors"

    @staticmethod
    def _index_path(path: Path) -> Path:
        return path.with_suffix(".json")

    def load(self, backbone: Backbone | BackboneCard, kind: str, key: str) -> dict[str, np.ndarray] | None:
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
        logging.getLogger("vdeval.run.featurize").warning("note: cached features %s: %s; recomputing", p, why)

    def save(self, backbone: Backbone | BackboneCard, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
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
            raise CacheWriteError(f"cannot write cached features under {self.root}: {why}",
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
    # host memory too: a batch that does not fit is halved before a clip is given up
    return isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "out of memory" in str(e))


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _trim_heap()


def _trim_heap() -> None:
    """Hand the memory of freed networks and batches back to the system (glibc keeps freed heap
    pages, so the next network would be built on top of them: measured, 0.3 GB of a run's peak)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl): nothing to do
        pass


def featurize(
    clips: list[ClipFeatures],
    requests: list[FeatureRequest],
    pool: BackbonePool,
    cache: FeatureCache | None = None,
    batch_size: int = 16,
    cache_max_bytes: int | None = None,
    on_done=None,
    directions: dict[tuple, tuple] | None = None,
) -> dict[tuple[str, str], int]:
    """Fill each clip's features for every request; returns how many were computed (not read from
    cache) per (kind, backbone). Each distinct request is computed once per clip. Clips are
    decoded straight to the backbone's input spec, one batch at a time, and dropped after.
    A computed feature larger than `cache_max_bytes` (pixel-sized flow of long real footage) is
    kept in memory for this pass but not written to the cache, so run folders stay small.
    `on_done(n)`, when given, is called as each n clips of a request are done (progress bars).
    `directions`: flow directions per clip input (`directions_per_input`) over a wider set of
    requests than this call's (featurize_clips runs one request at a time); by default this call's."""
    cache = cache or FeatureCache(None)
    computed: dict[tuple[str, str], int] = {}
    merged = merge_requests(requests)  # de-duplicate, keep order; flow in the directions read
    widest = directions_per_input(clips, merged, pool) if directions is None else directions
    for req in merged:
        # the card for specs and cache keys; the network is built only when a clip needs it
        card = pool.card(req.backbone, req.options)
        if req.kind not in card.provides and req.kind != "frames":
            raise FeatureError(
                f"backbone {req.backbone!r} does not compute {req.kind!r}",
                f"it provides {', '.join(card.provides)}",
            )
        spec = card.input_spec(req.kind)
        cid = card.cache_identity_hash()
        todo: list[tuple[ClipFeatures, str]] = []
        for clip in clips:
            if req.served_by(clip.features.get(req.key)):
                continue
            key = _input_key(clip, req.kind, spec)
            shared = (cid, req.kind, key)
            hit = clip.by_input.get(shared)
            if not req.served_by(hit) and req.kind not in UNCACHED_KINDS:
                hit = cache.load(card, req.kind, key)
            if req.served_by(hit):  # a cached forward-only flow does not serve a request for both
                clip.features[req.key] = clip.by_input[shared] = hit
            else:
                todo.append((clip, key))
        if on_done is not None and len(clips) - len(todo):
            on_done(len(clips) - len(todo))
        # frames are decoded, not computed: no network for them
        worker = pool.get(req.backbone, req.options) if todo and req.kind != "frames" else card
        by_directions: dict[tuple, list[tuple[ClipFeatures, str]]] = {}
        for clip, key in todo:
            by_directions.setdefault(widest.get((cid, req.kind, key), req.directions), []).append((clip, key))
        for dirs, items in by_directions.items():
            _compute_batches(items, replace(req, directions=dirs), worker, spec, cid, cache, batch_size,
                             cache_max_bytes, on_done)
        computed[(req.kind, req.backbone)] = computed.get((req.kind, req.backbone), 0) + len(todo)
    return computed


def directions_per_input(clips: list[ClipFeatures], requests: list[FeatureRequest],
                         pool: BackbonePool) -> dict[tuple, tuple]:
    """The flow directions to compute per (backbone cache identity, kind, clip input): requests of
    different keys can meet on one input, e.g. frozen motion's 8 fps flow and warping error's flow
    of a clip made at 8 fps (the sampling keeps every frame). Each then computes the union of their
    directions, so whichever comes first serves the other: the forward pass runs once per pair."""
    want: dict[tuple, set[str]] = {}
    for req in requests:
        if req.kind not in FLOW_KINDS:
            continue
        try:
            card = pool.card(req.backbone, req.options)
        except Exception:  # featurize says what is wrong when it reaches this request
            continue
        if req.kind not in card.provides:
            continue
        cid, spec = card.cache_identity_hash(), card.input_spec(req.kind)
        for clip in clips:
            try:
                key = _input_key(clip, req.kind, spec)
            except Exception:  # an unreadable clip fails on its own when its features are made
                continue
            want.setdefault((cid, req.kind, key), set()).update(req.arrays)
    return {k: () if v >= set(FLOW_DIRECTIONS) else tuple(d for d in FLOW_DIRECTIONS if d in v) for k, v in want.items()}


_NO_PIXELS = ("text_embedding", "reference_embedding")  # kinds computed from the prompt or the image


def _input_key(clip: ClipFeatures, kind: str, spec: InputSpec) -> str:
    if kind in _NO_PIXELS:
        return ClipInput(None, clip.prompt, clip.reference_image, "-").key_for(kind)
    return clip.source.input_key(spec)


def _input(clip: ClipFeatures, kind: str, spec: InputSpec, key: str, stream: bool = False) -> ClipInput:
    """What the backbone sees: the clip decoded to its spec (text and image kinds need no pixels),
    or for a streaming backbone the source and spec, decoded a few frames at a time as it reads."""
    if stream and kind not in _NO_PIXELS and kind != "frames":
        return ClipInput(None, clip.prompt, clip.reference_image, key, source=clip.source, spec=spec)
    video = None if kind in _NO_PIXELS else clip.decoded(spec)
    return ClipInput(video, clip.prompt, clip.reference_image, key)


def _rates(clip: ClipFeatures, inp: ClipInput) -> dict[str, np.ndarray]:
    if inp.video is None and inp.source is None:
        return {}
    return {"input_fps": np.array([inp.fps], np.float64),
            "source_fps": np.array([clip.source.source_fps], np.float64)}


def _compute_batches(todo, req: FeatureRequest, backbone: Backbone | BackboneCard, spec: InputSpec, cid: str,
                     cache: FeatureCache, batch_size: int, cache_max_bytes: int | None = None,
                     on_done=None) -> None:
    size = batch_size
    start = 0
    while start < len(todo):
        chunk = todo[start:start + size]
        inputs = [_input(clip, req.kind, spec, key, backbone.streams_input) for clip, key in chunk]
        try:
            if req.kind == "frames":
                outs = [{"value": inp.frames} for inp in inputs]
            else:
                assert isinstance(backbone, Backbone)  # the network is built whenever one must run
                with _autocast(backbone):
                    outs = _compute(backbone, req, inputs)
        except Exception as e:
            if not _is_out_of_memory(e) or size == 1:
                raise
            size //= 2  # a CUDA OOM: halve the batch and retry, once per batch size
            _free_cuda()
            continue
        start += len(chunk)
        for (clip, key), inp, arrays in zip(chunk, inputs, outs):
            arrays = {k: np.asarray(v) for k, v in arrays.items()}
            arrays.update(_rates(clip, inp))
            small = cache_max_bytes is None or sum(a.nbytes for a in arrays.values()) <= cache_max_bytes
            if req.kind not in UNCACHED_KINDS and small:
                cache.save(backbone, req.kind, key, arrays)
            clip.features[req.key] = clip.by_input[(cid, req.kind, key)] = arrays
        if on_done is not None:
            on_done(len(chunk))


class _DirectionalFlow(Protocol):
    def compute(self, kind: str, clips: list[ClipInput], directions: tuple[str, ...] = ...) -> list[dict]: ...


def _compute(backbone: Backbone, req: FeatureRequest, inputs: list[ClipInput]) -> list[dict]:
    """backbone.compute, asking a flow backbone that can skip a direction for only those read."""
    if req.directions and backbone.flow_directions:  # its compute takes `directions` (dis, raft)
        return cast(_DirectionalFlow, backbone).compute(req.kind, inputs, directions=req.directions)
    return backbone.compute(req.kind, inputs)


def clip_bytes(clip: ClipFeatures, requests: list[FeatureRequest], pool: BackbonePool) -> int:
    """Estimated bytes of a clip's pixel-sized features (frames and flow) at their input specs:
    uint8 RGB frames, and forward + backward (dx, dy) flow per pair (of consecutive frames, or of
    consecutive even frames for flow_even) at the backbone's flow itemsize."""
    total = 0
    for req in requests:
        if req.kind in ("flow", "flow_even", "frames"):
            backbone = pool.card(req.backbone, req.options)  # specs only: never rebuilds a freed network
            t, h, w = clip.source.output_geometry(backbone.input_spec(req.kind))
            if req.kind == "frames":
                total += t * h * w * 3
            else:
                pairs = max(t - 1, 0) if req.kind == "flow" else max((t + 1) // 2 - 1, 0)
                total += pairs * h * w * 2 * len(req.arrays) * backbone.flow_itemsize
    return total


def memory_groups(clips: list[ClipFeatures], requests: list[FeatureRequest], pool: BackbonePool,
                  memory_gb: float, metrics=()) -> list[list[ClipFeatures]]:
    """Consecutive groups of clips whose decoded inputs, features and largest backbone working
    set fit `memory_gb` (at least one clip each); see vdeval/run/memory.py."""
    from vdeval.run.memory import plan_groups

    return plan_groups(clips, requests, pool, memory_gb, metrics)
