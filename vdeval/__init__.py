"""vdeval: evaluation and benchmarking for video diffusion models."""

__version__ = "0.1.0"


def __getattr__(name):
    # the Python API imports torch: load it on first use, so `import vdeval` stays light
    if name in ("evaluate", "evaluate_set"):
        from vdeval import api

        return getattr(api, name)
    raise AttributeError(f"module 'vdeval' has no attribute {name!r}")
