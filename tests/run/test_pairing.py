"""Clips of different generators are paired by content (prompt text and sample), never by position:
a generator with arbitrary file names and a sidecar and one named VBench-style put the same
prompt under the same clip id, whatever order their files sort in; `validate --deep` names the
first file whose prompt the suite does not ask for."""
from __future__ import annotations

import json
import shutil

import numpy as np
import yaml
from helpers import cli_exit_code

from vdeval.run.runner import Runner
from vdeval.suite import load_suite

COLOURS = {"a man talks in a car": (200, 30, 30), "a rabbit walks": (30, 200, 30), "zebra at dusk": (30, 30, 200)}


def _clip(path, rgb, frames=6):
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=8)
        st.width, st.height, st.pix_fmt = 32, 32, "yuv444p"
        st.options = {"qp": "0"}
        for t in range(frames):
            f = np.full((32, 32, 3), rgb, np.uint8)
            f[t:t + 4, t:t + 4] = 255
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def _folders(tmp_path):
    """`side/`: arbitrary names, a sidecar listing them in another order; `vb/`: {prompt}-{i}.mp4;
    both hold byte-identical files per prompt, so paired clips share a content hash."""
    made = tmp_path / "made"
    made.mkdir()
    side, vb = tmp_path / "side", tmp_path / "vb"
    side.mkdir()
    vb.mkdir()
    rows = []
    for k, (prompt, rgb) in enumerate(COLOURS.items()):
        src = made / f"{k}.mp4"
        _clip(src, rgb)
        shutil.copy(src, side / f"take_{9 - k:02d}.mp4")  # sorts in the opposite order
        shutil.copy(src, vb / f"{prompt}-0.mp4")
        rows.append(f"take_{9 - k:02d}.mp4,{prompt}")
    (tmp_path / "side.csv").write_text("file,prompt\n" + "\n".join(rows[1:] + rows[:1]) + "\n")
    return side, vb


def _suite(tmp_path, prompts, vb_match="order"):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "pairing", "prompts": {"source": "list", "items": prompts},
        "generators": [{"name": "side", "kind": "folder", "path": "side", "match": "sidecar", "sidecar": "side.csv"},
                       {"name": "vb", "kind": "folder", "path": "vb", "match": vb_match}],
        "metrics": [{"name": "frame_difference"}], "output": {"dir": "run", "report": False}}))
    return path


def test_sidecar_and_vbench_named_generators_pair_by_prompt(tmp_path):
    _folders(tmp_path)
    prompts = ["zebra at dusk", "a man talks in a car", "a rabbit walks"]  # a third order
    Runner(load_suite(_suite(tmp_path, prompts)), out=tmp_path / "run", progress=False).execute()
    clips = json.loads((tmp_path / "run" / "results.json").read_text())["clips"]
    by = {(c["generator"], c["clip_id"]): c for c in clips}
    for i, prompt in enumerate(prompts):
        a, b = by[("side", f"p{i:03d}_s0")], by[("vb", f"p{i:03d}_s0")]
        assert a["error"] is None and b["error"] is None
        assert a["prompt"] == b["prompt"] == prompt
        assert a["clip_hash"] == b["clip_hash"]  # the same file content under the same clip id


def test_validate_names_the_first_file_whose_prompt_the_suite_lacks(tmp_path, capsys):
    side, vb = _folders(tmp_path)
    (vb / "a rabbit walks-0.mp4").rename(vb / "a rabbit runs-0.mp4")
    path = _suite(tmp_path, list(COLOURS))
    code = cli_exit_code(["validate", str(path), "--deep"])
    lines = [ln.strip() for ln in capsys.readouterr().err.splitlines()]
    assert code == 2
    text = "\n".join(lines)
    assert "generators[1] (vb): 1 file(s) whose file name prompt is not among the suite's prompts, first " \
           "'a rabbit runs-0.mp4' ('a rabbit runs'" in text
    assert "generators[1] (vb): no file for 1 clip(s), first p001_s0 (prompt 'a rabbit walks', sample 0)" in text
    assert "generators[0]" not in text  # the sidecar generator pairs cleanly


def test_validate_passes_when_every_generator_pairs_by_content(tmp_path, capsys):
    _folders(tmp_path)
    assert cli_exit_code(["validate", str(_suite(tmp_path, list(COLOURS))), "--deep"]) == 0


def test_a_prompt_listed_twice_takes_successive_samples(tmp_path):
    from vdeval.generators.base import ClipRequest
    from vdeval.generators.folder import FolderConfig, FolderGenerator

    vb = tmp_path / "vb"
    vb.mkdir()
    for i in (0, 1, 10):
        (vb / f"a cat-{i}.mp4").write_bytes(b"x")
    gen = FolderGenerator(FolderConfig(name="vb", kind="folder", path=str(vb), match="order"))
    reqs = [ClipRequest(f"p{k:03d}_s0", "a cat", k, None, {"occurrence": k}) for k in range(3)]
    assert [gen._file_for(r, 0)[0].name for r in reqs] == ["a cat-0.mp4", "a cat-1.mp4", "a cat-10.mp4"]
