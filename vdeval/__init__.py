"""vdeval: evaluation and benchmarking for video diffusion models."""

__version__ = "0.1.0"


def __getattr__(name):
    # imported on first use, so `import vdeval` stays light (the API and the Evaluator import torch)
    if name in ("evaluate", "evaluate_set"):
        from vdeval import api

        return getattr(api, name)
    if name in ("load_results", "Results"):  # a run's results.json, typed (see vdeval/results.py)
        from vdeval import results

        return getattr(results, name)
    if name == "Evaluator":
        from vdeval.training.evaluator import Evaluator

        return Evaluator
    raise AttributeError(f"module 'vdeval' has no attribute {name!r}")
