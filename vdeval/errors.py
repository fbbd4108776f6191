"""The error types users see. The CLI maps every VdevalError to one line and exit code 2."""
from __future__ import annotations

import difflib


class VdevalError(Exception):
    """A problem the user can fix. str(err) is one line: what is wrong, and what to do."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} ({hint})")


class SuiteError(VdevalError):
    """A suite file that cannot be read or does not validate."""

    problems: list[str]  # set where validation found several: each with its key path


class VideoReadError(VdevalError):
    """A video file that cannot be decoded into frames."""


class WeightsError(VdevalError):
    """Missing, corrupt or mismatched model weights."""


class CheckpointError(WeightsError):
    """A reference-model checkpoint that is missing, corrupt or of another architecture."""


class FeatureError(VdevalError):
    """Features that a metric cannot use (NaN, wrong shape, too few clips)."""


class ResultsError(VdevalError):
    """Results files that cannot be read or compared."""


class UnknownNameError(VdevalError):
    """A registry lookup for a name that does not exist; carries the closest valid name."""


class WriteError(VdevalError, OSError):
    """A file that cannot be written (read-only folder, full disk). Also an OSError, so code that
    tolerates a failed optional write (a cache, a sidecar) keeps catching it."""


def closest(name: str, options) -> str | None:
    """The valid name most like `name` (for "did you mean ...?"), or None when none is close."""
    match = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.5)
    return match[0] if match else None


class MissingExtraError(VdevalError):
    """An optional library that one backbone or generator needs is not installed; the hint is the
    pip command of the extra that installs it."""
