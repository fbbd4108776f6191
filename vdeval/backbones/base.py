"""The backbone contract: a name, a version, a written preprocessing protocol, its weights and a
batched compute. Its identity (all of those plus options) keys the feature cache and is
recorded beside every number in results."""
from __future__ import annotations

import contextvars
import hashlib
import json
from typing import ClassVar

import numpy as np

from vdeval.errors import FeatureError
from vdeval.features import ClipInput
from vdeval.video.protocol import FULL, InputSpec

# set while `Backbone.unbuilt` constructs: the network is left for the first use
_DEFER = contextvars.ContextVar("vdeval_defer_build", default=False)


class _BuildAfterInit(type):
    """Constructing a backbone builds its network once __init__ (the subclass's, all the way down)
    has set every option, unless `Backbone.unbuilt` is constructing it."""

    def __call__(cls, *args, **kwargs):
        obj = super().__call__(*args, **kwargs)
        if not _DEFER.get():
            obj.ensure_built()
        return obj


class Backbone(metaclass=_BuildAfterInit):
    name: ClassVar[str]
    version: ClassVar[str]
    provides: ClassVar[tuple[str, ...]]  # feature kinds this backbone computes
    protocol: ClassVar[str]  # the exact preprocessing, in words (resize, value range, layout)
    tier: ClassVar[str] = "embedded"  # "embedded" (offline, shipped) or "published" (paper-comparable)
    # whether the protocol tolerates CUDA autocast (bfloat16). False where numbers must match a
    # float32 reference (I3D for FVD) or where low precision hurts (flow).
    amp: ClassVar[bool] = False
    # the domain the backbone is valid for: "any" (natural video and the world) or "world" (trained
    # on the shapes world only: its numbers on other footage mean little)
    domain: ClassVar[str] = "any"
    # options that only choose the input (frame sampling): part of the input's cache key, not of
    # what the backbone computes, so requests that differ only in them share cached features
    input_options: ClassVar[tuple[str, ...]] = ()
    # bytes per flow component this backbone stores (4 = float32; DIS keeps float16): the runner's
    # memory groups size a clip's flow with it
    flow_itemsize: ClassVar[int] = 4
    # whether compute(kind, clips, directions=...) computes flow in only the directions asked
    # (featurize passes them when no metric reads the other); otherwise both are computed
    flow_directions: ClassVar[bool] = False
    # True: compute reads each clip through ClipInput.batches, decoded a few frames at a time as it
    # reads (a peer's protocol that resizes full-size frames itself), never the whole clip at once
    streams_input: ClassVar[bool] = False

    # the attributes `build` sets (the network and what is read off it). A backbone that names
    # them checks its options and weights in __init__ (cheap: the file's presence, sha256 record and
    # format) and loads the network in `build`: a run checks every backbone's weights before any
    # work without building one network (BackbonePool.card), and builds each at its first use.
    network: ClassVar[tuple[str, ...]] = ()

    def __init__(self, device: str = "cpu", **options):
        self.device = device
        self.options = options

    @classmethod
    def unbuilt(cls, device: str = "cpu", **options) -> Backbone:
        """The backbone with its options and weights checked (missing or corrupt weights raise
        here, as constructing it does) but its network not built: `ensure_built` (or the first
        read of a network attribute) builds it. Backbones without `network` are built whole."""
        token = _DEFER.set(True)
        try:
            obj = cls(device=device, **options)
        finally:
            _DEFER.reset(token)
        if cls.network:
            obj.check_weights()
        else:
            obj.ensure_built()
        return obj

    def check_weights(self) -> None:
        """The cheap part of what `build` checks of the weights files, beyond `weights.require`
        (presence, sha256): that each parses as the format its loader reads (safetensors header,
        PyTorch archive or pickle), without reading the tensors. Backbones override it."""

    def build(self) -> None:
        """Build the network and load the weights into it (backbones that name `network`)."""

    def ensure_built(self) -> None:
        if self.__dict__.get("_built") or not type(self).network:
            self.__dict__["_built"] = True
            return
        if self.__dict__.get("_building"):
            raise AttributeError("network attribute read while building it")
        self.__dict__["_building"] = True
        try:
            self.build()
        finally:
            self.__dict__["_building"] = False
        self.__dict__["_built"] = True

    @property
    def built(self) -> bool:
        return bool(self.__dict__.get("_built"))

    def __getattr__(self, name: str):
        # only reached for attributes not set: a network attribute of an unbuilt backbone builds it
        if name in type(self).network and "device" in self.__dict__ and not self.__dict__.get("_building"):
            self.ensure_built()
            return object.__getattribute__(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def network_bytes(self) -> int:
        """Bytes of the built network's parameters and buffers (torch modules among its attributes;
        0 for backbones without any): what keeping it costs."""
        import sys

        if "torch" not in sys.modules or not self.built:
            return 0
        import torch

        seen, total = set(), 0
        for v in list(vars(self).values()):
            if isinstance(v, torch.nn.Module):
                for t in [*v.parameters(), *v.buffers()]:
                    if t.data_ptr() not in seen:
                        seen.add(t.data_ptr())
                        total += t.numel() * t.element_size()
        return total

    def unknown_kind(self, kind: str) -> FeatureError:
        """The one error for a feature kind this backbone does not compute."""
        return FeatureError(f"backbone {self.name!r} does not compute {kind!r}", f"it provides {', '.join(self.provides)}")

    def check_kind(self, kind: str) -> None:
        if kind not in self.provides:
            raise self.unknown_kind(kind)

    def weights_sha256(self) -> dict[str, str]:
        """{file name: sha256} of the weights in use; empty for weight-free backbones."""
        return {}

    def uses_amp(self) -> bool:
        return self.amp and str(self.device).startswith("cuda")

    def identity(self) -> dict:
        return {
            "name": self.name, "version": self.version, "protocol": self.protocol, "tier": self.tier,
            "weights": self.weights_sha256(), "options": {k: self.options[k] for k in sorted(self.options)},
            "amp": self.uses_amp(),
        }

    def identity_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()

    def cache_identity_hash(self) -> str:
        """identity_hash without the input-selection options: the folder of its cached features."""
        ident = self.identity()
        ident["options"] = {k: v for k, v in ident["options"].items() if k not in self.input_options}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()

    def input_spec(self, kind: str) -> InputSpec:
        """The frames and size this backbone wants decoded for `kind` (see video/protocol.py).
        Decoding to it happens before `compute`; the backbone's own preprocessing then applies."""
        return FULL

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        """Peak bytes that computing `kind` for one clip takes beyond its decoded input (`frames` x
        `height` x `width` x 3 uint8, the geometry `input_spec` gives): the backbone's temporaries
        and its output. The memory contract: every built-in backbone declares it and
        tests/run/test_memory_contract.py holds each to it on long 1080p clips; memory groups and the
        pre-flight memory check size clips with it. The default, for plugins that declare
        nothing, allows four float32 copies of the input."""
        return 16 * frames * height * width * 3

    def label(self) -> str:
        """Short human label for reports, e.g. 'dis@1' or 'i3d@stylegan-v'."""
        return f"{self.name}@{self.version}"

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        """Features of `kind` for each clip, in order; batched inside as the backbone sees fit.
        Must be batch-invariant: a clip's features do not depend on the other clips."""
        raise NotImplementedError
