"""Clips as sources that decode on demand to an InputSpec, so real footage never sits in memory
at source size.

`ArraySource` wraps a clip already in memory (generated clips, arrays from the Python API).
`FileSource` references a video file by path and content hash: it probes the header when made and
decodes only when asked, straight to the spec (frames selected while decoding, each resized by the
decoder as it comes out, decoding stopped after the last frame wanted). A source may carry a
`view` (ingestion options of a folder or a real set: frames, window, size), applied before the
spec a backbone asks for. Both expose the Video-like attributes of the view (num_frames, height,
width, fps) without decoding. `batches(spec, n)` yields the decoded clip n frames at a time, so a
backbone that needs full-size frames (a peer's protocol resizing them itself) never holds more
than n of them.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vdeval.errors import VideoReadError
from vdeval.video.core import Video
from vdeval.video.protocol import FULL, InputSpec, is_identity, output_size, resize_frames, select_indices

HEAD_BYTES = 1 << 16


class VideoSource:
    """A clip that decodes to any InputSpec. Subclasses set the view's geometry and `_decode`."""

    num_frames: int
    height: int
    width: int
    fps: float
    source_fps: float

    def content_hash(self) -> str:
        raise NotImplementedError

    def decode(self, spec: InputSpec = FULL) -> Video:
        raise NotImplementedError

    def input_key(self, spec: InputSpec) -> str:
        """Cache key of this clip decoded with `spec`: the clip's own hash when the spec changes
        nothing, so features of small clips are shared with the spec-free path."""
        if is_identity(spec, self.num_frames, self.fps, self.height, self.width):
            return self.content_hash()
        return hashlib.sha256(f"{self.content_hash()}:{spec.key()}".encode()).hexdigest()

    def output_geometry(self, spec: InputSpec) -> tuple[int, int, int]:
        """(frames, height, width) that decode(spec) will return, without decoding."""
        idx, _ = select_indices(spec, self.num_frames, self.fps)
        return (len(idx),) + output_size(spec, self.height, self.width)

    def batches(self, spec: InputSpec, n: int) -> Iterator[np.ndarray]:
        """uint8 (<= n, h, w, 3) batches of decode(spec)'s frames, in order; subclasses decode
        them as they go (this fallback decodes the whole clip first)."""
        frames = self.decode(spec).frames
        for s in range(0, len(frames), max(1, n)):
            yield frames[s:s + max(1, n)]

    # Video-like access for code that needs the whole clip at its view size
    @property
    def frames(self) -> np.ndarray:
        return self.decode(FULL).frames

    def as_float(self) -> np.ndarray:
        return self.decode(FULL).as_float()


class ArraySource(VideoSource):
    """A clip in memory; `decode` selects frames and resizes like the file path does."""

    def __init__(self, video: Video, clip_hash: str = ""):
        self.video = video
        self._hash = clip_hash
        self.num_frames, self.height, self.width = video.frames.shape[:3]
        self.fps = self.source_fps = float(video.fps)

    def content_hash(self) -> str:
        if not self._hash:
            self._hash = self.video.content_hash()
        return self._hash

    def decode(self, spec: InputSpec = FULL) -> Video:
        idx, fps = select_indices(spec, self.num_frames, self.fps)
        h, w = output_size(spec, self.height, self.width)
        frames = self.video.frames if len(idx) == self.num_frames else self.video.frames[idx]
        if len(idx) == self.num_frames and (h, w) == (self.height, self.width):
            return self.video
        return Video(np.ascontiguousarray(resize_frames(frames, h, w)), fps)

    def batches(self, spec: InputSpec, n: int) -> Iterator[np.ndarray]:
        idx, _ = select_indices(spec, self.num_frames, self.fps)
        h, w = output_size(spec, self.height, self.width)
        for s in range(0, len(idx), max(1, n)):
            yield np.ascontiguousarray(resize_frames(self.video.frames[idx[s:s + max(1, n)]], h, w))


def fingerprint(path: str | os.PathLike) -> str:
    """Size, modification time and a hash of the first 64 KiB: enough for a report preview to
    notice a file that was replaced, never an identity (an edit in place past the first 64 KiB
    can keep all three); clips are identified by the hash of the whole file."""
    p = Path(path)
    st = p.stat()
    with open(p, "rb") as fh:
        head = hashlib.sha256(fh.read(HEAD_BYTES)).hexdigest()
    return f"{st.st_size}:{st.st_mtime_ns}:{head}"


class FileSource(VideoSource):
    """A video container file (mp4, webm, mkv, mov, avi, gif) decoded on demand."""

    fingerprint: str | None = None  # size, mtime and head of the file, set by generators.folder.open_clip

    def __init__(self, path: str | os.PathLike, view: InputSpec = FULL, fps: float | None = None):
        self.path = Path(path)
        self.view = view
        n, fps_src, h, w = probe(self.path)
        self.source_fps = float(fps or fps_src or 8.0)
        self.source_frames, self.source_height, self.source_width = n, h, w
        self._view_idx, self.fps = select_indices(view, n, self.source_fps)
        self.num_frames = len(self._view_idx)
        self.height, self.width = output_size(view, h, w)
        self._hash = ""
        self._fps_override = fps

    def content_hash(self) -> str:
        """sha256 of the file's bytes and of the view (and fps override) applied to it."""
        if not self._hash:
            extra = f"{self.view.key()}:{self._fps_override}"
            self._hash = hashlib.sha256(f"{self._file_sha256()}:{extra}".encode()).hexdigest()
        return self._hash

    def _file_sha256(self) -> str:
        """The file's sha256, read whole: the only identity a file has (size, modification time
        and first bytes all survive an edit in place)."""
        from vdeval.store import sha256_file

        return sha256_file(self.path)

    def decode(self, spec: InputSpec = FULL) -> Video:
        inner, fps = select_indices(spec, self.num_frames, self.fps)
        wanted = self._view_idx[inner]
        h, w = output_size(spec, self.height, self.width)
        frames = decode_frames(self.path, wanted, h, w)
        return Video(frames, fps)

    def batches(self, spec: InputSpec, n: int) -> Iterator[np.ndarray]:
        inner, _ = select_indices(spec, self.num_frames, self.fps)
        h, w = output_size(spec, self.height, self.width)
        batch: list[np.ndarray] = []
        for frame in iter_frames(self.path, self._view_idx[inner], h, w):
            batch.append(frame)
            if len(batch) == max(1, n):
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)


def probe(path: Path) -> tuple[int, float | None, int, int]:
    """(frame count, fps, height, width) from the container, counting packets when the header
    gives no frame count (webm, some mkv). Raises VideoReadError for files PyAV cannot open."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: the file has no video stream")
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else None
            h, w = stream.codec_context.height, stream.codec_context.width
            n = stream.frames or sum(1 for p in container.demux(stream) if p.size)
    except VideoReadError:
        raise
    except Exception as e:  # PyAV's own error family for corrupt or unknown data
        raise VideoReadError(f"{path}: cannot decode video ({type(e).__name__}: {e})".splitlines()[0]) from None
    if n == 0 or not h or not w:
        raise VideoReadError(f"{path}: the video has zero frames")
    return n, rate, h, w


def iter_frames(path: Path, indices: np.ndarray, height: int, width: int) -> Iterator[np.ndarray]:
    """uint8 (height, width, 3) frames at `indices` (increasing), one at a time, each converted and
    resized by the decoder (area averaging). Decoding stops after the last one; a file damaged
    part-way yields the frames decoded before the damage."""
    import av

    wanted = {int(i) for i in indices}
    last = int(indices[-1]) if len(indices) else -1
    got = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    got += 1
                    yield frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
                if i >= last:
                    break
    except VideoReadError:
        raise
    except Exception as e:
        if got == 0:
            raise VideoReadError(f"{path}: cannot decode video ({type(e).__name__}: {e})".splitlines()[0]) from None
    if got == 0:
        raise VideoReadError(f"{path}: the video has zero frames")


def decode_frames(path: Path, indices: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 (len(indices), height, width, 3), or fewer frames for a file damaged part-way: iter_frames, stacked."""
    out = np.empty((len(indices), height, width, 3), np.uint8)
    got = 0
    for got, frame in enumerate(iter_frames(path, indices, height, width), 1):
        out[got - 1] = frame
    return out[:got]
