"""Face identity: does the person stay the same person over the clip (text-to-video), or stay the
reference image's person (image-to-video)? For human subjects identity drift is face identity
drift, which whole-frame embeddings (DINO, VBench's subject consistency) barely see.

Features: every face of every frame with its 128-d dlib descriptor and detector box (backbone
"face", vdeval/backbones/face.py). Per clip:
  tracks: faces are linked frame to frame by their boxes (Hungarian matching on IoU with each
    track's last box, IoU >= `track_iou`, default 0.3; an unmatched face starts a track). Boxes,
    not descriptors, so that a face replaced in place stays in its track and shows as drift;
  anchor "first" (text-to-video, default): each track's face in its first frame; "reference"
    (image-to-video): the reference image's faces, each given to one track (Hungarian on the
    distance of the track's mean descriptor to the reference face); tracks left without a
    reference face are not scored;
  distances: Euclidean distance of each face to its track's anchor (dlib's metric: the same
    person below 0.6), and their cosine similarity; with anchor "first" a track's own anchor face
    is not compared with itself.
  value  = mean distance over every compared face of every track (lower is better);
  curve  = per frame, the mean distance of the faces compared there (0 at a track's anchor frame
           with anchor "first"), NaN where no face was compared;
  extras = cosine (mean cosine similarity, FaceSim-style, higher is better), max_distance (the
           largest drift), face_share (frames with at least one face / frames), over_threshold
           (share of compared faces at or above 0.6: frames showing another person), n_tracks
           (tracks scored), n_pairs (faces compared).
NaN with a note: no face in any frame; no track seen in two frames (anchor "first"); no face in
the reference image (anchor "reference").
Not tested on the shapes world (it has no faces): tests/metrics/test_face_identity.py scores real footage
with dlib's real weights, and its identity failure is a real face pasted over the clip's.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import ClipScore, Metric

SAME_PERSON = 0.6  # dlib's threshold (vdeval.backbones.face.SAME_PERSON; not imported: metrics do not load backbones)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection over union of (left, top, right, bottom) boxes."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    union = area(a) + area(b) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def track_faces(frame: np.ndarray, boxes: np.ndarray, min_iou: float = 0.3) -> np.ndarray:
    """Track id of each face (faces in frame order): matched to the tracks' last boxes by IoU."""
    from scipy.optimize import linear_sum_assignment

    frame = np.asarray(frame)
    ids = np.full(len(frame), -1, np.int64)
    last: list[np.ndarray] = []  # last box of each track
    for t in np.unique(frame):
        here = np.flatnonzero(frame == t)
        taken = set()
        if last:
            overlap = iou(boxes[here], np.stack(last))
            rows, cols = linear_sum_assignment(-overlap)
            for r, c in zip(rows, cols):
                if overlap[r, c] >= min_iou:
                    ids[here[r]] = c
                    taken.add(r)
        for r, i in enumerate(here):
            if r not in taken:
                ids[i] = len(last)
                last.append(boxes[i])
            else:
                last[ids[i]] = boxes[i]
    return ids


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def reference_anchors(desc: np.ndarray, ids: np.ndarray, reference: np.ndarray) -> dict[int, np.ndarray]:
    """{track id: its reference face descriptor}: one reference face per track at most, assigned by
    the Hungarian method on the distance of each track's mean descriptor to each reference face."""
    from scipy.optimize import linear_sum_assignment

    tracks = np.unique(ids)
    means = np.stack([desc[ids == k].mean(0) for k in tracks])
    cost = np.linalg.norm(means[:, None] - reference[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return {int(tracks[r]): reference[c] for r, c in zip(rows, cols)}


def face_distances(desc, frame, ids, anchors: dict[int, np.ndarray], skip_anchor_frame: bool):
    """(distances, cosines, frames) of the faces compared with their track's anchor."""
    dist, cos, at = [], [], []
    for k, anchor in anchors.items():
        mine = np.flatnonzero(ids == k)
        if skip_anchor_frame:
            mine = mine[1:]
        dist.append(np.linalg.norm(desc[mine].astype(np.float64) - anchor, axis=-1))
        cos.append(cosine(desc[mine], anchor[None]))
        at.append(frame[mine])
    if not dist:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate(dist), np.concatenate(cos), np.concatenate(at)


def per_frame_curve(n_frames: int, at: np.ndarray, dist: np.ndarray, anchor_frames: list[int] | None = None) -> list[float]:
    curve = np.full(n_frames, np.nan)
    for t in range(n_frames):
        here = list(dist[at == t]) + [0.0] * sum(1 for a in anchor_frames or [] if a == t)
        if here:
            curve[t] = float(np.mean(here))
    return [float(c) for c in curve]


class FaceIdentity(Metric):
    name = "face_identity"
    version = "1"
    higher_is_better = False
    level = "clip"
    min_frames = 2
    default_backbone = "face"
    natural_backbone = "face"
    allowed_backbones = ("face",)
    failure_mode = "identity drift of a person's face (another person's face over the clip, or not the reference's)"
    audit_exempt = ("the shapes world has no faces: its identity failure (a real face pasted over a real clip's) "
                    "is scored with dlib's real weights in tests/metrics/test_face_identity.py")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        anchor: Literal["first", "reference"] = "first"  # reference: image-to-video
        detector: Literal["hog", "cnn"] = "hog"
        track_iou: float = Field(0.3, gt=0, le=1)

    def _options(self) -> tuple:
        return (("detector", self.params.detector),) if self.params.detector != "hog" else ()

    def requests(self) -> list[FeatureRequest]:
        reqs = [FeatureRequest("face_embedding", self.backbone, self._options())]
        if self.params.anchor == "reference":
            reqs.append(FeatureRequest("reference_embedding", self.backbone, self._options()))
        return reqs

    def score_clip(self, clip: ClipFeatures) -> ClipScore:
        f = clip.get("face_embedding", self.backbone, self._options())
        desc, frame, boxes = np.asarray(f["value"], np.float64), np.asarray(f["frame"]), np.asarray(f["box"])
        n_frames = int(np.asarray(f["n_frames"]).reshape(-1)[0])
        share = len(np.unique(frame)) / max(n_frames, 1)
        if len(desc) == 0:
            return ClipScore(float("nan"), [float("nan")] * n_frames, {"face_share": 0.0},
                             note=f"no face found in any of {n_frames} frames")
        ids = track_faces(frame, boxes, self.params.track_iou)
        if self.params.anchor == "reference":
            ref = np.asarray(clip.value("reference_embedding", self.backbone, self._options()), np.float64).reshape(-1, desc.shape[1])
            if len(ref) == 0:
                return ClipScore(float("nan"), [float("nan")] * n_frames, {"face_share": share},
                                 note="no face found in the reference image")
            anchors, anchor_frames = reference_anchors(desc, ids, ref), []
        else:
            anchors = {int(k): desc[np.flatnonzero(ids == k)[0]] for k in np.unique(ids) if (ids == k).sum() >= 2}
            anchor_frames = [int(frame[np.flatnonzero(ids == k)[0]]) for k in anchors]
        dist, cos, at = face_distances(desc, frame, ids, anchors, skip_anchor_frame=self.params.anchor == "first")
        if len(dist) == 0:
            return ClipScore(float("nan"), [float("nan")] * n_frames, {"face_share": share},
                             note="no face was found in two frames (of its track): nothing to compare")
        extras = {"cosine": float(cos.mean()), "max_distance": float(dist.max()), "face_share": share,
                  "over_threshold": float((dist >= SAME_PERSON).mean()), "n_tracks": float(len(anchors)),
                  "n_pairs": float(len(dist))}
        return ClipScore(float(dist.mean()), per_frame_curve(n_frames, at, dist, anchor_frames), extras)
