"""vdeval log: TensorBoard event files read back, W&B in offline mode read back from its run file,
MLflow through a local file store. Each test skips when its tool (an optional extra) is missing;
the W&B and MLflow ones are slow (run with -m slow)."""
from __future__ import annotations

import glob
import json
import struct
from pathlib import Path

import pytest

from helpers import cli_exit_code
from helpers import STEPS, make_results, write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("runs") / "nightly", make_results(STEPS, failed=("ckpt_2k", 4)))


@pytest.fixture(scope="module")
def results(run) -> dict:
    return json.loads((run / "results.json").read_text())


def _row(results, g, m):
    return next(r for r in results["summary"] if r["generator"] == g and r["metric"] == m)


def test_content_has_values_intervals_n_and_steps(run, results):
    from vdeval.log.content import collect

    c = collect([run])
    s = {(x.tag, x.step): x.value for x in c.scalars}
    row = _row(results, "ckpt_2k", "warping_error")
    assert s[("warping_error/ckpt_2k/value", 2000)] == pytest.approx(row["value"])
    assert s[("warping_error/ckpt_2k/ci_low", 2000)] == pytest.approx(row["ci_low"])
    assert s[("warping_error/ckpt_2k/ci_high", 2000)] == pytest.approx(row["ci_high"])
    assert s[("warping_error/ckpt_2k/n", 2000)] == 11
    # metric against step: one series (the run) with a point per checkpoint
    assert [k[1] for k in s if k[0] == "by_step/fvd/nightly/value"] == [1000, 2000, 4000]
    assert not any(k[0].startswith("kvd/") and k[0].endswith("ci_low") for k in s)  # no CI is not invented
    assert len(c.clips) == 35 and {"warping_error", "clip_score"} <= set(c.clips.columns)
    assert set(c.figures) == {"summary", "steps", "curves"} and all(v.startswith(b"\x89PNG") for v in c.figures.values())
    assert c.previews and all(v.startswith(b"GIF8") for v in c.previews.values())


def test_tensorboard_event_files_read_back(run, results, tmp_path):
    pytest.importorskip("tensorboard", reason="the `tensorboard` extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert cli_exit_code(["log", str(run), "--to", "tensorboard", "--dest", str(tmp_path)]) == 0
    acc = EventAccumulator(str(tmp_path / "nightly"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    ev = acc.Scalars("warping_error/ckpt_4k/value")
    assert [(e.step, e.value) for e in ev] == [(4000, pytest.approx(_row(results, "ckpt_4k", "warping_error")["value"]))]
    assert [e.step for e in acc.Scalars("by_step/clip_score/nightly/value")] == [1000, 2000, 4000]
    assert acc.Scalars("fvd/ckpt_1k/ci_high")[0].value == pytest.approx(84.0)
    imgs = [t for t in tags["images"]]
    assert "figures/summary" in imgs and any(t.startswith("previews/") for t in imgs)
    gif = acc.Images(next(t for t in imgs if t.startswith("previews/")))[0].encoded_image_string
    assert gif.startswith(b"GIF8")
    text = acc.Tensors("vdeval/clips/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text.count("\n") == 35 + 1 and "| ckpt_2k | p00-s0 |" in text  # header, rule, 35 clips
    assert "| ckpt_2k | p01-s1 |" not in text  # the failed clip has no scores


def test_tensorboard_logging_twice_to_one_destination_keeps_one_point_per_step(run, results, tmp_path):
    pytest.importorskip("tensorboard", reason="the `tensorboard` extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    for _ in range(2):
        assert cli_exit_code(["log", str(run), "--to", "tensorboard", "--dest", str(tmp_path)]) == 0
    assert len(list((tmp_path / "nightly").glob("events.out.tfevents.*"))) == 2
    acc = EventAccumulator(str(tmp_path / "nightly"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    assert [e.step for e in acc.Scalars("by_step/clip_score/nightly/value")] == [1000, 2000, 4000]
    assert [e.step for e in acc.Scalars("warping_error/ckpt_4k/value")] == [4000]
    # what the TensorBoard server reads (its accumulator purges text and images too)
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator as Server

    srv = Server(str(tmp_path / "nightly"), size_guidance={"tensors": 0})
    srv.Reload()
    assert [e.step for e in srv.Tensors("vdeval/clips/text_summary")] == [4000]
    assert [e.step for e in srv.Tensors("by_step/clip_score/nightly/value")] == [1000, 2000, 4000]


def _wandb_records(path: str):
    """Records of a W&B run file (its LevelDB-style log: 7-byte header, 32 KiB blocks)."""
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, buf = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7: pos + 7 + length], pos + 7 + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            buf = chunk
        elif kind in (3, 4):
            buf += chunk
            if kind == 4:
                yield buf


@pytest.mark.slow  # ~15 s: W&B starts its service process
def test_wandb_offline_run_reads_back(run, results, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the `wandb` extra is not installed")
    from wandb.proto import wandb_internal_pb2

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    from vdeval.log import log_run

    log_run([run], "wandb", dest=tmp_path)
    [run_file] = glob.glob(str(tmp_path / "wandb" / "offline-run-*" / "run-*.wandb"))
    history = []
    for data in _wandb_records(run_file):
        r = wandb_internal_pb2.Record()
        r.ParseFromString(data)
        if r.WhichOneof("record_type") == "history":
            history.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in r.history.item})
    by_step = {h["training_step"]: h for h in history if "training_step" in h}
    assert sorted(by_step) == [1000, 2000, 4000]
    assert by_step[2000]["warping_error/ckpt_2k/value"] == pytest.approx(_row(results, "ckpt_2k", "warping_error")["value"])
    assert by_step[2000]["warping_error/ckpt_2k/n"] == 11
    media = Path(run_file).parent / "files" / "media"
    assert list((media / "table").glob("tables/clips*.table.json")) or list(media.rglob("*clips*.table.json"))
    table = json.loads(next(media.rglob("*clips*.table.json")).read_text())
    assert len(table["data"]) == 35
    assert list(media.rglob("*.gif")) and list(media.rglob("*.png"))


@pytest.mark.slow  # ~15 s: MLflow's import and store set-up
def test_mlflow_file_store_reads_back(run, results, tmp_path):
    pytest.importorskip("mlflow", reason="the `mlflow` extra is not installed")
    import mlflow

    from vdeval.log import log_run

    where = log_run([run], "mlflow", dest=tmp_path / "mlruns", project="nightly-eval")
    client = mlflow.tracking.MlflowClient(tracking_uri=(tmp_path / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("nightly-eval")
    [r] = client.search_runs([exp.experiment_id])
    assert r.info.run_id in where
    hist = client.get_metric_history(r.info.run_id, "by_step/warping_error/nightly/value")
    assert sorted(m.step for m in hist) == [1000, 2000, 4000]
    assert r.data.metrics["warping_error/ckpt_2k/n"] == 11
    assert r.data.params["suite"] == "fixture"
    arts = {a.path for a in client.list_artifacts(r.info.run_id, "figures")}
    assert "figures/summary.png" in arts
    assert client.list_artifacts(r.info.run_id, "previews")


def test_log_bad_target_and_missing_extra(run, capsys, monkeypatch):
    assert cli_exit_code(["log", str(run), "--to", "tensorbord"]) == 2
    assert "did you mean 'tensorboard'" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "mlflow" else real(n, *a))
    assert cli_exit_code(["log", str(run), "--to", "mlflow"]) == 2
    assert "pip install 'vdeval[mlflow]'" in capsys.readouterr().err


def test_run_refuses_an_unknown_log_target_before_running(tmp_path, capsys):
    root = Path(__file__).resolve().parents[2]
    assert cli_exit_code(["run", str(root / "suites" / "smoke.yaml"), "--out", str(tmp_path / "r"),
                          "--log", "tensorbord"]) == 2
    assert "--log must be one of tensorboard, wandb, mlflow" in capsys.readouterr().err
    assert not (tmp_path / "r" / "results.json").exists()
