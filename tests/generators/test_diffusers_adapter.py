"""DiffusersGenerator against tiny, randomly initialised pipelines built here from diffusers'
component classes (no downloads): TextToVideoSD, StableVideoDiffusion and Wan."""
from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import tiny_pipelines  # noqa: E402
from helpers import cli_exit_code, write_suite  # noqa: E402

from vdeval.errors import VdevalError  # noqa: E402
from vdeval.generators.base import ClipRequest, GeneratorSetupError, allow_remote_code  # noqa: E402
from vdeval.generators.diffusers_adapter import (DiffusersConfig, DiffusersGenerator,  # noqa: E402
                                                 frames_of)
from vdeval.video import as_video  # noqa: E402

T2V_ARGS = {"num_inference_steps": 2, "num_frames": 3, "height": 16, "width": 16, "guidance_scale": 2.0}
SVD_ARGS = {"num_inference_steps": 2, "num_frames": 2, "height": 32, "width": 32, "min_guidance_scale": 1.0,
            "max_guidance_scale": 2.5}


@pytest.fixture(autouse=True)
def _fingerprint_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VDEVAL_CACHE_DIR", str(tmp_path / "vdeval_cache"))


@pytest.fixture(scope="module")
def t2v_dir(tmp_path_factory):
    return tiny_pipelines.text_to_video_sd(tmp_path_factory.mktemp("tiny_t2v"))


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory):
    return tiny_pipelines.stable_video_diffusion(tmp_path_factory.mktemp("tiny_svd"))


def _gen(path, **kw):
    kw.setdefault("call_args", dict(T2V_ARGS))
    cfg = DiffusersConfig(name="tiny", kind="diffusers", model=str(path),
                          pipeline=kw.pop("pipeline", "TextToVideoSDPipeline"), **kw)
    return DiffusersGenerator(cfg)


def _problems(**kw):
    cfg = dict(name="x", kind="diffusers", model="m", pipeline="TextToVideoSDPipeline")
    cfg.update(kw)
    try:
        DiffusersConfig(**cfg)
    except Exception as e:  # pydantic ValidationError carrying our one-line problems
        return str(e)
    return ""


# ---- the happy path ---------------------------------------------------------------------------

def test_clips_equal_a_direct_pipeline_call_and_are_seeded(t2v_dir):
    from diffusers import TextToVideoSDPipeline

    gen = _gen(t2v_dir, fps=6.0)
    reqs = [ClipRequest("a", "a red circle", 1), ClipRequest("b", "a blue square", 2), ClipRequest("c", "a red circle", 1)]
    clips = list(gen.generate(reqs, "cpu"))
    assert [c.request.clip_id for c in clips] == ["a", "b", "c"] and all(c.error is None for c in clips)
    assert clips[0].video.frames.shape == (3, 16, 16, 3) and clips[0].video.fps == 6.0
    assert np.array_equal(clips[0].video.frames, clips[2].video.frames)
    assert not np.array_equal(clips[0].video.frames, clips[1].video.frames)
    alone = next(gen.generate([ClipRequest("x", "a blue square", 2)], "cpu"))
    assert np.array_equal(alone.video.frames, clips[1].video.frames)
    pipe = TextToVideoSDPipeline.from_pretrained(str(t2v_dir))
    pipe.set_progress_bar_config(disable=True)
    direct = pipe("a blue square", generator=torch.Generator("cpu").manual_seed(2), output_type="np", **T2V_ARGS).frames[0]
    assert np.array_equal(clips[1].video.frames, np.round(direct * 255).astype(np.uint8))
    # the same clips through output_type pt and pil
    for ot in ("pt", "pil"):
        other = next(_gen(t2v_dir, call_args={**T2V_ARGS, "output_type": ot}).generate([reqs[1]], "cpu"))
        assert other.error is None and np.abs(other.video.frames.astype(int) - clips[1].video.frames).max() <= 1


def test_bfloat16_with_pt_output_converts(t2v_dir):
    clip = next(_gen(t2v_dir, dtype="bfloat16", call_args={**T2V_ARGS, "output_type": "pt"})
                .generate([ClipRequest("a", "a red circle", 1)], "cpu"))
    assert clip.error is None and clip.video.frames.shape == (3, 16, 16, 3)


# ---- item 1: the weights identify the clips ----------------------------------------------------

SUITE = """
name: dif
prompts: {{source: list, items: ["a red circle", "a blue square"]}}
generators:
  - {{name: tiny, kind: diffusers, model: {model}, pipeline: {pipeline}, {extra}
     call_args: {call_args}}}
metrics:
  - {{name: frame_difference}}
output: {{report: false}}
"""


def _suite(tmp_path, model, pipeline="TextToVideoSDPipeline", extra="", call_args=None, name="s.yaml"):
    return write_suite(tmp_path, SUITE.format(model=model, pipeline=pipeline, extra=extra,
                                              call_args=json.dumps(call_args or T2V_ARGS)), name)


def _run(suite, out, *flags):
    return cli_exit_code(["run", str(suite), "--out", str(out), "--no-report", "--no-progress", *flags])


def test_new_weights_in_the_same_folder_make_new_clips(tmp_path):
    import os

    model = tiny_pipelines.text_to_video_sd(tmp_path / "m")
    suite = _suite(tmp_path, model)
    assert _run(suite, tmp_path / "run") == 0
    first = json.loads((tmp_path / "run" / "results.json").read_text())
    sha = first["generators"]["tiny"]["weights"]["sha256"]
    # touching the files keeps the content hash: the stored clips are reused
    for f in model.rglob("*"):
        os.utime(f)
    assert _run(suite, tmp_path / "run") == 0
    again = json.loads((tmp_path / "run" / "results.json").read_text())
    assert again["generators"]["tiny"]["weights"]["sha256"] == sha
    assert [c["clip_hash"] for c in again["clips"]] == [c["clip_hash"] for c in first["clips"]]
    # a new checkpoint over the old one: new hash, new clips
    unet = model / "unet" / "diffusion_pytorch_model.safetensors"
    from safetensors.torch import load_file, save_file

    w = load_file(str(unet))
    save_file({k: v + 0.05 if v.is_floating_point() else v for k, v in w.items()}, str(unet))
    assert _run(suite, tmp_path / "run") == 0
    new = json.loads((tmp_path / "run" / "results.json").read_text())
    assert new["generators"]["tiny"]["weights"]["sha256"] != sha
    assert all(a["clip_hash"] != b["clip_hash"] for a, b in zip(new["clips"], first["clips"]))


# ---- item 2: latents and layouts -----------------------------------------------------------------

def test_latents_and_multiple_videos_are_refused_in_validation():
    assert "latents are not frames" in _problems(call_args={"output_type": "latent"})
    assert "samples_per_prompt" in _problems(pipeline="CogVideoXPipeline", call_args={"num_videos_per_prompt": 2})
    assert "each clip gets its own torch.Generator" in _problems(call_args={"generator": 3})


def test_layout_follows_the_output_type():
    class Out:  # what a pipeline returns: .frames with one video per request
        def __init__(self, frames):
            self.frames = frames

    thwc = np.random.default_rng(0).uniform(0, 1, (1, 3, 4, 5, 3))  # (B, T=3, H, W, C): T looks like channels
    frames, layout, rng = frames_of(Out(thwc), "np")
    assert as_video(frames, value_range=rng, layout=layout).frames.shape == (3, 4, 5, 3)
    tchw = torch.rand(1, 4, 3, 6, 5)  # (B, T, C, H, W) with T = 4
    frames, layout, rng = frames_of(Out(tchw), "pt")
    assert as_video(frames, value_range=rng, layout=layout).frames.shape == (4, 6, 5, 3)
    # a (B, C, T, H, W) tensor where diffusers documents (B, T, C, H, W) is refused, not transposed
    for t in (1, 4):  # (T = 3 reads as C = 3: the documented layout decides, as it must)
        with pytest.raises(VdevalError, match=r"documents \(frames, 3, height, width\)"):
            frames_of(Out(torch.rand(1, 3, t, 6, 5)), "pt")
    with pytest.raises(VdevalError, match=r"documents \(frames, height, width, 3\)"):
        frames_of(Out(np.zeros((1, 2, 2, 2, 16))), "np")  # CogVideoX-like latents
    with pytest.raises(VdevalError, match="2 videos for one request"):
        frames_of(Out(thwc.repeat(2, 0)), "np")
    with pytest.raises(VdevalError, match="values span"):  # latents handed back as if decoded
        as_video(np.full((3, 4, 5, 3), 4.0), value_range=(0, 1), layout="THWC")


# ---- item 3: configuration errors, early and once --------------------------------------------------

def test_call_arguments_are_checked_against_the_pipeline():
    assert "call_args.num_inference_step" in _problems(call_args={"num_inference_step": 2})
    assert "did you mean 'num_inference_steps'" in _problems(call_args={"num_inference_step": 2})
    # AnimateDiff takes **kwargs and would ignore a misspelt argument silently
    assert "call_args.guidance_scal" in _problems(pipeline="AnimateDiffPipeline", call_args={"guidance_scal": 7})
    assert "prompt_argument: null" in _problems(pipeline="StableVideoDiffusionPipeline")
    assert "TextToVideoSDPipeline" in _problems(pipeline="TextToVideoSDPipelin")
    assert _problems(pipeline="StableVideoDiffusionPipeline", prompt_argument=None) == ""


def test_validate_reports_config_errors_with_exit_2(tmp_path, capsys):
    suite = _suite(tmp_path, "/nowhere", call_args={**T2V_ARGS, "output_type": "latent", "num_frame": 3})
    assert cli_exit_code(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "output_type" in err and "num_frame" in err


@pytest.mark.parametrize("kind", ["missing", "float16", "wrong_class", "svd_no_image"])
def test_setup_errors_stop_the_run_before_any_clip(tmp_path, t2v_dir, svd_dir, capsys, monkeypatch, kind):
    from diffusers import DiffusionPipeline

    loads = []
    real = DiffusionPipeline.from_pretrained.__func__
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained",
                        classmethod(lambda cls, *a, **k: loads.append(1) or real(cls, *a, **k)))
    model, pipeline, extra, args, needle = {
        "missing": (tmp_path / "no_such_model", "TextToVideoSDPipeline", "", T2V_ARGS, "does not exist"),
        "float16": (t2v_dir, "TextToVideoSDPipeline", "dtype: float16,", T2V_ARGS, "float16 needs a CUDA device"),
        "wrong_class": (t2v_dir, "CogVideoXPipeline", "", {"num_inference_steps": 2}, "cannot load CogVideoXPipeline"),
        "svd_no_image": (svd_dir, "DiffusionPipeline", "prompt_argument: null,", SVD_ARGS, "carry no images"),
    }[kind]
    suite = _suite(tmp_path, model, pipeline, extra, args)
    assert _run(suite, tmp_path / "run") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert "set allow_download" not in err[0]
    assert len(loads) <= 1
    assert not (tmp_path / "run" / "clips").exists() or not any((tmp_path / "run" / "clips").rglob("*.npy"))


def test_default_class_on_an_svd_folder_checks_the_folders_class(tmp_path, svd_dir, capsys):
    suite = _suite(tmp_path, svd_dir, "DiffusionPipeline", "", SVD_ARGS)  # prompt_argument left at "prompt"
    assert cli_exit_code(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "StableVideoDiffusionPipeline takes no argument 'prompt'" in err and "prompt_argument: null" in err
    assert _run(suite, tmp_path / "run") == 2
    # relative to the suite file (validation cannot see that folder; the run checks it before any clip)
    import shutil

    shutil.copytree(svd_dir, tmp_path / "models" / "svd")
    (tmp_path / "sub").mkdir()
    rel = _suite(tmp_path / "sub", "../models/svd", "DiffusionPipeline", "", SVD_ARGS)
    capsys.readouterr()
    assert _run(rel, tmp_path / "run2") == 2
    assert "StableVideoDiffusionPipeline" in capsys.readouterr().err


def test_hub_id_not_cached_asks_for_allow_download(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    gen = DiffusersGenerator(DiffusersConfig(name="x", kind="diffusers", model="someone/some-model",
                                             pipeline="TextToVideoSDPipeline"))
    with pytest.raises(GeneratorSetupError, match="allow_download: true"):
        gen.prepare("cpu")


# ---- item 4 and 5: image-to-video from the loaded pipeline, fps, packages ------------------------------

def test_svd_under_the_default_class_gets_the_reference_image_and_its_fps(tmp_path, svd_dir):
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    gen = _gen(svd_dir, pipeline="DiffusionPipeline", prompt_argument=None, call_args={**SVD_ARGS, "fps": 5})
    clip = next(gen.generate([ClipRequest("a", "", 1, img)], "cpu"))
    assert clip.error is None and clip.video.frames.shape == (2, 32, 32, 3)
    assert clip.video.fps == 5.0  # the pipeline's own frame-rate argument, not the default 8
    assert clip.meta["pipeline"] == "StableVideoDiffusionPipeline"
    svd = type(gen._pipe)
    assert gen.fps_for(svd) == 5.0
    gen.config.call_args.pop("fps")
    assert gen.fps_for(svd) == 7.0  # SVD's documented default
    from diffusers import LTXPipeline, WanPipeline

    assert gen.fps_for(LTXPipeline) == 25.0  # LTX's frame_rate default, not 8
    gen.config.call_args["frame_rate"] = 24
    assert gen.fps_for(LTXPipeline) == 24.0
    gen.config.call_args.pop("frame_rate")
    assert gen.fps_for(WanPipeline) == 8.0  # no frame-rate argument: the config's default
    assert "disagrees" in _problems(pipeline="LTXPipeline", fps=8.0, call_args={"frame_rate": 25})


def test_results_record_the_fps_the_clips_carry(svd_dir):
    """The generator's record in results.json (its info()) has the clips' fps: SVD's default 7 or
    the given call argument, not the config's default 8."""
    img = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    for call_args, fps in ((SVD_ARGS, 7.0), ({**SVD_ARGS, "fps": 5}, 5.0)):
        gen = _gen(svd_dir, pipeline="DiffusionPipeline", prompt_argument=None, call_args=call_args)
        gen.prepare("cpu")
        assert gen.info()["fps"] == fps
        assert next(gen.generate([ClipRequest("a", "", 1, img)], "cpu")).video.fps == fps


def test_own_conditioning_images_drive_an_svd_run(tmp_path, svd_dir):
    from PIL import Image

    (tmp_path / "img").mkdir()
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(
            tmp_path / "img" / f"clip_{i}.png")
    suite = _suite(tmp_path, svd_dir, "DiffusionPipeline", "prompt_argument: null,", SVD_ARGS)
    suite.write_text(suite.read_text().replace('{source: list, items: ["a red circle", "a blue square"]}',
                                               "{source: images, file: img}"))
    assert _run(suite, tmp_path / "run") == 0
    r = json.loads((tmp_path / "run" / "results.json").read_text())
    assert [c["prompt"] for c in r["clips"]] == ["clip 0", "clip 1"] and not r["failures"]


def test_wan_loads_with_the_diffusers_extra_and_names_it_when_accelerate_is_missing(tmp_path, monkeypatch):
    import importlib.util

    model = tiny_pipelines.wan(tmp_path / "wan")
    args = {"num_inference_steps": 2, "num_frames": 5, "height": 16, "width": 16, "max_sequence_length": 16}
    clip = next(_gen(model, pipeline="WanPipeline", call_args=args).generate([ClipRequest("a", "a cat", 0)], "cpu"))
    assert clip.error is None and clip.video.frames.shape == (5, 16, 16, 3)
    # without accelerate diffusers can only load Wan with low_cpu_mem_usage=False, which it refuses
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "accelerate" else find_spec(n, *a))
    gen = _gen(model, pipeline="WanPipeline", call_args=args, load_args={"low_cpu_mem_usage": False})
    with pytest.raises(GeneratorSetupError, match=r"'accelerate' package: pip install 'vdeval\[diffusers\]'"):
        list(gen.generate([ClipRequest("a", "a cat", 0)], "cpu"))


# ---- issue 15: a suite cannot run code ---------------------------------------------------------------

def _custom_code_folder(tmp_path):
    d = tmp_path / "custom"
    d.mkdir()
    marker = tmp_path / "code_ran"
    (d / "model_index.json").write_text(json.dumps({"_class_name": ["pipeline", "Evil"], "_diffusers_version": "0.30.0"}))
    (d / "pipeline.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                   "from diffusers import DiffusionPipeline\n"
                                   "class Evil(DiffusionPipeline):\n    pass\n")
    return d, marker


def test_custom_code_is_refused_unless_the_command_line_allows_it(tmp_path, capsys):
    folder, marker = _custom_code_folder(tmp_path)
    keys = f"load_args: {{custom_pipeline: {folder / 'pipeline.py'}, trust_remote_code: true}},"
    suite = _suite(tmp_path, folder, "DiffusionPipeline", keys, {})
    assert cli_exit_code(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "custom_pipeline" in err and "--allow-remote-code" in err and "refused" in err
    assert _run(suite, tmp_path / "run") == 2 and not marker.exists()
    assert cli_exit_code(["validate", str(suite), "--allow-remote-code"]) == 0
    # the folder's own model_index.json naming a code file is refused the same way
    plain = _suite(tmp_path, folder, "DiffusionPipeline", "", {}, name="plain.yaml")
    assert _run(plain, tmp_path / "run2") == 2
    assert "custom pipeline" in capsys.readouterr().err and not marker.exists()
    # with the flag the person typed, the code runs (and here fails: Evil is no video pipeline)
    _run(plain, tmp_path / "run3", "--allow-remote-code")
    assert marker.exists()


def test_custom_component_code_is_refused(tmp_path, t2v_dir, capsys):
    import shutil

    folder = tmp_path / "models" / "m"
    shutil.copytree(t2v_dir, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["my_sched", "MySched"]
    (folder / "model_index.json").write_text(json.dumps(index))
    marker = tmp_path / "code_ran"
    (folder / "scheduler" / "my_sched.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                                     "from diffusers import DDIMScheduler\n"
                                                     "class MySched(DDIMScheduler):\n    pass\n")
    # validate (fast) refuses the folder, as the run would at load
    suite = _suite(tmp_path, folder)
    assert cli_exit_code(["validate", str(suite)]) == 2
    err = capsys.readouterr().err
    assert "component scheduler (scheduler/my_sched.py) ships Python code" in err and "--allow-remote-code" in err
    assert cli_exit_code(["validate", str(suite), "--allow-remote-code"]) == 0
    # a folder relative to the suite file: the fast check cannot see it, --deep and the run do
    (tmp_path / "sub").mkdir()
    rel = _suite(tmp_path / "sub", "../models/m")
    assert cli_exit_code(["validate", str(rel)]) == 0
    capsys.readouterr()
    assert cli_exit_code(["validate", str(rel), "--deep"]) == 2
    assert "ships Python code" in capsys.readouterr().err
    assert _run(rel, tmp_path / "run") == 2
    assert "ships Python code" in capsys.readouterr().err and not marker.exists()
    # a transformers component with auto_map (trust_remote_code) is code too
    shutil.rmtree(folder / "scheduler")
    shutil.copytree(t2v_dir / "scheduler", folder / "scheduler")
    index["scheduler"] = json.loads((t2v_dir / "model_index.json").read_text())["scheduler"]
    (folder / "model_index.json").write_text(json.dumps(index))
    config = json.loads((folder / "text_encoder" / "config.json").read_text())
    (folder / "text_encoder" / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "m.M"}}))
    with pytest.raises(GeneratorSetupError, match=r"text_encoder \(text_encoder/config.json auto_map\)"):
        DiffusersGenerator(DiffusersConfig(name="tiny", kind="diffusers", model="../models/m",
                                           pipeline="TextToVideoSDPipeline", call_args=T2V_ARGS),
                           suite_dir=str(tmp_path / "sub")).prepare("cpu")


def test_python_path_allows_remote_code_only_in_the_block(tmp_path):
    folder, _ = _custom_code_folder(tmp_path)
    cfg = dict(name="x", kind="diffusers", model=str(folder), load_args={"trust_remote_code": True})
    with pytest.raises(Exception, match="--allow-remote-code"):
        DiffusersConfig(**cfg)
    with allow_remote_code():
        gen = DiffusersGenerator(DiffusersConfig(**cfg))
    assert gen.remote_code is True
    with pytest.raises(Exception, match="set by vdeval"):
        DiffusersConfig(name="x", kind="diffusers", model="m", load_args={"local_files_only": False})
