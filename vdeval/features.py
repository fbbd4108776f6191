"""Feature requests and the per-clip bundle that metrics read.

A metric never decodes video or runs a model: it lists FeatureRequests, the runner computes
each (kind, backbone) once per clip, and the metric reads them from ClipFeatures.

Feature kinds and their arrays (float32 unless noted):
  flow               {"forward": (T-1, H, W, 2), "backward": (T-1, H, W, 2)}  pixels at clip size;
                     forward[t] maps frame t -> t+1, backward[t] maps frame t+1 -> t; float16 from
                     DIS (half the memory: metrics compute in float32/64 from it, a pair at a time)
  flow_even          as flow, between consecutive even frames: forward[i] maps 2i -> 2i+2 (the
                     odd frames are never seen: what frame interpolation from the even frames needs)
  midframes_even     {"value": uint8 (n, H, W, 3)}  a frame interpolator's midpoints of even frames
                     2i and 2i+2, i < n (motion_smoothness with a learned interpolator: amt)
  frame_embedding    {"value": (T, D)}   one embedding per frame
  video_embedding    {"value": (D,)}     one embedding per clip (sees motion)
  text_embedding     {"value": (D,)}     the clip's prompt, in the space of the backbone's image side
  reference_embedding{"value": (D,)}     the clip's reference image (image-to-video); from the face
                                          backbone: (N, 128), one row per face, with "box" and "score"
  face_embedding     {"value": (N, 128), "frame": int32 (N,), "box": (N, 4), "score": (N,),
                     "n_frames": int32 (1,)}  every face found in every frame (backbones/face.py)
  frame_score        {"value": (T,)}     one quality score per frame (a backbone may add clip-level arrays)
  frames             {"value": uint8 (T, H, W, 3)}  the clip as the backbone's input protocol decodes
                     it (its size and frame selection): metrics that read pixels beside a
                     backbone's features ask for these, so both are at the same size. Never cached
                     on disk (they are the clip itself); any backbone serves them.

Every feature also carries "input_fps" and "source_fps" (shape (1,)): the frame rate of the
frames the backbone saw and of the clip they were selected from.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import numpy as np

from vdeval.errors import FeatureError
from vdeval.video import Video
from vdeval.video.protocol import InputSpec, output_size, select_indices
from vdeval.video.source import ArraySource, VideoSource

FEATURE_KINDS = ("flow", "flow_even", "frame_embedding", "video_embedding", "text_embedding", "reference_embedding",
                 "frame_score", "frames", "midframes_even", "face_embedding")
UNCACHED_KINDS = ("frames",)
FLOW_KINDS = ("flow", "flow_even")
FLOW_DIRECTIONS = ("forward", "backward")


@dataclass(frozen=True)
class FeatureRequest:
    kind: str
    backbone: str
    options: tuple = ()  # sorted (key, value) pairs of backbone options, part of its identity
    # flow kinds: the directions the metric reads, e.g. ("forward",); () = both. Not part of the
    # key: one array set serves every reader, computed in the union of their directions
    directions: tuple = ()

    @property
    def key(self) -> tuple:
        return feature_key(self.kind, self.backbone, self.options)

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {self.kind!r}; one of {FEATURE_KINDS}")
        if self.directions:
            if self.kind not in FLOW_KINDS or not set(self.directions) <= set(FLOW_DIRECTIONS):
                raise ValueError(f"directions {self.directions!r} need a flow kind and a subset of {FLOW_DIRECTIONS}")
            both = set(self.directions) == set(FLOW_DIRECTIONS)  # normalised: () is both
            object.__setattr__(self, "directions", () if both else tuple(d for d in FLOW_DIRECTIONS if d in self.directions))

    @property
    def arrays(self) -> tuple[str, ...]:
        """The arrays of the feature this request reads (flow directions); () = whatever it has."""
        if self.kind not in FLOW_KINDS:
            return ()
        return self.directions or FLOW_DIRECTIONS

    def served_by(self, arrays: dict | None) -> bool:
        """Whether computed or cached `arrays` hold everything this request reads (a forward-only
        flow does not serve a request for both directions)."""
        return arrays is not None and all(a in arrays for a in self.arrays)


def merge_requests(requests) -> list[FeatureRequest]:
    """The distinct requests, in order of first appearance, one per feature key: flow requests of
    the same key merge to the union of their directions (any request for both gives both)."""
    out: dict[tuple, FeatureRequest] = {}
    for r in requests:
        have = out.get(r.key)
        if have is None:
            out[r.key] = r
        elif have.directions and have.directions != r.directions:
            union = () if not r.directions else tuple(set(have.directions) | set(r.directions))
            out[r.key] = replace(have, directions=union)
    return list(out.values())


@dataclass
class ClipInput:
    """What a backbone sees of one clip: the decoded `video`, or for a backbone that streams its
    input (`Backbone.streams_input`) no video but a `source` and the `spec` to decode it to, read
    through `batches` a few frames at a time."""

    video: Video | None  # None for the kinds that read no pixels (text, reference image)
    prompt: str = ""
    reference_image: np.ndarray | None = None
    clip_hash: str = ""
    source: VideoSource | None = None
    spec: InputSpec | None = None

    def __post_init__(self):
        if not self.clip_hash:
            self.clip_hash = (self.video if self.video is not None else self.source).content_hash()

    def batches(self, n: int):
        """uint8 (<= n, H, W, 3) batches of the clip's frames in order, decoded as they are read
        when the clip streams; slices of `video` otherwise."""
        if self.video is None and self.source is not None:
            yield from self.source.batches(self.spec or InputSpec(), n)
            return
        frames = self.frames
        for s in range(0, len(frames), max(1, n)):
            yield frames[s:s + max(1, n)]

    @property
    def fps(self) -> float:
        """Frame rate of the frames the backbone sees."""
        if self.video is None and self.source is not None:
            return select_indices(self.spec or InputSpec(), self.source.num_frames, self.source.fps)[1]
        if self.video is None:
            raise FeatureError("this input carries no video: its feature kind reads only the prompt or the image")
        return float(self.video.fps)

    @property
    def frames(self) -> np.ndarray:
        """The video's frames; inputs of kinds that read no pixels carry none."""
        if self.video is None:
            raise FeatureError("this input carries no video: its feature kind reads only the prompt or the image")
        return self.video.frames

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
    video: Video | VideoSource | None  # a VideoSource decodes on demand (files); None once slimmed
    prompt: str = ""
    reference_image: np.ndarray | None = None
    features: dict = field(default_factory=dict)  # (kind, backbone) -> {name: array}
    clip_hash: str = ""  # the video's content hash when the caller already has it
    # (backbone cache identity, kind, input key) -> arrays: requests that differ only in options
    # which select the same input (e.g. 8 fps sampling of an 8 fps clip) share one computation
    by_input: dict = field(default_factory=dict, repr=False)

    decoded_cache: dict = field(default_factory=dict, repr=False)  # InputSpec -> Video, this pass only
    # feature key -> one-line error of a request that failed for this clip alone (the others stand)
    feature_errors: dict = field(default_factory=dict, repr=False)

    def decoded(self, spec: InputSpec) -> Video:
        """The clip decoded to `spec`, once per pass: a spec that only selects frames from an
        already decoded all-frames input of the same size is served from it without decoding."""
        if spec in self.decoded_cache:
            return self.decoded_cache[spec]
        src = self.source
        size = output_size(spec, src.height, src.width)
        for have, video in self.decoded_cache.items():
            if _selects_all(have) and video.frames.shape[1:3] == size and video.num_frames == src.num_frames:
                out = ArraySource(video).decode(replace(spec, short_side=None, max_short_side=None))
                break
        else:
            out = src.decode(spec)
        self.decoded_cache[spec] = out
        return out

    def drop_features(self) -> None:
        self.features.clear()
        self.by_input.clear()
        self.decoded_cache.clear()

    @property
    def source(self) -> VideoSource:
        """The clip as a source that decodes to any input spec (an in-memory clip wraps itself)."""
        if self.video is None:
            raise RuntimeError(f"clip {self.clip_id}: its video was dropped (slimmed), it has no source to decode")
        if not isinstance(self.video, VideoSource):
            self.video = ArraySource(self.video, self.clip_hash)  # a hash the caller has is not recomputed
        return self.video

    def frames_for(self, backbone: str | None, options: tuple = ()) -> np.ndarray:
        """uint8 frames as `backbone`'s input protocol decoded them (the "frames" feature), so
        pixels line up with that backbone's features; a clip built by hand without that feature
        gives its own frames."""
        if backbone and feature_key("frames", backbone, options) in self.feature_errors:
            self.get("frames", backbone, options)  # raises with the error the frames request met
        got = self.features.get(feature_key("frames", backbone, options)) if backbone else None
        return got["value"] if got is not None else self.source.decode().frames

    def get(self, kind: str, backbone: str, options: tuple = ()) -> dict[str, np.ndarray]:
        key = feature_key(kind, backbone, options)
        if key in self.feature_errors:
            raise FeatureError(f"{kind} from {backbone} failed for this clip ({self.feature_errors[key]})")
        try:
            return self.features[key]
        except KeyError:
            raise FeatureError(f"clip {self.clip_id}: feature {kind!r} from backbone {backbone!r} was not computed") from None

    def value(self, kind: str, backbone: str, options: tuple = ()) -> np.ndarray:
        return self.get(kind, backbone, options)["value"]


def widen_half(a) -> np.ndarray:
    """float16 `a` (DIS flow) as float32, any other array unchanged. Through torch's vectorised
    conversion: numpy converts float16 a value at a time, about 100x slower, to the same values
    (the conversion is exact)."""
    a = np.asarray(a)
    if a.dtype != np.float16:
        return a
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).float().numpy()


def to_float16(a: np.ndarray) -> np.ndarray:
    """float32 `a` rounded to float16 (round to nearest even, as numpy does), through torch's
    vectorised conversion."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a, np.float32)).half().numpy()


def input_fps(arrays: dict) -> dict[str, float]:
    """{"fps": frame rate of the frames a feature was computed on}, for metrics to state what
    frame rate their numbers assume; empty for features built by hand without it."""
    return {"fps": float(arrays["input_fps"][0])} if "input_fps" in arrays else {}


def frames_seen(clip: ClipFeatures, request: FeatureRequest) -> int | None:
    """How many of the clip's frames a feature covers (after its backbone's frame selection);
    None when it is not computed or is not per frame (clip, text, image embeddings)."""
    if request.key in clip.feature_errors:  # failed for this clip: the metric's get() says why
        return None
    arrays = clip.features.get(request.key)
    if arrays is None:  # frames not decoded by a backbone are the clip's own (what frames_for reads)
        return int(clip.frames_for(None).shape[0]) if request.kind == "frames" else None
    if request.kind == "flow":
        return int(arrays["forward"].shape[0]) + 1
    if request.kind == "flow_even":  # pairs (2i, 2i+2): n pairs span frames 0..2n
        return 2 * int(arrays["forward"].shape[0]) + 1
    if request.kind == "midframes_even":
        return 2 * int(arrays["value"].shape[0]) + 1
    if request.kind in ("frame_embedding", "frame_score", "frames"):
        return int(arrays["value"].shape[0])
    return None


def _selects_all(spec: InputSpec) -> bool:
    return spec.frames is None and spec.stride == 1 and spec.fps is None


def feature_key(kind: str, backbone: str, options: tuple = ()) -> tuple:
    """Where a feature sits in ClipFeatures.features: requests that differ only in a backbone
    option (e.g. flow on frames sampled to 8 fps) never share features."""
    return (kind, backbone) if not options else (kind, backbone, tuple(options))
