"""vdeval: evaluation and benchmarking for video diffusion models."""

__version__ = "0.1.0"


def __getattr__(name):
    # imported on first use: `import vdeval` stays light (no torch) for the CLI
    if name == "Evaluator":
        from vdeval.evaluator import Evaluator

        return Evaluator
    raise AttributeError(f"module 'vdeval' has no attribute {name!r}")
