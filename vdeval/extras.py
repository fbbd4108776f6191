"""Optional libraries that only one backbone needs (open_clip, timm): import one when that part is
used, or stop with one line naming the pip extra that installs it.

The default install runs every embedded backbone and the smoke suite without them (and without
the `diffusers` extra's transformers and accelerate; diffusers itself is a dependency, as the
reference models sample with its schedulers).
"""
from __future__ import annotations

import importlib

from vdeval.errors import MissingExtraError

# import name -> (extra, pip distribution): what `pip install 'vdeval[extra]'` brings
EXTRAS = {
    "open_clip": ("clip", "open-clip-torch"),
    "timm": ("dino", "timm"),
    "huggingface_hub": ("dino", "huggingface-hub"),
    "dlib": ("face", "dlib-bin"),
}


def install_hint(module: str) -> str:
    extra, _ = EXTRAS[module]
    return f"pip install 'vdeval[{extra}]'"


def require(module: str, user: str):
    """The imported `module`; MissingExtraError naming `user` (e.g. "backbone 'clip'") and the extra
    when it is missing or fails to import."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        missing = getattr(e, "name", None)
        why = "" if missing in (module, None) or not missing else f" (importing it failed: {e})"
        raise MissingExtraError(f"{user} needs {module}, which is not installed{why}", install_hint(module)) from None
