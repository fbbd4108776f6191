"""vdeval.Evaluator in a training loop: a tiny torch model whose flicker amplitude training halves;
frame_difference (mean |Δ| per pixel, 0-255) of its clips is that amplitude, rounded, times 15/16
(one row of 16 is a black seed stripe that never changes), exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import vdeval
from vdeval.errors import SuiteError, VdevalError

PROMPTS = ["a grey wall", "a flickering lamp"]


class Flicker(torch.nn.Module):
    """Frames alternate between grey 100 and 100 + amp; the loss amp^2 (SGD lr 0.25) halves amp."""

    def __init__(self, amp: float = 40.0):
        super().__init__()
        self.amp = torch.nn.Parameter(torch.tensor(amp))
        self.calls: list[tuple[list, list, bool, bool]] = []

    def sample(self, prompts, seeds):
        self.calls.append((list(prompts), list(seeds), self.training, torch.is_grad_enabled()))
        a = int(np.rint(float(self.amp.detach())))
        out = []
        for s in seeds:
            v = np.full((6, 16, 16, 3), 100, np.uint8)
            v[1::2] += np.uint8(a)
            v[:, s % 16, :, :] = 0  # the seed shows, so clips differ by seed
            out.append(v)
        return out


def _train(model, steps, hook):
    opt = torch.optim.SGD(model.parameters(), lr=0.25)
    for step in range(steps + 1):
        hook(step)
        opt.zero_grad()
        (model.amp ** 2).backward()
        opt.step()


def test_evaluator_writes_a_results_file_per_step_that_the_report_reads(tmp_path):
    from vdeval.training.callbacks import LoopHook
    from vdeval.report.compare import step_series
    from vdeval.report.tables import load_runs

    model = Flicker()
    ev = vdeval.Evaluator(model.sample, PROMPTS, samples_per_prompt=2, seed=7, metrics=["frame_difference"],
                          every=2, out=tmp_path / "eval")
    _train(model, 4, LoopHook(ev, model))
    assert sorted(ev.runs) == [0, 2, 4] and [p.name for p in ev.run_dirs()] == ["step_00000000", "step_00000002",
                                                                              "step_00000004"]
    # fixed prompts and seeds at every step; sampled in eval mode without gradients, training mode restored
    assert all(c[:2] == (PROMPTS[:1] * 2 + PROMPTS[1:] * 2, [7, 8, 9, 10]) for c in model.calls)
    assert all(not training and not grad for _, _, training, grad in model.calls) and model.training
    expected = {0: 40, 2: 10, 4: 2}  # 40 * 0.5^step, rounded to whole grey levels (2.5 -> 2)
    F = 15 / 16
    for step, d in ev.runs.items():
        res = json.loads((d / "results.json").read_text())
        assert res["generators"]["model"]["step"] == step and "target" not in res["generators"]["model"]
        [row] = [r for r in res["summary"] if r["metric"] == "frame_difference"]
        assert row["value"] == pytest.approx(expected[step] * F) and row["n"] == 4
    # the report's metric-vs-step reads the per-step files as one training run
    series = step_series(load_runs(ev.run_dirs()))["frame_difference"]
    assert series["line"].unique().tolist() == ["model"] and series["step"].tolist() == [0, 2, 4]
    assert series["value"].tolist() == pytest.approx([40 * F, 10 * F, 2 * F])
    index = ev.report()
    assert "metrics vs step" in index.read_text()
    ev.close()


def test_evaluator_checks_its_suite_at_construction(tmp_path):
    with pytest.raises(SuiteError, match="warp_error"):
        vdeval.Evaluator(lambda p, s: [], PROMPTS, metrics=["warp_error"], out=tmp_path)
    with pytest.raises(VdevalError, match="every must be a positive"):
        vdeval.Evaluator(lambda p, s: [], PROMPTS, every=0, out=tmp_path)


def test_a_failing_sample_function_fails_its_clips_not_the_training_run(tmp_path):
    def bad(prompts, seeds):
        return [np.zeros((4, 8, 8, 3), np.uint8) if s % 2 else np.zeros((4, 8, 8), bool) for s in seeds]

    ev = vdeval.Evaluator(bad, PROMPTS, samples_per_prompt=2, metrics=["frame_difference"], out=tmp_path)
    res = json.loads((ev(0) / "results.json").read_text())
    errors = [c["error"] for c in res["clips"]]
    assert sum(e is None for e in errors) == 2 and all("unsupported dtype bool" in e for e in errors if e)


class FakeAccelerator:
    def __init__(self, main: bool):
        self.is_main_process, self.waits = main, 0

    def unwrap_model(self, m):
        return m

    def wait_for_everyone(self):
        self.waits += 1


def test_loop_hook_with_accelerate_evaluates_on_the_main_process_only(tmp_path):
    from vdeval.training.callbacks import LoopHook

    for main in (True, False):
        model = Flicker()
        ev = vdeval.Evaluator(model.sample, PROMPTS[:1], metrics=["frame_difference"], every=3,
                              out=tmp_path / str(main))
        acc = FakeAccelerator(main)
        _train(model, 6, LoopHook(ev, model, accelerator=acc))
        assert sorted(ev.runs) == ([0, 3, 6] if main else []) and acc.waits == 3  # everyone waits at 0, 3, 6


def _lightning_module(pl):
    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = Flicker()

        def training_step(self, batch, batch_idx):
            return self.net.amp ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.25)

    return Module()


def _recording_logger(pl):
    from lightning.pytorch.loggers import Logger

    class Recorder(Logger):
        """The trainer's logger, as a user's TensorBoard / W&B logger receives calls."""

        def __init__(self):
            super().__init__()
            self.points: list[tuple[int, dict]] = []

        name, version = "recorder", 0

        def log_metrics(self, metrics, step=None):
            self.points.append((step, dict(metrics)))

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    return Recorder()


def test_lightning_callback_logs_through_the_trainer_at_its_global_step(tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="lightning is not installed")
    from lightning.pytorch.callbacks import ModelCheckpoint

    from vdeval.training.callbacks import lightning_callback

    module = _lightning_module(pl)
    ev = vdeval.Evaluator(module.net.sample, PROMPTS[:1], metrics=["frame_difference"], every=2,
                          out=tmp_path / "eval")
    logger = _recording_logger(pl)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="vdeval/frame_difference", mode="min",
                           every_n_train_steps=2, save_top_k=1)
    loader = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=1)
    trainer = pl.Trainer(max_steps=4, accelerator="cpu", logger=logger, callbacks=[lightning_callback(ev), ckpt],
                         enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(module, loader)
    # global_step after each optimiser step: 1, 2, 3, 4 -> evaluations at 2 and 4, amp 40 * 0.5^step
    assert sorted(ev.runs) == [2, 4]
    F = 15 / 16
    vals = [json.loads((ev.runs[s] / "results.json").read_text())["summary"][0]["value"] for s in (2, 4)]
    assert vals == pytest.approx([10 * F, 2 * F])
    # the trainer's own logger got the values at the trainer's steps (what TensorBoard / W&B plot)
    ours = [(step, m["vdeval/frame_difference"]) for step, m in logger.points if "vdeval/frame_difference" in m]
    assert ours == [(2, pytest.approx(10 * F)), (4, pytest.approx(2 * F))]
    # ModelCheckpoint(monitor=...) saw them: the best checkpoint is step 4's, with its score
    assert float(ckpt.best_model_score) == pytest.approx(2 * F) and "step=4" in ckpt.best_model_path
    assert module.training


def test_lightning_callback_under_gradient_accumulation_skips_the_untrained_model(tmp_path):
    pl = pytest.importorskip("lightning.pytorch", reason="lightning is not installed")
    from vdeval.training.callbacks import lightning_callback

    module = _lightning_module(pl)
    ev = vdeval.Evaluator(module.net.sample, PROMPTS[:1], metrics=["frame_difference"], every=1,
                          out=tmp_path / "eval")
    logger = _recording_logger(pl)
    loader = torch.utils.data.DataLoader(torch.zeros(4, 1), batch_size=1)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=logger, accumulate_grad_batches=2,
                         enable_checkpointing=False, callbacks=[lightning_callback(ev)],
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    # 4 batches, 2 optimiser steps: evaluated after each step (1, 2), never at 0 before any step.
    # Lightning scales each batch's loss by 1/2, so a step's gradient is 2 * amp (as without
    # accumulation) and amp halves per optimiser step: 20 after step 1, 10 after step 2
    assert sorted(ev.runs) == [1, 2]
    assert [s for s, m in logger.points if "vdeval/frame_difference" in m] == [1, 2]
    assert [m["vdeval/frame_difference"] for _, m in logger.points if "vdeval/frame_difference" in m] == \
        pytest.approx([20 * 15 / 16, 10 * 15 / 16])


def test_evaluator_logs_each_step_to_one_tensorboard_run(tmp_path):
    pytest.importorskip("tensorboard", reason="the `tensorboard` extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = Flicker()
    ev = vdeval.Evaluator(model.sample, PROMPTS[:1], metrics=["frame_difference"], every=2, out=tmp_path,
                          log_to=["tensorboard"])
    _train(model, 2, ev.maybe)
    acc = EventAccumulator(str(tmp_path / "logs" / "tensorboard" / "model"), size_guidance={"scalars": 0})
    acc.Reload()
    points = [(e.step, e.value) for e in acc.Scalars("frame_difference/model/value")]
    assert points == [(0, pytest.approx(40 * 15 / 16)), (2, pytest.approx(10 * 15 / 16))]
