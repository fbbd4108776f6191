import numpy as np
import pytest
import torch
from PIL import Image

from vdeval.errors import VideoReadError
from vdeval.video import Video, as_video, read_video, write_video
from vdeval.world import sample_clip


@pytest.fixture
def clip():
    return sample_clip(7).video


def test_npy_round_trip_is_exact(tmp_path, clip):
    p = write_video(clip, tmp_path / "a.npy")
    back = read_video(p, fps=clip.fps)
    assert np.array_equal(back.frames, clip.frames)


def test_pt_tensor_layouts(tmp_path, clip):
    t = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 255.0  # T, C, H, W floats in [0, 1]
    torch.save(t, tmp_path / "a.pt")
    back = read_video(tmp_path / "a.pt")
    assert back.frames.shape == clip.frames.shape
    assert np.abs(back.frames.astype(int) - clip.frames).max() <= 1


def test_mp4_round_trip_is_close(tmp_path, clip):
    big = Video(np.repeat(np.repeat(clip.frames, 2, 1), 2, 2), 8.0)
    write_video(big, tmp_path / "a.mp4")
    back = read_video(tmp_path / "a.mp4")
    assert back.frames.shape == big.frames.shape
    assert back.fps == pytest.approx(8.0)
    assert np.abs(back.frames.astype(float) - big.frames).mean() < 6.0  # H.264 at crf 18


def test_gif_round_trip(tmp_path, clip):
    write_video(clip, tmp_path / "a.gif")
    back = read_video(tmp_path / "a.gif")
    assert back.num_frames == clip.num_frames
    assert np.abs(back.frames.astype(float) - clip.frames).mean() < 8.0  # palette quantisation


def test_frame_folder_with_grayscale_and_rgba(tmp_path):
    gray = np.full((16, 16), 100, np.uint8)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    Image.fromarray(gray).save(tmp_path / "0000.png")
    Image.fromarray(rgba).save(tmp_path / "0001.png")
    v = read_video(tmp_path)
    assert v.frames.shape == (2, 16, 16, 3)
    assert (v.frames[0] == 100).all()
    assert tuple(v.frames[1, 0, 0]) == (200, 0, 0)


def test_conversions_of_arrays():
    gray = np.zeros((3, 8, 8), np.uint8)
    assert as_video(gray).frames.shape == (3, 8, 8, 3)
    rgba = np.full((2, 8, 8, 4), 255, np.uint8)
    rgba[..., 3] = 0  # fully transparent composites to black
    assert as_video(rgba).frames.max() == 0
    signed = -np.ones((2, 3, 8, 8), np.float32)  # [-1, 1] floats, channels first
    assert as_video(signed, value_range=(-1, 1)).frames.max() == 0


@pytest.mark.parametrize("content,name,needle", [
    (b"", "empty.mp4", "empty"),
    (b"this is not a video at all" * 10, "junk.mp4", "cannot decode"),
    (b"garbage", "x.npy", "not a readable .npy"),
])
def test_bad_files_give_one_clear_error(tmp_path, content, name, needle):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(VideoReadError) as e:
        read_video(p)
    assert needle in str(e.value) and str(p) in str(e.value)
    assert "\n" not in str(e.value)


def test_truncated_mp4_keeps_frames_or_errors_clearly(tmp_path, clip):
    big = Video(np.repeat(np.repeat(clip.frames, 4, 1), 4, 2), 8.0)
    p = write_video(big, tmp_path / "a.mp4")
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        v = read_video(cut)
        assert 0 < v.num_frames <= big.num_frames
    except VideoReadError as e:
        assert str(cut) in str(e)


def test_zero_frames_and_nan_are_errors(tmp_path):
    np.save(tmp_path / "zero.npy", np.zeros((0, 8, 8, 3), np.uint8))
    with pytest.raises(VideoReadError, match="zero frames"):
        read_video(tmp_path / "zero.npy")
    bad = np.full((2, 8, 8, 3), np.nan, np.float32)
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(VideoReadError, match="NaN"):
        read_video(tmp_path / "nan.npy")
    with pytest.raises(VideoReadError, match="no such file"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(VideoReadError, match="no PNG or JPEG"):
        read_video(tmp_path / "empty_dir")


def test_content_hash_tracks_pixels_and_fps(clip):
    other = clip.frames.copy()
    other[0, 0, 0, 0] ^= 1
    assert clip.content_hash() != Video(other, clip.fps).content_hash()
    assert clip.content_hash() != Video(clip.frames, clip.fps + 1).content_hash()
    assert clip.content_hash() == Video(clip.frames.copy(), clip.fps).content_hash()
