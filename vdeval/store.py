"""The run directory, atomic writes, hashes and the results format.

Run directory layout:
  clips/<generator>/<clip_id>.npy    exact uint8 frames (T, H, W, 3), written once, reused on resume
  clips/<generator>/<clip_id>.json   the request that made it (prompt, seed, hash, error)
  features/<backbone-hash[:16]>/<kind>/<input-hash>.safetensors   cached features (no pickle)
  results.json                       everything below, self-describing
  clips.csv                          one row per clip, one column per metric
  clips.parquet                      the same table, typed, when pyarrow is installed (extra `parquet`)
  report/                            written by `vdeval report` at the end of a run

results.json (RESULTS_VERSION 1):
  vdeval_results_version, created, suite (resolved), suite_hash, suite_path,
  provenance {vdeval, torch, python, platform, device, command},
  generators {name: info}, backbones {label: identity + identity_hash},
  metrics {name: {name, version, higher_is_better, level, backbone, backbone_label, params, failure_mode}},
  summary [{generator, metric, value, ci_low, ci_high, n, n_failed, n_real, backbone, higher_is_better, level}],
  clips [{generator, clip_id, prompt, seed, clip_hash, error, scores {metric: value},
          extras {metric: {name: value}}, curves {metric: [values]}, notes {metric: text}}],
  failures [{generator, clip_id, stage, error}]
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from vdeval.errors import ResultsError, VdevalError

RESULTS_VERSION = 1
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
    return p


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


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


class RunDir:
    """Paths inside one run directory; creating it refuses a path that is a file."""

    def __init__(self, root: str | os.PathLike, create: bool = True):
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise VdevalError(f"output directory {self.root} is a file", "choose another --out")
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    def clip_path(self, generator: str, clip_id: str) -> Path:
        return self.root / "clips" / generator / f"{clip_id}.npy"

    def clip_meta_path(self, generator: str, clip_id: str) -> Path:
        return self.root / "clips" / generator / f"{clip_id}.json"

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


def write_results(run: RunDir, results: dict) -> None:
    """results.json and clips.csv (and clips.parquet with pyarrow), each atomically."""
    atomic_write_json(run.results, results)
    metric_names = list(results.get("metrics", {}))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["generator", "clip_id", "prompt", "seed", "clip_hash", "error"] + metric_names)
    for c in results.get("clips", []):
        row = [c["generator"], c["clip_id"], c["prompt"], c["seed"], c.get("clip_hash") or "", c.get("error") or ""]
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


def load_results(path: str | os.PathLike) -> dict:
    """Read a results.json (or the one inside a run directory), checking its version."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise ResultsError(f"{p}: no results file", "give a run directory made by `vdeval run` or its results.json")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{p}: not valid JSON ({e})") from None
    version = data.get("vdeval_results_version") if isinstance(data, dict) else None
    if version is None:
        raise ResultsError(f"{p}: not a vdeval results file (no vdeval_results_version)")
    if version != RESULTS_VERSION:
        raise ResultsError(
            f"{p}: results version {version} is not supported (this vdeval reads version {RESULTS_VERSION})",
            "re-run the suite with this vdeval version",
        )
    return data
