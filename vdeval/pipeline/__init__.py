"""The stages `vdeval run` goes through, each a short module the Runner (vdeval/runner.py) calls
in order:

  prompts.py      suite -> prompts -> clip requests (what to make: prompt, seed, reference image)
  clips.py        ClipStore: clips made once and kept in the run directory (reused on resume),
                  files referenced by path and content hash, the real set; a clip that fails to
                  generate is recorded, never fatal
  featurizing.py  FeatureStage: the features every metric asks for, once per clip and backbone,
                  in memory-bounded groups (vdeval.featurize does the work)
  scoring.py      per-clip scores; a metric that raises on a clip gives NaN and a note for it
  summary.py      per-generator summary rows (mean and bootstrap interval, or set-level scores)
                  and the run's provenance

The audit (vdeval/audit.py) uses the same featurize and score stages.
"""
from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, enabled: bool):
    """A tqdm bar on stderr (a no-op bar when disabled)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr)


def one_line(e: BaseException) -> str:
    """An exception as one line for results: its type and first line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()
