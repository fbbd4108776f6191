"""`vdeval.Evaluator`: evaluate a model every N training steps on fixed prompts and seeds.

It wraps the user's sampling function as a `callable` generator, builds a Suite in code and runs
it with the same Runner as `vdeval run` (same featurize / score / summarise path, same results
format). Each evaluation writes OUT/step_<step>/results.json with the step recorded, so
`vdeval report OUT/step_*` (or `Evaluator.report()`) draws metric against step with intervals.

    ev = vdeval.Evaluator(sample, prompts=["a red circle moves right", ...], samples_per_prompt=2,
                          metrics=["frame_difference", {"name": "warping_error", "backbone": "dis"}],
                          every=500, out="runs/train-eval")
    for step in range(steps):
        ...train...
        ev.maybe(step)            # evaluates when step % every == 0

`sample(prompts, seeds)` returns one video per (prompt, seed): see vdeval.generators.callable.
Seeds are fixed across steps: sample j of prompt i gets seed + i * samples_per_prompt + j.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vdeval.errors import SuiteError, VdevalError
from vdeval.generators import callable as callable_gen

DEFAULT_METRICS = ("frame_difference", {"name": "warping_error", "backbone": "dis"},
                   {"name": "frozen_motion", "backbone": "dis"})
_ids = itertools.count()


class Evaluator:
    def __init__(self, generate: Callable, prompts: Sequence[str], *, samples_per_prompt: int = 1, seed: int = 0,
                 metrics: Sequence = DEFAULT_METRICS, every: int = 1000, out: str | Path = "runs/eval",
                 name: str = "model", fps: float = 8.0, device: str = "cpu", real: dict | None = None,
                 world: dict | None = None, batch_size: int = 8, log_to: Sequence[str] = ()):
        if every < 1:
            raise VdevalError(f"every must be a positive number of steps, got {every}")
        self.key = callable_gen.register(f"evaluator-{next(_ids)}", generate)
        self.every, self.out, self.name, self.device = int(every), Path(out), name, device
        self.log_to = list(log_to)
        data: dict[str, Any] = {  # a suite mapping, as a suite file would give
            "name": f"{name}-eval", "prompts": {"source": "list", "items": list(prompts)},
            "samples_per_prompt": samples_per_prompt, "seed": seed,
            "generators": [{"name": name, "kind": "callable", "target": self.key, "fps": fps}],
            "metrics": [m if isinstance(m, dict) else {"name": m} for m in metrics],
            "output": {"report": False, "batch_size": batch_size},
        }
        if real is not None:
            data["real"] = real
        if world is not None:
            data["world"] = world
        self._data = data
        self.suite(0)  # validate now: a typo fails at construction, not at step 10 000
        self.runs: dict[int, Path] = {}

    def suite(self, step: int):
        from vdeval.suite import validate_data

        data = {**self._data, "generators": [{**self._data["generators"][0], "step": int(step)}]}
        suite, problems = validate_data(data, "Evaluator")
        if problems:
            err = SuiteError("Evaluator: " + "; ".join(problems))
            err.problems = problems
            raise err
        return suite

    def due(self, step: int) -> bool:
        return int(step) % self.every == 0

    def maybe(self, step: int) -> Path | None:
        """Evaluate if `step` is a multiple of `every`; returns the run directory or None."""
        return self(step) if self.due(step) else None

    def __call__(self, step: int) -> Path:
        """Evaluate now, whatever the step; returns OUT/step_<step> (results.json inside)."""
        from vdeval.run.runner import Runner

        run_dir = self.out / f"step_{int(step):08d}"
        outcome = Runner(self.suite(step), out=run_dir, device=self.device, progress=False,
                         log=lambda *a, **k: None).execute()
        self.runs[int(step)] = outcome.run_dir
        if self.log_to:
            from vdeval.log import log_run

            for target in self.log_to:  # one log dir / project for every step, so values line up by step
                dest = self.out / "logs" / target if target != "mlflow" else self.out / "logs" / "mlruns"
                log_run(outcome.run_dir, target, dest=dest, name=self.name, step=int(step))
        return outcome.run_dir

    def run_dirs(self) -> list[Path]:
        """Every step's run directory under OUT, including those of earlier processes, by step."""
        return sorted(p for p in self.out.glob("step_*") if (p / "results.json").exists())

    def report(self, out: str | Path | None = None) -> Path:
        """The report over every step so far (metric against step); returns its index.html."""
        from vdeval.report import write_report

        dirs = self.run_dirs()
        if not dirs:
            raise VdevalError(f"no evaluation under {self.out} yet", "call the Evaluator at least once")
        return write_report(dirs, Path(out) if out is not None else self.out / "report")

    def close(self) -> None:
        callable_gen.unregister(self.key)
