"""Deprecated alias of vdeval.training.callbacks (moved there; this alias goes in the next release)."""
import importlib
import sys
import warnings

warnings.warn("vdeval.callbacks moved to vdeval.training.callbacks; import it from there (this alias goes in the next release)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("vdeval.training.callbacks")
