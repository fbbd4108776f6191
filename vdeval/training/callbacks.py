"""Thin training-loop hooks around vdeval.Evaluator: one for Lightning, one for a plain loop or
Hugging Face accelerate. Both evaluate on the main process only, with the model in eval mode
and gradients off, and put the model back as it was."""
from __future__ import annotations

import contextlib
from pathlib import Path


@contextlib.contextmanager
def _eval_mode(model):
    """Model in eval mode, no gradients; training mode restored afterwards."""
    import torch

    was_training = bool(getattr(model, "training", False))
    if model is not None and hasattr(model, "eval"):
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if model is not None and was_training:
            model.train()


def evaluate_step(evaluator, step: int, model=None, is_main: bool = True) -> Path | None:
    """Evaluate at `step` when it is due and this is the main process; the shared core of the hooks."""
    if not is_main or not evaluator.due(step):
        return None
    with _eval_mode(model):
        return evaluator(step)


class LoopHook:
    """For a plain loop or accelerate: call `hook(step)` after each optimiser step.

        hook = LoopHook(evaluator, model, accelerator=accelerator)   # accelerator optional
        for step, batch in enumerate(loader, 1): ...; hook(step)
    With an accelerator, only the main process evaluates and the others wait for it."""

    def __init__(self, evaluator, model=None, accelerator=None):
        self.evaluator, self.model, self.accelerator = evaluator, model, accelerator

    def __call__(self, step: int) -> Path | None:
        acc = self.accelerator
        is_main = True if acc is None else bool(acc.is_main_process)
        model = self.model if acc is None else acc.unwrap_model(self.model) if self.model is not None else None
        out = evaluate_step(self.evaluator, step, model, is_main)
        if acc is not None and self.evaluator.due(step):
            acc.wait_for_everyone()
        return out


def summary_metrics(run_dir: Path, prefix: str = "vdeval") -> dict[str, float]:
    """A run's summary values as flat names for a trainer's loggers: `vdeval/<metric>` (and
    `/<generator>` after it when the run has several), plus `_ci_low` / `_ci_high` where known."""
    import math

    from vdeval.results import load_results

    res = load_results(run_dir)
    several = len({r.generator for r in res.summary}) > 1
    out = {}
    for r in res.summary:
        key = f"{prefix}/{r.metric}" + (f"/{r.generator}" if several else "")
        for suffix, v in (("", r.value), ("_ci_low", r.ci_low), ("_ci_high", r.ci_high)):
            if isinstance(v, (int, float)) and math.isfinite(v):
                out[key + suffix] = float(v)
    return out


def lightning_callback(evaluator):
    """A lightning.pytorch.Callback that evaluates every `evaluator.every` optimiser steps
    (trainer.global_step) and reports the values the way Lightning's own callbacks do: to every
    logger of the trainer (`logger.log_metrics(..., step=trainer.global_step)`, so the user's
    TensorBoard / W&B / CSV run gets them on the trainer's step axis) and through
    `pl_module.log` into `trainer.callback_metrics` (so `ModelCheckpoint(monitor="vdeval/<metric>")`
    and EarlyStopping see them). Under gradient accumulation it evaluates once per optimiser
    step, after the step, never on the untrained model at step 0. Needs lightning."""
    try:
        from lightning.pytorch import Callback
    except ImportError:
        try:
            from pytorch_lightning import Callback
        except ImportError:
            from vdeval.errors import VdevalError

            raise VdevalError("the Lightning callback needs lightning", "pip install lightning") from None

    class VdevalCallback(Callback):
        def __init__(self):
            self.evaluator = evaluator
            self.done: list[int] = []
            self._last_step: int | None = None

        def on_train_start(self, trainer, pl_module):
            self._last_step = int(trainer.global_step)  # a resumed run starts past 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = int(trainer.global_step)
            stepped = self._last_step is None or step != self._last_step
            self._last_step = step
            # global_step moves only when the optimiser steps: a batch that only accumulated
            # gradients leaves it where it was, and the model is not yet the step's model
            if not stepped or step in self.done:
                return
            run_dir = evaluate_step(self.evaluator, step, pl_module, trainer.is_global_zero)
            if run_dir is None:
                return
            self.done.append(step)
            values = summary_metrics(run_dir)
            for logger in trainer.loggers:
                logger.log_metrics(values, step=step)
            for k, v in values.items():  # into callback_metrics, for ModelCheckpoint / EarlyStopping
                pl_module.log(k, v, on_step=True, on_epoch=False, logger=False, rank_zero_only=True)

    return VdevalCallback()
