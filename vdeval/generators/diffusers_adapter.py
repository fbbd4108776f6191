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

What is checked when (so a wrong configuration costs no model load and no clip):
  suite validation  the pipeline class exists; every `call_args` name is a parameter of its
                    `__call__`; `prompt_argument` / `image_argument` are parameters too;
                    `output_type` is np, pt or pil (never latent); `num_videos_per_prompt` is 1
                    (use `samples_per_prompt`: each clip has its own seed); `fps` agrees with a
                    frame-rate call argument; no `load_args` that run code shipped with a model
                    (custom_pipeline, trust_remote_code), and no local model folder whose
                    components ship code (code_components), unless a person allowed it on the
                    command line (`vdeval run --allow-remote-code`).
  before any clip   (`prepare`) the model folder or cached hub snapshot exists, its saved class
                    is known, the dtype fits the device; the pipeline then loads once, and a load
                    failure stops the run (exit 2) instead of failing every clip.
  each clip         one pipeline call with its own torch.Generator seeded from the request, so a
                    clip never depends on the other requests.

Image-to-video is detected from the loaded pipeline (its `__call__` takes `image`), and the
request's reference image is passed as a PIL image under `image_argument` (default "image").
The output layout follows `output_type` as diffusers documents it: np (B, T, H, W, C) and pt
(B, T, C, H, W) floats in [0, 1], pil lists of frames. The recorded fps is `fps` when set, else
the pipeline's own frame-rate argument (LTX `frame_rate`, SVD `fps`, given or its default),
else 8, and results.json records that fps for the generator. Results record the weights' content hash (vdeval.generators.model_files), and it is
part of every clip's request key: new weights in the same folder make new clips.
"""
from __future__ import annotations

import contextlib
import difflib
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from vdeval.errors import VdevalError
from vdeval.generators.base import (
    ClipRequest,
    GeneratedClip,
    Generator,
    GeneratorConfig,
    GeneratorSetupError,
    remote_code_allowed,
)
from vdeval.limits import Fps
from vdeval.video import as_video

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline

# from_pretrained arguments that make diffusers import and run Python files from a model
CODE_LOADING_ARGS = ("custom_pipeline", "custom_revision", "trust_remote_code")
# arguments vdeval sets itself, from the fields named here
RESERVED_LOAD_ARGS = {"torch_dtype": "dtype", "dtype": "dtype", "local_files_only": "allow_download"}
RESERVED_CALL_ARGS = {"generator": "each clip gets its own torch.Generator seeded from its request"}
OUTPUT_TYPES = ("np", "pt", "pil")
FRAME_RATE_ARGS = ("frame_rate", "fps")
EXTRA_HINT = "pip install 'vdeval[diffusers]'"


class DiffusersConfig(GeneratorConfig):
    model: str  # hub id or local directory
    pipeline: str = "DiffusionPipeline"  # a diffusers pipeline class name
    call_args: dict[str, Any] = Field(default_factory=dict)
    load_args: dict[str, Any] = Field(default_factory=dict)  # extra from_pretrained arguments (variant, revision)
    prompt_argument: str | None = "prompt"  # None for pipelines without text (StableVideoDiffusion)
    image_argument: str | None = None  # default: "image" when the pipeline takes one
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    fps: Fps = 8.0
    allow_download: bool = False  # offline by default: only local files / the local hub cache
    cpu_offload: bool = False

    @model_validator(mode="after")
    def _check(self):
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def resolve_class(name: str) -> type[DiffusionPipeline]:
    try:
        import diffusers
    except ImportError as e:
        raise VdevalError(f"the diffusers generator needs the diffusers package ({e})", EXTRA_HINT) from None
    cls = getattr(diffusers, name, None)
    if cls is None or not isinstance(cls, type) or not hasattr(cls, "from_pretrained"):
        options = [n for n in dir(diffusers) if n.endswith("Pipeline")]
        close = difflib.get_close_matches(name, options, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "give a diffusers pipeline class name, e.g. TextToVideoSDPipeline"
        raise VdevalError(f"diffusers has no pipeline class {name!r}", hint)
    return cast("type[DiffusionPipeline]", cls)  # a diffusers class with from_pretrained: a pipeline


def call_parameters(cls: type) -> dict[str, inspect.Parameter] | None:
    """The named parameters of a pipeline's __call__; None for the generic DiffusionPipeline."""
    if cls.__name__ == "DiffusionPipeline":
        return None
    return {k: p for k, p in inspect.signature(cls.__call__).parameters.items()
            if k != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


def _load_arg_problems(c: DiffusersConfig) -> list[str]:
    out = []
    code = [k for k in CODE_LOADING_ARGS if k in c.load_args and c.load_args[k] not in (None, False)]
    if code and not remote_code_allowed():
        out.append(f"load_args.{code[0]}: loads and runs Python code shipped with the model; a suite cannot allow "
                   "that (refused: " + ", ".join(f"{k}={c.load_args[k]!r}" for k in code) + "); if you trust "
                   "the code, run with --allow-remote-code")
    out += [f"load_args.{k}: set by vdeval from `{v}`; remove it" for k, v in RESERVED_LOAD_ARGS.items() if k in c.load_args]
    return out


def _call_arg_problems(c: DiffusersConfig, params: dict | None, class_name: str) -> list[str]:
    out = [f"call_args.{k}: {why}; remove it" for k, why in RESERVED_CALL_ARGS.items() if k in c.call_args]
    ot = c.call_args.get("output_type", "np")
    if ot not in OUTPUT_TYPES:
        out.append(f"call_args.output_type: {ot!r} is not a video vdeval can score (latents are not frames); "
                   f"use one of {', '.join(OUTPUT_TYPES)}")
    if c.call_args.get("num_videos_per_prompt", 1) != 1:
        out.append("call_args.num_videos_per_prompt: must be 1, each clip comes from its own seed; "
                   "use samples_per_prompt for more videos per prompt")
    rates = {}
    for k in FRAME_RATE_ARGS:  # read as the clip's frame rate: the same rule as `fps:`
        if k in c.call_args:
            try:
                rates[k] = TypeAdapter(Fps).validate_python(c.call_args[k])
            except ValidationError as e:
                why = e.errors()[0]["msg"].removeprefix("Value error, ")
                out.append(f"call_args.{k}: {why} (got {c.call_args[k]!r})")
    if "fps" in c.model_fields_set and any(v != c.fps for v in rates.values()):
        k, v = next(iter(rates.items()))
        out.append(f"fps: {c.fps:g} disagrees with call_args.{k}: {v}; set one of them")
    if params is None:
        return out
    names = sorted(params)
    for k in c.call_args:
        if k not in params:
            close = difflib.get_close_matches(k, names, n=1)
            out.append(f"call_args.{k}: {class_name} takes no such argument"
                       + (f" (did you mean {close[0]!r}?)" if close else ""))
    for field in ("prompt_argument", "image_argument"):
        arg = getattr(c, field)
        if arg and arg not in params:
            hint = " (set prompt_argument: null for pipelines without text)" if field == "prompt_argument" else ""
            out.append(f"{field}: {class_name} takes no argument {arg!r}{hint}")
    return out


def _saved_class_name(model: str):
    """The class name a local model folder's model_index.json records, when it is readable."""
    try:
        return json.loads((Path(model).expanduser() / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def code_components(folder: Path) -> list[str]:
    """Components of a saved pipeline whose loading would run Python shipped in the folder, as
    diffusers decides it: model_index.json names `[module, Class]` with `<component>/<module>.py`
    present, or a component's config.json carries transformers' `auto_map`. ("component (file)")"""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError):
        return []
    out = []
    for name, entry in (index.items() if isinstance(index, dict) else ()):
        if name.startswith("_") or not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)):
            continue
        code = folder / name / f"{entry[0]}.py"
        if code.is_file():
            out.append(f"{name} ({name}/{code.name})")
            continue
        try:
            config = json.loads((folder / name / "config.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(config, dict) and config.get("auto_map"):
            out.append(f"{name} ({name}/config.json auto_map)")
    return out


def code_component_problem(folder: Path, allowed: bool) -> str | None:
    """One line refusing a folder with code components, unless the person allowed remote code."""
    found = code_components(folder)
    if not found or allowed:
        return None
    return (f"model: {folder}: component{'s' if len(found) > 1 else ''} {', '.join(found)} ships Python code that "
            "would run on loading; refused (run with --allow-remote-code if you trust it)")


def config_problems(c: DiffusersConfig, cls: type | None = None) -> list[str]:
    """Everything wrong with a config that can be seen without loading the model. Under the
    generic DiffusionPipeline, a local folder's saved class is what gets checked."""
    out = _load_arg_problems(c)
    if cls is None:
        try:
            cls = resolve_class(c.pipeline)
        except VdevalError as e:
            return out + [f"pipeline: {e}"]
        local = Path(c.model).expanduser()
        problem = code_component_problem(local, remote_code_allowed()) if local.is_dir() else None
        if problem:  # the run checks the folder again as it resolves it (relative to the suite, hub)
            out.append(problem)
        saved = _saved_class_name(c.model) if cls.__name__ == "DiffusionPipeline" else None
        if isinstance(saved, list) and not remote_code_allowed():
            out.append(f"model: {c.model} names a custom pipeline {saved!r} whose code would run; refused "
                       "(run with --allow-remote-code if you trust it)")
        elif isinstance(saved, str):
            try:
                cls = resolve_class(saved)
            except VdevalError as e:
                return out + [f"model: {c.model}: model_index.json: {e}"]
    return out + _call_arg_problems(c, call_parameters(cls), cls.__name__)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _missing_package(e: Exception, msg: str) -> str | None:
    """The package a load failure comes from, when it is one: some models (Wan) keep modules in
    float32 and can only load through accelerate, and diffusers then names another cause."""
    import importlib.util

    if isinstance(e, ImportError) and getattr(e, "name", None):
        return e.name
    if ("accelerate" in msg or "low_cpu_mem_usage" in msg) and importlib.util.find_spec("accelerate") is None:
        return "accelerate"
    return None


@contextlib.contextmanager
def _quiet_loading():
    """No per-component progress bars while a local folder loads (downloads keep theirs)."""
    from diffusers.utils import logging as dlog

    try:
        from transformers.utils import logging as tlog
    except ImportError:  # pragma: no cover - transformers comes with the extra
        tlog = None
    libs = [m for m in (dlog, tlog) if m is not None]
    before = [m.is_progress_bar_enabled() for m in libs]
    for m in libs:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m, on in zip(libs, before):
            if on:
                m.enable_progress_bar()


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).is_absolute() or model.count("/") > 1


def frames_of(output, output_type: str):
    """The one video of a pipeline output with the layout and value range `output_type`
    documents: (frames, layout, value_range) for as_video."""
    frames = getattr(output, "frames", None)
    if frames is None:
        frames = output[0] if isinstance(output, (tuple, list)) else output
    if len(frames) != 1:
        raise VdevalError(f"the pipeline returned {len(frames)} videos for one request", "keep num_videos_per_prompt at 1")
    first = frames[0]
    if output_type == "pil":
        import numpy as np

        return np.stack([np.asarray(im.convert("RGB")) for im in first]), "THWC", (0, 255)
    ndim = getattr(first, "ndim", None)
    if ndim != 4:
        raise VdevalError(f"output_type {output_type!r} should give one (frames, ...) array per video, got "
                          f"{type(first).__name__} of shape {getattr(first, 'shape', None)}")
    layout = "THWC" if output_type == "np" else "TCHW"
    channels = first.shape[-1] if layout == "THWC" else first.shape[1]
    if channels != 3:  # decoded video is RGB; anything else is latents or another layout
        want = "(frames, height, width, 3)" if layout == "THWC" else "(frames, 3, height, width)"
        raise VdevalError(f"output_type {output_type!r} documents {want} per video, got shape {tuple(first.shape)}",
                          "a pipeline returning latents or another layout cannot be scored as video")
    return first, layout, (0, 1)


class DiffusersGenerator(Generator[DiffusersConfig]):
    kind = "diffusers"
    Config = DiffusersConfig

    def __init__(self, config: DiffusersConfig, suite_dir: str | None = None):
        super().__init__(config, suite_dir)
        self._pipe: DiffusionPipeline | None = None
        self._device: str | None = None
        self._folder: Path | None = None
        self._weights: dict | None = None
        self.pipeline_class = resolve_class(config.pipeline)
        self.remote_code = remote_code_allowed()  # decided by the person running, at construction
        problems = config_problems(config, self.pipeline_class)
        if problems:
            raise GeneratorSetupError(f"generator {config.name}: " + "; ".join(problems))

    # -- before any work -------------------------------------------------------------------
    def _local_path(self) -> Path | None:
        m = self.config.model
        p = Path(m).expanduser()
        if not p.is_absolute() and self.suite_dir and (Path(self.suite_dir) / p).exists():
            return Path(self.suite_dir) / p
        if p.exists() or _looks_like_path(m):
            return p
        return None

    def _find_folder(self) -> Path:
        """The local folder the pipeline loads from: the given path, or the hub snapshot
        (downloaded here when allow_download is set, so its hash is known before any clip)."""
        c = self.config
        local = self._local_path()
        if local is not None:
            if not local.is_dir():
                raise GeneratorSetupError(f"generator {c.name}: model folder {str(local)!r} does not exist",
                                          "give the folder saved with save_pretrained, or a hub id")
            return local
        from diffusers import DiffusionPipeline

        kw = {k: c.load_args[k] for k in ("revision", "variant", "cache_dir", "token") if k in c.load_args}
        try:
            return Path(DiffusionPipeline.download(c.model, local_files_only=not c.allow_download, **kw))
        except Exception as e:  # hub errors come in many types
            hint = ("set allow_download: true to fetch it from the hub once" if not c.allow_download
                    else "check the model id and your network")
            raise GeneratorSetupError(f"generator {c.name}: model {c.model!r} is not available: {_first_line(e)}",
                                      hint) from None

    def _saved_class(self, folder: Path) -> type:
        """The class to check arguments against: the configured one, or the folder's own."""
        if self.pipeline_class.__name__ != "DiffusionPipeline":
            return self.pipeline_class
        try:
            name = json.loads((folder / "model_index.json").read_text())["_class_name"]
        except (OSError, ValueError, KeyError, TypeError):
            raise GeneratorSetupError(f"generator {self.name}: {folder} has no readable model_index.json",
                                      "give a folder saved with save_pretrained") from None
        if not isinstance(name, str):  # [file, class]: a custom pipeline file in the folder
            if not self.remote_code:
                raise GeneratorSetupError(f"generator {self.name}: {folder} names a custom pipeline {name!r} whose "
                                          "code would run; refused", "run with --allow-remote-code if you trust it")
            return self.pipeline_class
        return resolve_class(name)

    def prepare(self, device: str = "cpu") -> None:
        c = self.config
        if c.dtype == "float16" and not str(device).startswith("cuda"):
            raise GeneratorSetupError(f"generator {c.name}: dtype float16 needs a CUDA device, the run uses {device}",
                                      "use float32 (or bfloat16) on CPU")
        self._identify()

    def _identify(self) -> None:
        """Find the model folder, check the arguments against its class, hash its files."""
        if self._weights is not None:
            return
        c = self.config
        self._folder = self._find_folder()
        cls = self._saved_class(self._folder)
        problems = config_problems(c, cls)
        code = code_component_problem(self._folder, self.remote_code)  # before any load runs it
        problems = ([code] if code else []) + problems
        if problems:
            raise GeneratorSetupError(f"generator {c.name} ({cls.__name__}): " + "; ".join(problems))
        from vdeval.generators.model_files import fingerprint

        self._weights = fingerprint(self._folder)

    def info(self) -> dict:
        import diffusers

        self._identify()
        assert self._folder is not None  # _identify found it
        # fps as the clips carry it (the pipeline's frame-rate argument), not the config's default
        return {**super().info(), "fps": self.fps_for(self._saved_class(self._folder)),
                "diffusers": diffusers.__version__, "resolved_model": str(self._folder),
                "weights": self._weights, "remote_code_allowed": self.remote_code}

    # -- loading -------------------------------------------------------------------------------
    def _load(self, device: str):
        if self._pipe is not None and self._device == device:
            return self._pipe
        import torch

        c = self.config
        if self._folder is None:
            self.prepare(device)
        kwargs = {"dtype": getattr(torch, c.dtype), **c.load_args, "local_files_only": True}
        if self.remote_code and c.load_args.get("trust_remote_code") is None:
            kwargs["trust_remote_code"] = True
        try:
            with _quiet_loading():
                pipe = self.pipeline_class.from_pretrained(str(self._folder), **kwargs)
        except Exception as e:  # diffusers raises many types (OSError, ValueError, ImportError)
            msg = _first_line(e)
            missing = _missing_package(e, msg)
            if "trust_remote_code" in str(e):  # diffusers / transformers refused code shipped with the model
                msg, hint = "it ships Python code that would run; refused", "run with --allow-remote-code if you trust it"
            elif missing:
                hint = f"the pipeline needs the {missing!r} package: {EXTRA_HINT}"
            else:
                hint = f"check that {self._folder} holds a saved {c.pipeline} (model_index.json names its class)"
            raise GeneratorSetupError(f"generator {c.name}: cannot load {c.pipeline} from {str(self._folder)!r}: {msg}",
                                      hint) from None
        if c.cpu_offload and str(device).startswith("cuda"):
            pipe.enable_model_cpu_offload()
        else:
            pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        self._pipe, self._device = pipe, device
        return pipe

    def _image_argument(self, pipe) -> str | None:
        params = call_parameters(type(pipe)) or {}
        return self.config.image_argument or ("image" if "image" in params else None)

    def fps_for(self, pipeline_class: type) -> float:
        """`fps` when set; else the pipeline's frame-rate argument (given, or its default)."""
        c = self.config
        if "fps" in c.model_fields_set:
            return c.fps
        params = call_parameters(pipeline_class) or {}
        for arg in FRAME_RATE_ARGS:
            if arg in c.call_args:
                return float(c.call_args[arg])
            default = params[arg].default if arg in params else None
            if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0:
                return float(default)
        return c.fps

    # -- generation ------------------------------------------------------------------------------
    def _call(self, pipe, r: ClipRequest, device: str, image_arg: str | None):
        import torch
        from PIL import Image

        c = self.config
        args = dict(c.call_args)
        if c.prompt_argument:
            args[c.prompt_argument] = r.prompt
        if image_arg:
            assert r.reference_image is not None  # generate() refuses image-to-video requests without one
            args[image_arg] = Image.fromarray(r.reference_image)
        gen_device = "cpu" if str(device).startswith("mps") else device
        args["generator"] = torch.Generator(gen_device).manual_seed(int(r.seed))
        args.setdefault("output_type", "np")
        return pipe(**args)

    def generate(self, requests: list[ClipRequest], device: str = "cpu") -> Iterator[GeneratedClip]:
        pipe = self._load(device)
        c = self.config
        image_arg = self._image_argument(pipe)
        if image_arg and any(r.reference_image is None for r in requests):
            raise GeneratorSetupError(f"generator {c.name}: {type(pipe).__name__} is image-to-video and the prompts "
                                      "carry no images", "use prompts.source: world or images (image and prompt per clip)")
        output_type = c.call_args.get("output_type", "np")
        fps = self.fps_for(type(pipe))
        for r in requests:
            try:
                out = self._call(pipe, r, device, image_arg)
            except (TypeError, ValueError) as e:  # inputs the pipeline rejects: this clip fails
                yield GeneratedClip(r, None, error=f"{type(pipe).__name__} call failed: {_first_line(e)}")
                continue
            try:
                frames, layout, value_range = frames_of(out, output_type)
                video = as_video(frames, fps, source=f"{type(pipe).__name__} output (output_type {output_type})",
                                 value_range=value_range, layout=layout)
            except VdevalError as e:  # vdeval's conversion, not the pipeline, failed
                yield GeneratedClip(r, None, error=f"converting the output: {e}")
                continue
            yield GeneratedClip(r, video, meta={"pipeline": type(pipe).__name__})
