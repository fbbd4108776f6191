"""Exports: a run's results in other tools' formats (read from results files, never live objects)."""
