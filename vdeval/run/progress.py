"""What every stage shares: a progress bar on stderr, and an exception as one line for results."""
from __future__ import annotations

import sys


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "it"):
    """A tqdm bar (tqdm.auto: a widget in a notebook, text on stderr on a terminal) with its count,
    rate and time left; a no-op bar when disabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, file=sys.stderr, unit=unit,
                dynamic_ncols=True)


def one_line(e: BaseException) -> str:
    """An exception as one line for results: its type and first line."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".strip()
