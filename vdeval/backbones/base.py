"""The backbone contract: a name, a version, a written preprocessing protocol, its weights and a
batched compute. Its identity (all of those plus options) keys the feature cache and is
recorded beside every number in results."""
from __future__ import annotations

import hashlib
import json
from typing import ClassVar

import numpy as np

from vdeval.features import ClipInput


class Backbone:
    name: ClassVar[str]
    version: ClassVar[str]
    provides: ClassVar[tuple[str, ...]]  # feature kinds this backbone computes
    protocol: ClassVar[str]  # the exact preprocessing, in words (resize, value range, layout)
    tier: ClassVar[str] = "embedded"  # "embedded" (offline, shipped) or "published" (paper-comparable)
    # whether the protocol tolerates CUDA autocast (bfloat16). False where numbers must match a
    # float32 reference (I3D for FVD) or where low precision hurts (flow).
    amp: ClassVar[bool] = False

    def __init__(self, device: str = "cpu", **options):
        self.device = device
        self.options = options

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

    def label(self) -> str:
        """Short human label for reports, e.g. 'dis@1' or 'i3d@stylegan-v'."""
        return f"{self.name}@{self.version}"

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        """Features of `kind` for each clip, in order; batched inside as the backbone sees fit.
        Must be batch-invariant: a clip's features do not depend on the other clips."""
        raise NotImplementedError
