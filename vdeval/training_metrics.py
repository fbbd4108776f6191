"""Deprecated alias of vdeval.training.metrics (moved there; this alias goes in the next release)."""
import importlib
import sys
import warnings

warnings.warn("vdeval.training_metrics moved to vdeval.training.metrics; import it from there (this alias goes in the next release)",
              DeprecationWarning, stacklevel=2)
sys.modules[__name__] = importlib.import_module("vdeval.training.metrics")
