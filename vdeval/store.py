"""The run directory, atomic writes, hashes and the run lock.

Run directory layout:
  clips/<generator>/<clip_id>.npy    exact uint8 frames (T, H, W, 3), written once, reused on resume
  clips/<generator>/<clip_id>.json   the request that made it (prompt, seed, hash, error)
  features/<backbone-hash[:16]>/<kind>/<input-hash>.safetensors   cached features (no pickle), each
                                     with <input-hash>.json: its sha256 and array shapes, checked on read
  results.json                       everything, self-describing (vdeval/results.py)
  clips.csv                          one row per clip, one column per metric
  clips.parquet                      the same table, typed, when pyarrow is installed (extra `parquet`)
  report/                            written by `vdeval report` at the end of a run
  .vdeval-run.lock                   while a run writes: who holds the folder (pid, host, start, command)

results.json's fields, their types and its version live in vdeval/results.py (the typed model
every reader loads through results.load_results); this module writes the bytes.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vdeval.errors import VdevalError, WriteError

_UMASK = os.umask(0o022)
os.umask(_UMASK)
RESULTS_FILE = "results.json"
CLIPS_FILE = "clips.csv"
CLIPS_PARQUET = "clips.parquet"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> Path:
    """Write to a temp file in the same folder, then rename: readers never see half a file.
    `durable` also fsyncs before the rename so the file survives a power cut; caches that are
    recomputed when unreadable skip it (it is most of their write cost)."""
    p = Path(path)
    try:
        _write_replace(p, data, durable)
    except WriteError:
        raise
    except OSError as e:  # a full disk, a read-only folder, a file where a folder should be: one line
        raise WriteError(f"cannot write {p}: {e.strerror or e}",
                         "check the folder exists, is writable and has space") from None
    return p


def _write_replace(p: Path, data: bytes, durable: bool) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are for everyone who may read the folder
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> Path:
    """UTF-8; a lone surrogate (a file name whose bytes are not UTF-8, as Python decodes it) is
    written as its escape (\\udce9), so one odd name never stops a results file being written."""
    return atomic_write_bytes(path, text.encode("utf-8", "backslashreplace"))


def _json_safe(obj):
    """NaN and infinities become null: results.json stays strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return _json_safe(obj.item())
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    return obj


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(_json_safe(obj), indent=1, sort_keys=True, allow_nan=False) + "\n")


def save_array(path, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def load_array(path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def make_dir(path: Path, what: str = "output directory") -> None:
    """mkdir -p that fails with one line (permission, a file in the way) instead of an OSError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise VdevalError(f"{what} {path} is a file", "choose another --out") from None
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise VdevalError(f"cannot create {what} {path}: {why}", "choose a folder you can write to with --out") from None


def _component(name: str) -> str:
    """`name` if it is one path component that stays inside its folder; suites validate names,
    this guards every other caller (the Python API, a hand-made results file)."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise VdevalError(f"{name!r} cannot name a folder or file in a run directory",
                          "use letters, digits, '_', '.', '+' or '-'")
    return name


class RunDir:
    """Paths inside one run directory; creating it refuses a path that is a file."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise VdevalError(f"output directory {self.root} is a file", "choose another --out")
        if create:
            make_dir(self.root)

    def clip_path(self, generator: str, clip_id: str) -> Path:
        return self.root / "clips" / _component(generator) / f"{_component(clip_id)}.npy"

    def clip_meta_path(self, generator: str, clip_id: str) -> Path:
        return self.root / "clips" / _component(generator) / f"{_component(clip_id)}.json"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def results(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def clips_csv(self) -> Path:
        return self.root / CLIPS_FILE

    @property
    def report(self) -> Path:
        return self.root / "report"


# A spreadsheet runs a cell that starts with one of these as a formula (=HYPERLINK(...), +cmd|...);
# tab and carriage return can smuggle one past a naive check. OWASP's advice: prefix a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A text cell a spreadsheet will show as text: a leading ' where it would start a formula.
    A carriage return becomes a line feed: Python's csv (and pandas) quote a cell holding a line
    feed but write a bare CR raw, which splits the row for readers (results.json keeps the exact
    text). Only text is touched: numbers (-0.5 in a score column) stay numbers."""
    if not isinstance(value, str):
        return value
    if value.startswith(_FORMULA_START):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n") if "\r" in value else value


def csv_safe_frame(df):
    """A copy of a pandas DataFrame with every text cell and column name through csv_cell;
    numeric columns are left as they are."""
    out = df.rename(columns=lambda c: csv_cell(c) if isinstance(c, str) else c)
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = out[col].map(csv_cell)
    return out


def write_results(run: RunDir, results: dict) -> None:
    """Plain results data (vdeval.results.Results.dump()) as results.json and clips.csv (and clips.parquet with pyarrow), each atomically; clips.csv text cells
    are formula-safe."""
    atomic_write_json(run.results, results)
    metric_names = list(results.get("metrics", {}))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([csv_cell(h) for h in ["generator", "clip_id", "prompt", "seed", "clip_hash", "error"] + metric_names])
    for c in results.get("clips", []):
        row = [csv_cell(str(x)) for x in (c["generator"], c["clip_id"], c["prompt"])]
        row += [c["seed"], c.get("clip_hash") or "", csv_cell(c.get("error") or "")]
        for m in metric_names:
            v = c.get("scores", {}).get(m)
            row.append("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else repr(float(v)))
        w.writerow(row)
    atomic_write_text(run.clips_csv, out.getvalue())
    write_clips_parquet(run.root / CLIPS_PARQUET, results)


def write_clips_parquet(path: Path, results: dict) -> Path | None:
    """The per-clip table as Parquet (missing scores as nulls); None when pyarrow is not installed."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        return None
    import pandas as pd

    metric_names = list(results.get("metrics", {}))
    rows = []
    for c in results.get("clips", []):
        row = {"generator": str(c["generator"]), "clip_id": str(c["clip_id"]), "prompt": str(c["prompt"]),
               "seed": c["seed"], "clip_hash": c.get("clip_hash"), "error": c.get("error")}
        for m in metric_names:
            v = c.get("scores", {}).get(m)
            row[m] = None if v is None else float(v)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["generator", "clip_id", "prompt", "seed", "clip_hash", "error"] + metric_names)
    for m in metric_names:
        df[m] = df[m].astype("float64")
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue())


# ---- run lock -------------------------------------------------------------------------------------

LOCK_FILE = ".vdeval-run.lock"


class RunLockedError(VdevalError):
    """Another process is writing into the same run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except (OverflowError, ValueError, OSError):
        return False
    return True


def _read_lock(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: a holder we cannot name


def _holder(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on {info.get('host', '?')} since {info.get('started', '?')}"
            f" ({info.get('command') or 'unknown command'})")


def _publish_lock(path: Path, payload: bytes) -> bool:
    """Create `path` holding `payload` only if it does not exist; a link from a complete temp
    file, so nobody ever reads a half-written lock. False when someone else holds it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: exclusive create instead
            try:
                with open(path, "xb") as fh:
                    fh.write(payload)
            except FileExistsError:
                return False
        return True
    finally:
        os.unlink(tmp)


class RunLock:
    """One writer per run directory. Held for the whole run; a second run into the same folder
    gets RunLockedError naming the holder. A lock left by a process that died (kill -9, power
    cut) on this host is taken over with a note; one held from another host is never guessed
    at: the error says which file to delete once that run is known to be gone."""

    def __init__(self, root: str | os.PathLike, command: str | None = None, log=None):
        self.root = Path(root)
        self.path = self.root / LOCK_FILE
        self.command = command if command is not None else " ".join(["vdeval"] + sys.argv[1:])
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.info: dict | None = None

    def acquire(self) -> RunLock:
        import socket
        from datetime import datetime, timezone

        make_dir(self.root)
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "token": os.urandom(8).hex()}
        payload = (json.dumps(info, indent=1) + "\n").encode()
        for _ in range(3):
            try:
                if _publish_lock(self.path, payload):
                    self.info = info
                    return self
            except OSError as e:
                raise VdevalError(f"cannot write in output directory {self.root}: {e.strerror or e}",
                                  "choose a folder you can write to with --out") from None
            held = _read_lock(self.path)
            if held is None:  # released between our try and our read: try again
                continue
            if not self._stale(held, info["host"]):
                raise RunLockedError(f"{self.root} is in use by another run: {_holder(held)}",
                                     f"wait for it to finish or use another --out; if that process is gone, "
                                     f"delete {self.path}")
            self.log(f"note: {self.root}: taking over the lock of a run that is no longer running ({_holder(held)})")
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        raise RunLockedError(f"{self.root}: could not take the run lock {self.path}", "try again")

    @staticmethod
    def _stale(held: dict, host: str) -> bool:
        pid = held.get("pid")
        return held.get("host") == host and isinstance(pid, int) and pid != os.getpid() and not _pid_alive(pid)

    def release(self) -> None:
        if self.info is None:
            return
        held = _read_lock(self.path)
        if held and held.get("token") == self.info["token"]:  # never remove a lock someone took over
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        self.info = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
