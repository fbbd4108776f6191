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


def lightning_callback(evaluator):
    """A lightning.pytorch.Callback that evaluates every `evaluator.every` global steps (needs lightning)."""
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

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = int(trainer.global_step)
            if step in self.done:  # global_step repeats under gradient accumulation
                return
            if evaluate_step(self.evaluator, step, pl_module, trainer.is_global_zero) is not None:
                self.done.append(step)

    return VdevalCallback()
