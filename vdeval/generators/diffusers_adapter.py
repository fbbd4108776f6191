"""Kind `diffusers`: public video pipelines from diffusers (TextToVideoSD, StableVideoDiffusion,
CogVideoX, LTX, Wan, AnimateDiff, ...), by model id or local path.

    - name: zeroscope
      kind: diffusers
      model: cerspense/zeroscope_v2_576w          # or a local directory saved with save_pretrained
      pipeline: TextToVideoSDPipeline
      dtype: float16
      call_args: {num_inference_steps: 25, num_frames: 16, height: 320, width: 576}

    - {name: svd, kind: diffusers, model: stabilityai/stable-video-diffusion-img2vid-xt,
       pipeline: StableVideoDiffusionPipeline, prompt_argument: null, allow_download: true}

`call_args` go to the pipeline call unchanged. Each clip is one pipeline call with its own
torch.Generator seeded from the request, so a clip never depends on the other requests.
The reference image (image-to-video) is passed as a PIL image under `image_argument`.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterator, Literal

from pydantic import Field

from vdeval.errors import VdevalError, WeightsError
from vdeval.generators.base import ClipRequest, GeneratedClip, Generator, GeneratorConfig
from vdeval.video import as_video

_IMAGE_PIPELINES = ("ImageToVideo", "StableVideoDiffusion", "I2VGenXL")


class DiffusersConfig(GeneratorConfig):
    model: str  # hub id or local directory
    pipeline: str = "DiffusionPipeline"  # a diffusers pipeline class name
    call_args: dict[str, Any] = Field(default_factory=dict)
    load_args: dict[str, Any] = Field(default_factory=dict)  # extra from_pretrained arguments (variant, revision)
    prompt_argument: str | None = "prompt"  # None for pipelines without text (StableVideoDiffusion)
    image_argument: str | None = None  # default: "image" for image-to-video pipelines, else unused
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    fps: float = Field(8.0, gt=0)
    allow_download: bool = False  # offline by default: only local files / the local hub cache
    cpu_offload: bool = False


def _is_image_pipeline(name: str) -> bool:
    return any(k in name for k in _IMAGE_PIPELINES)


def _frames_of(output) -> Any:
    """The first video of a pipeline output, whatever container the pipeline used."""
    frames = getattr(output, "frames", None)
    if frames is None:
        frames = output[0] if isinstance(output, (tuple, list)) else output
    first = frames[0]
    try:
        import numpy as np
        from PIL import Image

        if isinstance(first, (list, tuple)) and first and isinstance(first[0], Image.Image):
            return np.stack([np.asarray(im.convert("RGB")) for im in first])
    except ImportError:  # pragma: no cover
        pass
    return first


class DiffusersGenerator(Generator):
    kind = "diffusers"
    Config = DiffusersConfig

    def __init__(self, config: DiffusersConfig, suite_dir: str | None = None):
        super().__init__(config, suite_dir)
        self._pipe = None
        self._device = None
        self.pipeline_class = self._resolve_class(config.pipeline)

    @staticmethod
    def _resolve_class(name: str):
        import diffusers

        cls = getattr(diffusers, name, None)
        if cls is None or not isinstance(cls, type):
            options = [n for n in dir(diffusers) if n.endswith("Pipeline")]
            close = difflib.get_close_matches(name, options, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "give a diffusers pipeline class name, e.g. TextToVideoSDPipeline"
            raise VdevalError(f"diffusers has no pipeline class {name!r}", hint)
        return cls

    def _model_path(self) -> str:
        m = self.config.model
        p = Path(m).expanduser()
        if not p.is_absolute() and self.suite_dir and (Path(self.suite_dir) / p).exists():
            return str(Path(self.suite_dir) / p)
        return str(p) if p.exists() else m

    def _load(self, device: str):
        if self._pipe is not None and self._device == device:
            return self._pipe
        import torch

        c = self.config
        if c.dtype == "float16" and not str(device).startswith("cuda"):
            raise VdevalError("dtype float16 needs a CUDA device", "use float32 on CPU")
        src = self._model_path()
        kwargs = {"dtype": getattr(torch, c.dtype), **c.load_args}
        if not c.allow_download:
            kwargs["local_files_only"] = True
        try:
            pipe = self.pipeline_class.from_pretrained(src, **kwargs)
        except Exception as e:  # diffusers raises many types (OSError, ValueError, EnvironmentError)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            hint = ("set allow_download: true to fetch it from the hub once" if not c.allow_download and not Path(src).exists()
                    else "check that the directory holds a saved pipeline of this class")
            raise WeightsError(f"cannot load {c.pipeline} from {src!r}: {first}", hint) from None
        if c.cpu_offload and str(device).startswith("cuda"):
            pipe.enable_model_cpu_offload()
        else:
            pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._device = pipe, device
        return pipe

    def info(self) -> dict:
        import diffusers

        return {**super().info(), "diffusers": diffusers.__version__, "resolved_model": self._model_path()}

    def _call(self, pipe, r: ClipRequest, device: str):
        import torch
        from PIL import Image

        c = self.config
        args = dict(c.call_args)
        if c.prompt_argument:
            args[c.prompt_argument] = r.prompt
        image_arg = c.image_argument or ("image" if _is_image_pipeline(c.pipeline) else None)
        if image_arg:
            if r.reference_image is None:
                raise VdevalError(f"{c.pipeline} needs a reference image and this request has none",
                                  "use prompts with images, or a text-to-video pipeline")
            args[image_arg] = Image.fromarray(r.reference_image)
        gen_device = "cpu" if str(device).startswith("mps") else device
        args["generator"] = torch.Generator(gen_device).manual_seed(int(r.seed))
        args.setdefault("output_type", "np")
        return pipe(**args)

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        pipe = self._load(device)
        for r in requests:
            try:
                out = self._call(pipe, r, device)
                video = as_video(_frames_of(out), self.config.fps, source=f"{self.config.pipeline} output")
            except VdevalError as e:
                yield GeneratedClip(r, None, error=str(e))
                continue
            except (TypeError, ValueError) as e:  # bad call_args or inputs the pipeline rejects: this clip fails
                msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
                yield GeneratedClip(r, None, error=f"{self.config.pipeline} call failed: {msg}")
                continue
            yield GeneratedClip(r, video, meta={"pipeline": self.config.pipeline})
