"""as_video: value ranges come from the source's declared convention, never from the clip's data."""
import numpy as np
import pytest
import torch

from vdeval.errors import VideoReadError
from vdeval.video import as_video


def test_half_grey_is_the_same_grey_whatever_else_is_in_the_clip():
    a = np.full((2, 4, 4, 3), 0.5, np.float32)
    b = a.copy()
    b[0, 0, 0, 0] = -0.001  # one pixel a hair below zero: within tolerance, still [0, 1]
    assert (as_video(a).frames == 128).all()
    assert as_video(b).frames[1, 0, 0, 0] == 128
    signed = a.copy()
    signed[0, 0, 0, 0] = -1.0
    assert (as_video(signed, value_range=(-1, 1)).frames[1] == 191).all()


def test_float_0_255_is_refused_not_turned_white():
    pix = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    with pytest.raises(VideoReadError, match=r"clip\.npy: values span .*default for float.*value_range=\(0, 255\)"):
        as_video(pix, source="clip.npy")
    v = as_video(pix, value_range=(0, 255))
    assert np.array_equal(v.frames, np.round(pix).astype(np.uint8))


def test_signed_floats_without_a_declared_range_are_refused():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 4, 4, 3))
    with pytest.raises(VideoReadError, match=r"value_range=\(-1, 1\)"):
        as_video(x, source="vae")
    assert np.array_equal(as_video(x, value_range=(-1, 1)).frames, np.round((x + 1) * 127.5).astype(np.uint8))


def test_declared_range_is_enforced():
    with pytest.raises(VideoReadError, match=r"outside the declared range \[0, 1\]"):
        as_video(np.full((1, 4, 4, 3), 3.0), value_range=(0, 1))
    with pytest.raises(ValueError, match="low < high"):
        as_video(np.zeros((1, 4, 4, 3)), value_range=(1, 1))


def test_integers_outside_0_255_are_refused():
    with pytest.raises(VideoReadError, match="integer"):
        as_video(np.full((1, 4, 4, 3), 1000, np.int32))
    ten_bit = np.full((1, 4, 4, 3), 1023, np.uint16)
    assert (as_video(ten_bit, value_range=(0, 1023)).frames == 255).all()
    assert (as_video(np.full((1, 4, 4, 3), 7, np.int64)).frames == 7).all()


def test_layout_is_declared_or_unambiguous():
    x = np.zeros((5, 3, 6, 3), np.uint8)  # axis 1 and the last axis could both be channels
    with pytest.raises(VideoReadError, match="ambiguous"):
        as_video(x)
    assert as_video(x, layout="TCHW").frames.shape == (5, 6, 3, 3)
    assert as_video(x, layout="THWC").frames.shape == (5, 3, 6, 3)
    assert as_video(np.zeros((5, 4, 4, 3), np.uint8)).frames.shape == (5, 4, 4, 3)  # RGB beats RGBA
    with pytest.raises(VideoReadError, match="ambiguous"):
        as_video(np.zeros((5, 4, 6, 1), np.uint8))
    with pytest.raises(VideoReadError, match="declared layout THWC"):
        as_video(np.zeros((2, 3, 8, 8), np.uint8), layout="THWC")
    assert as_video(np.zeros((2, 3, 8, 8), np.uint8)).frames.shape == (2, 8, 8, 3)


def test_bfloat16_tensors_convert():
    t = torch.full((2, 3, 4, 4), 0.5, dtype=torch.bfloat16)
    assert (as_video(t).frames == 128).all()


def test_npy_files_follow_the_same_rules(tmp_path):
    from vdeval.video import read_video

    np.save(tmp_path / "unit.npy", np.full((2, 4, 4, 3), 0.25, np.float32))
    assert (read_video(tmp_path / "unit.npy").frames == 64).all()
    np.save(tmp_path / "pix.npy", np.full((2, 4, 4, 3), 200.0, np.float32))
    with pytest.raises(VideoReadError, match=r"pix\.npy: values span \[200, 200\]"):
        read_video(tmp_path / "pix.npy")
    torch.save(torch.full((2, 3, 4, 4), 0.25), tmp_path / "unit.pt")
    assert (read_video(tmp_path / "unit.pt").frames == 64).all()
