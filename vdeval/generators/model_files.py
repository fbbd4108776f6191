"""Identify the files of a model folder, so clips made with other weights are never reused.

A cheap index (relative path, size, modification time of every file) is computed on each
run; the content hash (sha256 over every file's bytes) is computed only when that index is
new, and remembered in $VDEVAL_CACHE_DIR/model_fingerprints.json (default ~/.cache/vdeval).
The content hash is what identifies the weights: copying or touching a folder keeps it, a
new checkpoint written over the old one changes it.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from vdeval.store import atomic_write_text

ENV = "VDEVAL_CACHE_DIR"
_SKIP_DIRS = {".git", ".cache", "__pycache__"}
_MAX_REMEMBERED = 256


def cache_file() -> Path:
    root = Path(os.environ.get(ENV) or Path.home() / ".cache" / "vdeval").expanduser()
    return root / "model_fingerprints.json"


def _files(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        out += [Path(dirpath) / f for f in sorted(filenames)]
    return out


def index(folder: Path) -> tuple[str, list[tuple[str, int]]]:
    """(hash of paths, sizes and mtimes, [(relative path, size)]) of every file in `folder`."""
    h = hashlib.sha256()
    rows = []
    for p in _files(folder):
        st = p.stat()  # follows links: hub snapshots link to blobs
        rel = p.relative_to(folder).as_posix()
        rows.append((rel, st.st_size))
        h.update(json.dumps([rel, st.st_size, st.st_mtime_ns]).encode())
    return h.hexdigest(), rows


def content_hash(folder: Path, rows: list[tuple[str, int]]) -> str:
    h = hashlib.sha256()
    for rel, size in rows:
        h.update(json.dumps([rel, size]).encode())
        with open(folder / rel, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _remembered() -> dict:
    try:
        data = json.loads(cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(key: str, value: str) -> None:
    data = _remembered()
    data.pop(key, None)
    data[key] = value
    try:
        atomic_write_text(cache_file(), json.dumps(dict(list(data.items())[-_MAX_REMEMBERED:]), indent=1))
    except OSError:  # a read-only home only costs a re-hash next run
        pass


def fingerprint(folder: str | os.PathLike) -> dict:
    """{"sha256": content hash, "files": count, "bytes": total size} of a model folder."""
    folder = Path(folder).resolve()
    cheap, rows = index(folder)
    key = f"{folder}:{cheap}"
    sha = _remembered().get(key)
    if sha is None:
        sha = content_hash(folder, rows)
        _remember(key, sha)
    return {"sha256": sha, "files": len(rows), "bytes": sum(s for _, s in rows)}
