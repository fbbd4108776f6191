"""face_identity and the `face` backbone with dlib's real weights (the `face` extra, installed by the
test extra: face_recognition_models ships the model files on PyPI), on real footage: carphone (one
man talking in a car, tests/data/natural/carphone.mp4) and a real face pasted over his
(tests/data/natural/astronaut_face.png, public domain). Descriptors cost about 0.2 s a face on this
CPU, so the clips are short and each is described once per module."""
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from vdeval import registry
from vdeval.backbones import face as face_backbone
from vdeval.backbones import weights
from vdeval.errors import WeightsError
from vdeval.features import ClipFeatures
from vdeval.metrics.face_identity import SAME_PERSON, FaceIdentity, iou, track_faces
from vdeval.run.featurize import BackbonePool, FeatureCache, featurize
from vdeval.video import Video
from vdeval.video.protocol import FULL
from vdeval.video.source import FileSource

DATA = Path(__file__).resolve().parents[1] / "data"
CARPHONE = DATA / "natural" / "carphone.mp4"  # 176 x 144, 48 frames: one face of about 50 px
DISTORTED = DATA / "carphone_distorted_16f.mp4"  # heavy compression: dlib finds no face in it
ASTRONAUT = DATA / "natural" / "astronaut_face.png"
POOL = BackbonePool()


def carphone(step: int = 4) -> Video:
    v = FileSource(CARPHONE).decode(FULL)
    return Video(np.ascontiguousarray(v.frames[::step]), v.fps / step)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return FeatureCache(tmp_path_factory.mktemp("face-features"))  # one description per distinct clip


def score(frames, cache, reference=None, **params):
    metric = FaceIdentity(**params)
    clip = ClipFeatures("c", frames if isinstance(frames, Video) else Video(np.asarray(frames), 10.0), reference_image=reference)
    featurize([clip], metric.requests(), POOL, cache)
    return metric.score_clip(clip), clip


def paste_face(frame: np.ndarray, box, face: np.ndarray, scale: float = 0.9) -> np.ndarray:
    """`face` resized over the square of half-side scale * box width around the box centre, blended
    by a soft disc: another person's face where the clip's was."""
    l, t, r, b = box
    h, w = frame.shape[:2]
    cx, cy, s = (l + r) / 2, (t + b) / 2, (r - l) * scale
    x0, y0, x1, y1 = (int(round(v)) for v in (cx - s, cy - s, cx + s, cy + s))
    patch = cv2.resize(face, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    alpha = np.clip(1.5 - 1.5 * np.sqrt(((xx - cx) / s) ** 2 + ((yy - cy) / s) ** 2), 0, 1)[..., None]
    out = frame.astype(np.float32)
    ys, xs = slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))
    sub = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    out[ys, xs] = patch[sub] * alpha[sub] + out[ys, xs] * (1 - alpha[sub])
    return out.round().astype(np.uint8)


def astronaut() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def clean(cache):
    return score(carphone(), cache)


@pytest.fixture(scope="module")
def swapped(clean, cache):
    """Carphone with the astronaut's face over his from the seventh of twelve frames on."""
    s, c = clean
    f = c.get("face_embedding", "face")
    frames = carphone().frames.copy()
    for t in range(6, len(frames)):
        frames[t] = paste_face(frames[t], f["box"][f["frame"] == t][0], astronaut())
    return score(Video(frames, 10.0), cache)


# ---- weights: dlib's files from face_recognition_models, by sha256 ---------------------------------

def test_weights_are_the_packages_files_checked_by_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))  # nothing installed there: the package's files
    for name in (face_backbone.RESNET, face_backbone.LANDMARKS, face_backbone.CNN):
        path, sha = weights.require(name)
        assert path == weights.package_file(name) and sha == weights.ENTRIES[name].sha256
        assert weights.verify(name) == "ok" and weights.status(name)["installed"]
    assert not (tmp_path / "weights").exists()  # used in place, nothing copied
    ident = POOL.get("face").identity()
    assert ident["weights"] == {weights.ENTRIES[n].filename: weights.ENTRIES[n].sha256
                                for n in (face_backbone.RESNET, face_backbone.LANDMARKS)}
    import dlib

    assert ident["tier"] == "published" and ident["version"] == f"dlib-resnet-v1+dlib-{dlib.__version__}"
    # `--download` copies them from the package into the weights directory, which then takes precedence
    p, sha = weights.download(face_backbone.LANDMARKS)
    assert p.parent == tmp_path / "weights" / "face" and sha == weights.ENTRIES[face_backbone.LANDMARKS].sha256
    assert weights.require(face_backbone.LANDMARKS) == (p, sha)


def test_missing_or_changed_face_models_say_what_to_install(tmp_path, monkeypatch):
    import dataclasses

    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    monkeypatch.setattr(weights, "PACKAGE", "no_such_face_models_package")
    with pytest.raises(WeightsError) as err:
        weights.require(face_backbone.RESNET)
    assert "dlib_face_recognition_resnet_model_v1.dat" in str(err.value) and "vdeval[face]" in str(err.value)
    monkeypatch.undo()
    monkeypatch.setenv(weights.ENV, str(tmp_path / "weights"))
    e = weights.ENTRIES[face_backbone.RESNET]
    monkeypatch.setitem(weights.ENTRIES, e.name, dataclasses.replace(e, sha256="0" * 64))
    with pytest.raises(WeightsError, match="sha256"):
        weights.require(face_backbone.RESNET)


def test_backbone_options_and_input_spec():
    assert registry.resolve("backbone", "face").tier == "published"
    b = POOL.get("face")
    assert b.input_spec("face_embedding").max_short_side == 480 and b.label() == "face@dlib/hog"
    with pytest.raises(WeightsError, match="detector"):
        face_backbone.FaceBackbone(detector="mtcnn")
    # a 720p frame is decoded at a 480 px short side before the detector sees it
    bunny = FileSource(DATA / "natural" / "bigbuckbunny_180p.mp4")
    assert bunny.output_geometry(b.input_spec("face_embedding"))[1:] == (180, 320)  # small footage untouched
    assert face_backbone.shrink(np.zeros((720, 1280, 3), np.uint8), 480).shape == (480, 853, 3)


# ---- pure functions ------------------------------------------------------------------------------

def test_iou_and_tracks_known_answers():
    a = np.array([[0, 0, 10, 10]], np.float32)
    assert iou(a, np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))[0] == pytest.approx([1, 1 / 3, 0])
    # two faces side by side over three frames, listed in a different order in frame 1; a third appears in frame 2
    frame = np.array([0, 0, 1, 1, 2, 2, 2])
    boxes = np.array([[0, 0, 10, 10], [50, 0, 60, 10], [51, 1, 61, 11], [1, 0, 11, 10], [2, 0, 12, 10],
                      [52, 0, 62, 10], [100, 100, 110, 110]], np.float32)
    assert track_faces(frame, boxes).tolist() == [0, 1, 1, 0, 0, 1, 2]


# ---- known answers on real footage ---------------------------------------------------------------

def test_same_person_stays_below_dlibs_threshold(clean):
    s, c = clean
    f = c.get("face_embedding", "face")
    assert f["value"].shape == (12, 128) and f["frame"].tolist() == list(range(12))  # one face a frame
    assert s.extras["face_share"] == 1.0 and s.extras["n_tracks"] == 1 and s.extras["n_pairs"] == 11
    assert s.curve[0] == 0.0 and all(0 < d < 0.45 for d in s.curve[1:])  # measured: 0.14 .. 0.34
    assert 0.15 < s.value < SAME_PERSON and s.extras["max_distance"] < 0.45 and s.extras["over_threshold"] == 0
    assert s.extras["cosine"] > 0.95 and s.note is None
    # dlib's own one-call path (compute_face_descriptor on the frame and its landmarks) gives the same descriptor
    b = POOL.get("face")
    frame = carphone().frames[3]
    rect, _ = b.detect(frame)[0]
    direct = np.asarray(b.resnet.compute_face_descriptor(frame, b.landmarks(frame, rect)), np.float32)
    assert np.abs(direct - f["value"][3]).max() < 1e-5


def _jpeg(frame, quality):
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_stable_under_mild_compression_and_resizing(cache, tmp_path):
    from vdeval.video.io import write_video

    base = carphone(step=8)  # 6 frames
    reference, _ = score(base, cache)
    h, w = base.frames.shape[1:3]
    write_video(base, tmp_path / "crf28.mp4", crf=28)
    variants = {
        "jpeg 75": np.stack([_jpeg(f, 75) for f in base.frames]),
        "h264 crf 28": FileSource(tmp_path / "crf28.mp4").decode(FULL).frames,
        "0.8x": np.stack([cv2.resize(f, (round(w * 0.8), round(h * 0.8)), interpolation=cv2.INTER_AREA) for f in base.frames]),
    }
    for name, frames in variants.items():
        s, _ = score(frames, cache)
        assert s.extras["face_share"] == 1.0 and s.extras["n_tracks"] == 1, name
        # measured: clean 0.26; jpeg 75 0.35, h264 crf 28 0.24, 0.8x 0.26; every frame at most 0.37
        assert abs(s.value - reference.value) < 0.12 and s.extras["max_distance"] < 0.5, (name, s.value, reference.value)


def test_a_pasted_face_is_an_identity_failure(clean, swapped):
    c, s = clean[0], swapped[0]
    assert s.extras["face_share"] == 1.0 and s.extras["n_tracks"] == 1  # tracked by its box: one track
    before, after = s.curve[1:6], s.curve[6:]
    assert all(d < 0.45 for d in before) and all(d > SAME_PERSON for d in after), s.curve  # measured: 0.81 .. 0.85 after
    assert s.extras["over_threshold"] == pytest.approx(6 / 11) and s.extras["max_distance"] > 0.7
    assert s.value > c.value + 0.25 and s.extras["cosine"] < c.extras["cosine"]
    # as the audit states it: every swapped frame scores worse than every clean frame (AUROC 1)
    assert min(after) > max(c.curve)


def test_image_to_video_anchors_on_the_reference_face(clean, cache):
    frames = carphone()
    own, _ = score(frames, cache, reference=frames.frames[0], anchor="reference")
    assert own.curve[0] < 0.01 and own.extras["n_pairs"] == 12  # the first frame is the reference itself
    assert own.value == pytest.approx(np.mean(clean[0].curve), abs=0.02)
    other, _ = score(frames, cache, reference=cv2.resize(astronaut(), (150, 150)), anchor="reference")
    assert all(d > SAME_PERSON for d in other.curve) and other.extras["over_threshold"] == 1.0
    blank, _ = score(frames, cache, reference=np.full((144, 176, 3), 128, np.uint8), anchor="reference")
    assert math.isnan(blank.value) and "reference image" in blank.note


def test_two_faces_are_matched_by_track(cache):
    """Two people side by side (carphone and the same clip with the astronaut's face); then the two
    halves swap places half way: each track now shows another person."""
    frames = carphone(step=8).frames[:4]
    feats = POOL.get("face").faces(frames)
    other = np.stack([paste_face(f, feats["box"][feats["frame"] == t][0], astronaut()) for t, f in enumerate(frames)])
    side = np.concatenate([frames, other], axis=2)
    crossed = side.copy()
    crossed[2:] = np.concatenate([other[2:], frames[2:]], axis=2)
    s, _ = score(side, cache)
    assert s.extras["n_tracks"] == 2 and s.extras["n_pairs"] == 6 and s.extras["max_distance"] < 0.45
    x, _ = score(crossed, cache)
    assert x.extras["n_tracks"] == 2 and x.extras["over_threshold"] == pytest.approx(4 / 6)
    assert all(d > SAME_PERSON for d in x.curve[2:]) and x.value > s.value + 0.3


def test_no_face_is_nan_with_a_note(cache):
    s, _ = score(FileSource(DISTORTED).decode(FULL), cache)
    assert math.isnan(s.value) and s.note.startswith("no face found") and s.extras["face_share"] == 0.0
    assert len(s.curve) == 16 and all(math.isnan(v) for v in s.curve)


# ---- the metric contract (test_metric_contract.py skips metrics with published weights only) ------

def test_contract_batch_invariance_determinism_and_short_clips(cache):
    from test_metric_contract import same

    metric = FaceIdentity()
    frames = carphone(step=8).frames
    clips = lambda: [ClipFeatures(f"c{i}", Video(frames[i:i + 3], 10.0)) for i in (0, 3)]  # noqa: E731
    together = clips()
    featurize(together, metric.requests(), POOL)  # no cache: computed here, the two clips in one call
    alone = []
    for c in clips():
        featurize([c], metric.requests(), POOL)
        alone.append(c)
    for a, b in zip(together, alone):
        assert same(metric.score_clip(a), metric.score_clip(b)) and same(metric.score_clip(a), metric.score_clip(a))
        assert np.array_equal(a.value("face_embedding", "face"), b.value("face_embedding", "face"))
        s = metric.score_clip(a)
        assert math.isfinite(s.value)
        json.dumps({"value": s.value, "curve": s.curve, "extras": s.extras, "note": s.note})
    one, _ = score(frames[:1], cache)
    assert math.isnan(one.value) and one.note


def test_chips_are_described_in_bounded_batches(monkeypatch):
    b = face_backbone.FaceBackbone()
    sizes = []
    describe = b.describe
    monkeypatch.setattr(face_backbone, "CHIP_BATCH", 2)
    monkeypatch.setattr(b, "describe", lambda chips: (sizes.append(len(chips)), describe(chips))[1])
    out = b.faces(carphone(step=8).frames[:5])
    assert sizes == [2, 2, 1] and out["value"].shape == (5, 128)


def test_cnn_detector_option_finds_the_same_face(clean):
    b = POOL.get("face", (("detector", "cnn"),))
    assert b.identity()["weights"][weights.ENTRIES[face_backbone.CNN].filename] == weights.ENTRIES[face_backbone.CNN].sha256
    frame = carphone().frames[:1]
    f = b.faces(frame)
    hog = clean[1].get("face_embedding", "face")
    assert f["value"].shape == (1, 128) and iou(f["box"], hog["box"][:1])[0, 0] > 0.5
    assert np.linalg.norm(f["value"][0] - hog["value"][0]) < 0.2  # measured: 0.07 (another box, the same landmarks)
    assert FaceIdentity(detector="cnn").requests()[0].options == (("detector", "cnn"),)


def test_world_audit_skips_it_with_its_reason():
    """The shapes world has no faces: `vdeval audit` leaves face_identity out with its reason,
    rather than reporting NaN AUROCs (asked for by name, it is audited and shows them)."""
    from vdeval.audit.core import _live_metrics

    live, skipped = _live_metrics(["face_identity", "frame_difference"], {}, False, POOL)
    assert [m.name for m in live] == ["frame_difference"]
    assert skipped == [f"face_identity: not audited on the world: {FaceIdentity.audit_exempt}"]
    live, _ = _live_metrics(["face_identity"], {}, True, POOL)
    assert [m.name for m in live] == ["face_identity"]


def test_a_suite_run_records_scores_notes_and_the_backbones_provenance(tmp_path):
    import shutil

    from vdeval.run.runner import Runner
    from vdeval.suite import load_suite

    (tmp_path / "vids").mkdir()
    shutil.copy(DATA / "carphone_pristine_16f.mp4", tmp_path / "vids" / "p000_s0.mp4")
    shutil.copy(DISTORTED, tmp_path / "vids" / "p001_s0.mp4")
    (tmp_path / "s.yaml").write_text("name: faces\nprompts: {source: list, items: [a man talking, the same compressed]}\n"
                                     "generators: [{name: f, kind: folder, path: vids}]\n"
                                     "metrics: [{name: face_identity}]\noutput: {dir: run}\n")
    Runner(load_suite(tmp_path / "s.yaml"), out=tmp_path / "run", progress=False, log=lambda *a: None).execute()
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    pristine, distorted = r["clips"]
    assert 0 < pristine["scores"]["face_identity"] < SAME_PERSON and pristine["extras"]["face_identity"]["face_share"] == 1.0
    assert distorted["scores"]["face_identity"] is None and distorted["notes"]["face_identity"].startswith("no face")
    record = r["backbones"]["face@dlib/hog"]
    assert record["tier"] == "published" and record["weights"]["dlib_face_recognition_resnet_model_v1.dat"] == \
        weights.ENTRIES[face_backbone.RESNET].sha256
