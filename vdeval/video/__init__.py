"""Video: one canonical layout (uint8, frames x height x width x 3, plus fps); convert only at the edges."""
from vdeval.video.core import Video, as_video
from vdeval.video.io import read_video, write_video

__all__ = ["Video", "as_video", "read_video", "write_video"]
