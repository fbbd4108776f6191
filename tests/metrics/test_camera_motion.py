"""camera_motion: known answers for the global-motion fit, VBench-2.0's classification rule and the
caption's camera words; world clips with exact camera truth; natural footage moved by a virtual
camera of known motion (a crop window sliding and scaling over the frame); objects moving on a
still camera, which must read as static; and the audit's camera_pan corruption."""
from pathlib import Path

import numpy as np
import pytest
from helpers import virtual_camera

from vdeval.audit import flag_accuracy, run_audit
from vdeval.features import ClipFeatures
from vdeval.metrics import camera_motion as cm
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video import Video
from vdeval.video.source import FileSource
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import camera_pan
from vdeval.world.scene import DIRECTIONS

DATA = Path(__file__).parents[1] / "data" / "natural"
POOL = BackbonePool()


def _scored(videos, prompts=None, metric=None):
    metric = metric or cm.CameraMotion()
    clips = [ClipFeatures(f"c{i}", v, (prompts or [""] * len(videos))[i]) for i, v in enumerate(videos)]
    featurize(clips, metric.requests(), POOL)
    return [metric.score_clip(c) for c in clips]


def _labels(score) -> set[str]:
    return {k for k in cm.LABELS if score.extras.get(k)}


# ---- the fit, on exact flow fields -----------------------------------------------------------

def _field(h, w, z, c):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    p = (xs - (w - 1) / 2) + 1j * (ys - (h - 1) / 2)
    d = z * p + c - p
    return np.stack([d.real, d.imag], -1).astype(np.float32)


@pytest.mark.parametrize("z, c", [(1.0, 2.5 - 1.0j), (1.03, 0.0), (np.exp(0.02j), 0.5j), (0.98 * np.exp(-0.01j), -1 + 1j)])
def test_fit_recovers_a_similarity_despite_a_moving_object(z, c):
    h, w = 64, 96
    flow = _field(h, w, z, c)
    flow[20:40, 30:55] = (7.0, -5.0)  # an object moving on its own: a fifth of the frame, inside it
    zf, cf, inl = cm.fit_similarity(flow)
    assert abs(zf - z) < 1e-6 and abs(cf - c) < 1e-5
    assert 0.8 < inl < 0.95


def test_fit_reads_a_still_camera_exactly_and_ignores_an_object_even_a_large_one():
    flow = np.zeros((64, 64, 2), np.float32)
    flow[2:40, 2:40] = (3.0, 0.0)  # 35% of the frame, in a corner: it touches two adjacent sides
    assert cm.fit_similarity(flow)[:2] == (1.0, 0.0)
    # with only the object trackable (a flat background), its motion is still not the camera's
    mask = np.zeros((64, 64), bool)
    mask[2:40, 2:40] = True
    assert cm.fit_similarity(flow, mask)[:2] == (1.0, 0.0)


def test_compose_chains_pairs_in_order():
    pairs = [(1.1, 2.0), (1.0, 1j), (np.exp(0.1j), 0.0)]
    Z, C = cm.compose(pairs)
    x = 3 - 2j
    y = x
    for z, c in pairs:
        y = z * y + c
    assert abs(Z * x + C - y) < 1e-12


# ---- VBench-2.0's rule ------------------------------------------------------------------------

@pytest.mark.parametrize("z, c, want", [
    (1.0, -5.0, {"pan_right"}),  # content moves left: the camera pans right
    (1.0, 5.0, {"pan_left"}),
    (1.0, 5.0j, {"tilt_up"}),  # content moves down: the camera tilts up
    (1.0, -5.0j, {"tilt_down"}),
    (1.1, 0.0, {"zoom_in"}),
    (0.9, 0.0, {"zoom_out"}),
    (1.0, 0.1, {"static"}),  # under factor x min side
    (1.0, 5 + 5j, {"pan_left", "tilt_up"}),
])
def test_classify_follows_vbench2_mapping(z, c, want):
    assert cm.classify(cm.edge_displacements(z, c, 100, 100), 100, 0.02) == want


def test_classify_threshold_is_factor_times_short_side():
    edges = cm.edge_displacements(1.0, -0.6, 100, 200)  # 0.6 px over a 100 px short side
    assert cm.classify(edges, 100, 0.005) == {"pan_right"}
    assert cm.classify(edges, 100, 0.01) == {"static"}


# ---- the caption's words ------------------------------------------------------------------------

@pytest.mark.parametrize("caption, want", [
    ("Garden, pan left.", {"pan_left"}),
    ("A beautiful coastal beach in spring, waves lapping on sand, zoom out", {"zoom_out"}),
    ("Pyramid, tilt up.", {"tilt_up"}),
    ("The camera movement is static. Garden, static shot, the camera is fixed.", {"static"}),
    ("a small red circle moving left slowly on a striped background with the camera panning up-left", {"pan_left", "tilt_up"}),
    ("a small red circle moving left slowly on a striped background with the camera panning down", {"tilt_down"}),
    ("a small red circle moving left slowly on a striped background", {"static"}),
])
def test_requested_motion(caption, want):
    assert cm.requested_motion(caption).labels == want


@pytest.mark.parametrize("caption", ["a dog running on a beach", "The camera orbits around in a clockwise direction. Garden."])
def test_unreadable_captions_score_nan_with_a_note(caption):
    asked = cm.requested_motion(caption)
    assert asked.labels is None and asked.why
    still = Video(np.repeat(sample_clip(3, WorldSpec(height=64, width=64)).video.frames[:1], 4, 0), 8.0)
    s = _scored([still], [caption])[0]
    assert np.isnan(s.value) and s.note == asked.why and s.extras["static"] == 1.0


def test_misalignment_is_zero_only_when_the_motion_is_as_asked():
    pan_left = {"pan": -0.1, "tilt": 0.0, "zoom": 0.0, "rotation": 0.0}
    assert cm.misalignment(pan_left, frozenset({"pan_left"}), 0.02) == 0.0
    assert cm.misalignment(pan_left, frozenset({"static"}), 0.02) == pytest.approx(0.08)
    assert cm.misalignment(pan_left, frozenset({"pan_right"}), 0.02) == pytest.approx(0.12)


# ---- world clips: exact camera truth ----------------------------------------------------------------

def test_world_pans_and_still_cameras_read_exactly():
    """Held-out seeds (the factor was chosen on seeds 1000-1079). Pans over a background with
    texture in two directions (checkered, dotted) give their exact classes; every still-camera
    clip, on any background and with objects moving in any direction, reads static."""
    spec = WorldSpec(height=64, width=64, frames=8, pan_probability=0.5)
    clips = [sample_clip(s, spec) for s in range(2000, 2040)]
    clips = [c for c in clips if not c.scene.pan or c.scene.background in ("checkered", "dotted")]
    scores = _scored([c.video for c in clips], [c.caption for c in clips])
    n_pan = 0
    for c, s in zip(clips, scores):
        truth = cm.requested_motion(c.caption).labels
        assert _labels(s) == truth, (c.caption, s.extras)
        assert s.value == 1.0 and s.extras["misalignment"] == 0.0
        n_pan += bool(c.scene.pan)
        if c.scene.pan:  # the world's pan is 2 px/frame at 64 px: 7 pairs move the frame 14 px
            dx, dy = DIRECTIONS[c.scene.pan]
            assert s.extras["pan"] == pytest.approx(dx * 14 / 64, abs=0.01)
            assert s.extras["tilt"] == pytest.approx(-dy * 14 / 64, abs=0.01)
    assert n_pan >= 5 and len(clips) - n_pan >= 15


def test_camera_pan_corruption_is_caught_on_textured_backgrounds():
    spec = WorldSpec(height=64, width=64, frames=8, backgrounds=("checkered", "dotted"))
    clips = [sample_clip(s, spec) for s in range(2100, 2108)]
    scores = _scored([camera_pan(c, 0.25, i) for i, c in enumerate(clips)], [c.caption for c in clips])
    # at severity 0.25 the camera moves 2 px/frame for 2 of 7 pairs: 4 px, 6% of the frame
    assert all(s.value == 0.0 and s.extras["misalignment"] > 0.03 for s in scores)


# ---- natural footage moved by a virtual camera ----------------------------------------------------

MOVES = [  # (classes, shift px/frame, zoom per frame); 12 frames: 11 pairs
    ({"static"}, (0, 0), 1.0), ({"pan_left"}, (-1.5, 0), 1.0), ({"pan_right"}, (1.5, 0), 1.0),
    ({"tilt_up"}, (0, -1.5), 1.0), ({"tilt_down"}, (0, 1.5), 1.0), ({"zoom_in"}, (0, 0), 1.015),
    ({"zoom_out"}, (0, 0), 1 / 1.015), ({"pan_left", "tilt_up"}, (-1, -1), 1.0),
    ({"pan_right"}, (0.3, 0), 1.0),  # a slow pan: 0.3 px a pair, under the inlier tolerance
]


@pytest.mark.parametrize("name, size", [("bigbuckbunny_180p", (128, 224)), ("carphone", (112, 144))])
def test_natural_footage_under_a_virtual_camera(name, size):
    still = FileSource(DATA / f"{name}.mp4").decode().frames[:1]
    videos = [virtual_camera(still, 12, size, shift, zoom) for _, shift, zoom in MOVES]
    scores = _scored(videos, ["a view"] * len(videos))
    m = min(size)
    for (want, shift, zoom), s in zip(MOVES, scores):
        assert _labels(s) == want, (want, s.extras)
        # the size of the move: the centre travels 11 x shift pixels, the scale 11 x log(zoom)
        assert s.extras["pan"] == pytest.approx(11 * shift[0] / m, abs=0.004)
        assert s.extras["tilt"] == pytest.approx(-11 * shift[1] / m, abs=0.004)
        assert s.extras["zoom"] == pytest.approx(11 * np.log(zoom), abs=0.01)


def test_objects_moving_on_a_still_natural_camera_read_static():
    """A still natural background with a piece of another clip sliding across it (a quarter of the
    frame's width, in from the side and over the middle): the camera is still."""
    bg = FileSource(DATA / "bigbuckbunny_180p.mp4").decode().frames[0]
    patch = FileSource(DATA / "carphone.mp4").decode().frames[0][20:100, 40:120]
    videos = []
    for vx, vy, y0 in ((4, 0, 50), (-4, 2, 30), (3, 3, 10)):
        frames = []
        for t in range(12):
            f = bg.copy()
            x, y = 40 + vx * t if vx > 0 else 200 + vx * t, y0 + vy * t
            f[y:y + 80, x:x + 80] = patch
            frames.append(f)
        videos.append(Video(np.stack(frames), 8.0))
    for s in _scored(videos, ["Garden, static shot, the camera is fixed."] * 3):
        assert s.value == 1.0 and _labels(s) == {"static"}, s.extras


# ---- the audit --------------------------------------------------------------------------------------

def test_flag_accuracy():
    assert flag_accuracy([1, 1, 0], [0, 0], True) == pytest.approx(0.8)
    assert flag_accuracy([0, 0], [1, 0], False) == pytest.approx(0.75)
    assert np.isnan(flag_accuracy([0.5], [1.0], True))


def test_audit_grid_on_textured_world_clips():
    spec = WorldSpec(height=64, width=64, frames=8, backgrounds=("checkered", "dotted"))
    r = run_audit(8, spec, (0.5,), ["camera_motion"], ["camera_pan", "caption_swap"], seed=300)
    t = r.table.set_index(["score", "corruption"])
    assert t.loc[("camera_motion", "camera_pan"), "auroc"] == 1.0
    assert t.loc[("camera_motion", "camera_pan"), "accuracy"] == 1.0
    assert t.loc[("camera_motion.misalignment", "camera_pan"), "auroc"] == 1.0
    assert bool(t.loc[("camera_motion", "camera_pan"), "own_failure"])
    assert t.loc[("camera_motion", "caption_swap"), "auroc"] == 0.5  # the caption's pan is kept: blind by design


def test_raft_is_an_allowed_backbone():
    m = cm.CameraMotion(backbone="raft")
    assert [(r.kind, r.backbone) for r in m.requests()] == [("flow", "raft"), ("frames", "raft")]


def test_nan_flow_is_not_read_as_a_still_camera():
    z, c, inl = cm.fit_similarity(np.full((32, 32, 2), np.nan, np.float32))
    assert np.isnan(z) and np.isnan(c) and inl == 0.0
    clip = ClipFeatures("n", Video(np.zeros((3, 32, 32, 3), np.uint8), 8.0), "Garden, pan left.")
    flow = np.full((2, 32, 32, 2), np.nan, np.float32)
    clip.features[("flow", "dis")] = {"forward": flow, "backward": flow}
    s = cm.CameraMotion().score_clip(clip)
    assert np.isnan(s.value) and "no finite flow" in s.note
