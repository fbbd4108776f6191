"""Reading and writing videos at the edge of the toolkit; everything inside uses Video.

Read: mp4/webm/mkv/mov/avi/gif (PyAV), a folder of PNG/JPEG frames, .npy and .pt arrays.
Write: mp4 (H.264, yuv420p) and GIF. Every failure is one VideoReadError naming the file.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from vdeval.errors import VideoReadError
from vdeval.userfiles import read_bytes
from vdeval.video.core import Video, as_video

MAX_FRAME_BYTES = 512 << 20  # one PNG / JPEG frame: an 8K PNG is well under this

CONTAINER_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif", ".m4v"}
FRAME_SUFFIXES = {".png", ".jpg", ".jpeg"}
ARRAY_SUFFIXES = {".npy", ".pt"}
VIDEO_SUFFIXES = CONTAINER_SUFFIXES | ARRAY_SUFFIXES


def read_video(path: str | os.PathLike, fps: float | None = None) -> Video:
    """Read any supported video into the canonical layout. `fps` overrides the file's rate
    (and sets it for arrays and frame folders, which carry none; default 8)."""
    p = Path(path)
    if not p.exists():
        raise VideoReadError(f"{p}: no such file or folder")
    if p.is_dir():
        return _read_frame_folder(p, fps or 8.0)
    if not p.is_file():  # a FIFO would block the decoder, a device would never end
        raise VideoReadError(f"{p}: not a regular file (a named pipe or a device)", "give a video file")
    if p.stat().st_size == 0:
        raise VideoReadError(f"{p}: the file is empty")
    suffix = p.suffix.lower()
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as e:  # numpy raises several types for bad files
            raise VideoReadError(f"{p}: not a readable .npy array ({e})") from None
        return as_video(arr, fps or 8.0, source=str(p))
    if suffix == ".pt":
        import torch

        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as e:
            raise VideoReadError(f"{p}: not a readable tensor file ({type(e).__name__}: {e})".splitlines()[0]) from None
        if not isinstance(obj, torch.Tensor):
            raise VideoReadError(f"{p}: expected one tensor, found {type(obj).__name__}")
        return as_video(obj, fps or 8.0, source=str(p))
    if suffix in CONTAINER_SUFFIXES:
        return _read_container(p, fps)
    raise VideoReadError(f"{p}: unsupported file type {suffix!r}", f"use one of {sorted(VIDEO_SUFFIXES)}")


def _read_container(p: Path, fps: float | None) -> Video:
    """Every frame at its own size: the same decoder as clips decoded to a backbone's spec."""
    from vdeval.video.source import FileSource

    return FileSource(p, fps=fps).decode()


def _read_frame_folder(p: Path, fps: float) -> Video:
    from PIL import Image

    files = sorted(f for f in p.iterdir() if f.suffix.lower() in FRAME_SUFFIXES)
    if not files:
        raise VideoReadError(f"{p}: the folder holds no PNG or JPEG frames")
    frames = []
    for f in files:
        # through the user-file reader: a FIFO or device named like a frame would block or never end
        data = io.BytesIO(read_bytes(f, MAX_FRAME_BYTES, "video frame", VideoReadError))
        try:
            with Image.open(data) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except Exception as e:
            raise VideoReadError(f"{f}: cannot read frame ({type(e).__name__}: {e})".splitlines()[0]) from None
    if len({fr.shape for fr in frames}) != 1:
        raise VideoReadError(f"{p}: frames have different sizes {sorted({fr.shape for fr in frames})}")
    return Video(np.stack(frames), fps)


def write_video(video: Video, path: str | os.PathLike, crf: int = 18) -> Path:
    """Write mp4 (H.264) or GIF by suffix; .npy writes the exact frames. Atomic: a temp file is renamed."""
    p = Path(path)
    suffix = p.suffix.lower()
    tmp = p.with_name(f".{p.stem}.tmp{os.getpid()}{p.suffix}")
    try:
        if suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, video.frames, allow_pickle=False)
        elif suffix == ".mp4":
            _write_mp4(video, tmp, crf)
        elif suffix == ".gif":
            _write_gif(video, tmp)
        else:
            raise VideoReadError(f"{p}: cannot write {suffix!r}", "write .mp4, .gif or .npy")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
    return p


def _write_mp4(video: Video, path: Path, crf: int) -> None:
    from fractions import Fraction

    import av

    frames = video.frames
    # yuv420p needs even sizes: pad by edge replication rather than resize
    ph, pw = frames.shape[1] % 2, frames.shape[2] % 2
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=Fraction(video.fps).limit_denominator(1001))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _write_gif(video: Video, path: Path) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in video.frames]
    duration = max(20, int(round(1000 / video.fps)))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
