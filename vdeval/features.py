"""Feature requests and the per-clip bundle that metrics read.

A metric never decodes video or runs a model: it lists FeatureRequests, the runner computes
each (kind, backbone) once per clip, and the metric reads them from ClipFeatures.

Feature kinds and their arrays (float32 unless noted):
  flow               {"forward": (T-1, H, W, 2), "backward": (T-1, H, W, 2)}  pixels at clip size;
                     forward[t] maps frame t -> t+1, backward[t] maps frame t+1 -> t
  flow_even          as flow, between consecutive even frames: forward[i] maps 2i -> 2i+2 (the
                     odd frames are never seen: what frame interpolation from the even frames needs)
  frame_embedding    {"value": (T, D)}   one embedding per frame
  video_embedding    {"value": (D,)}     one embedding per clip (sees motion)
  text_embedding     {"value": (D,)}     the clip's prompt, in the space of the backbone's image side
  reference_embedding{"value": (D,)}     the clip's reference image (image-to-video)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from vdeval.errors import FeatureError
from vdeval.video import Video

FEATURE_KINDS = ("flow", "flow_even", "frame_embedding", "video_embedding", "text_embedding", "reference_embedding")


@dataclass(frozen=True)
class FeatureRequest:
    kind: str
    backbone: str
    options: tuple = ()  # sorted (key, value) pairs of backbone options, part of its identity

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; one of {FEATURE_KINDS}")


@dataclass
class ClipInput:
    """What a backbone sees of one clip."""

    video: Video
    prompt: str = ""
    reference_image: np.ndarray | None = None
    clip_hash: str = ""

    def __post_init__(self):
        if not self.clip_hash:
            self.clip_hash = self.video.content_hash()

    def key_for(self, kind: str) -> str:
        """The cache key of this clip's input for a feature kind."""
        if kind == "text_embedding":
            return hashlib.sha256(("text:" + self.prompt).encode()).hexdigest()
        if kind == "reference_embedding":
            if self.reference_image is None:
                raise FeatureError("this clip has no reference image; reference features need an image-to-video prompt source")
            return hashlib.sha256(b"img:" + np.ascontiguousarray(self.reference_image).tobytes()
                                  + repr(self.reference_image.shape).encode()).hexdigest()
        return self.clip_hash


@dataclass
class ClipFeatures:
    """One clip with the features computed for it, as metrics read them."""

    clip_id: str
    video: Video
    prompt: str = ""
    reference_image: np.ndarray | None = None
    features: dict = field(default_factory=dict)  # (kind, backbone) -> {name: array}
    clip_hash: str = ""  # the video's content hash when the caller already has it

    def get(self, kind: str, backbone: str) -> dict[str, np.ndarray]:
        try:
            return self.features[(kind, backbone)]
        except KeyError:
            raise FeatureError(f"clip {self.clip_id}: feature {kind!r} from backbone {backbone!r} was not computed") from None

    def value(self, kind: str, backbone: str) -> np.ndarray:
        return self.get(kind, backbone)["value"]
