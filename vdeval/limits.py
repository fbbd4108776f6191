"""Value rules shared by suite files, generator configs and the Python API (vdeval.evaluate), so a
batch size, frame rate, memory budget, seed or device is judged the same wherever it comes from.

Each is a pydantic type: the suite's models use them as fields, vdeval.api validates its keyword
arguments with them. True and False are refused where a number is meant (pydantic would read
them as 1 and 0: `seed: true` ran as seed 1).
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

MAX_SEED = 2**32 - 1  # seeds plus clip offsets stay inside every RNG's range (numpy, torch)
MAX_FPS = 1000.0  # frames per second: above any camera or model; 1e300 would overflow frame times
MAX_BATCH = 4096
MAX_MEMORY_GB = 1024.0
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")


def _no_bool(v):
    if isinstance(v, bool):
        raise ValueError(f"must be a number, not {str(v).lower()}")
    return v


def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


Seed = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=MAX_SEED)]
Count = Annotated[int, BeforeValidator(_no_bool)]  # bounds are given per field
BatchSize = Annotated[int, BeforeValidator(_no_bool), Field(ge=1, le=MAX_BATCH)]
MemoryGB = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_finite), Field(gt=0, le=MAX_MEMORY_GB)]
Fps = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_finite), Field(gt=0, le=MAX_FPS)]
FiniteFloat = Annotated[float, BeforeValidator(_no_bool), AfterValidator(_finite)]


def device_problem(device) -> str | None:
    """Why `device` cannot name a device (auto, cpu, mps, cuda or cuda:N), or None."""
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        return "must be auto, cpu, mps, cuda or cuda:N"
    return None
