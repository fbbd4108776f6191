"""A small seeded fuzzer over the Python API (issue 24), beside the suite fuzzer
(test_suite_fuzz.py): random shapes, dtypes, value ranges, paths and keyword values go into
vdeval.evaluate and vdeval.evaluate_set. Every call must end in one of two ways: a DataFrame (one
row per clip for evaluate, bad clips as error rows) or one VdevalError whose message is one line.
Anything else (a raw numpy / OpenCV / pydantic error, a hang, a lost row) is a bug.

`python tests/test_api_fuzz.py N SEED` runs N cases outside pytest, for longer hunts.
"""
from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent / "data" / "natural"
DIMS = [0, 1, 2, 3, 4, 5, 8, 17]
DTYPES = [np.uint8, np.uint8, np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_,
          np.complex64, object, "U3"]
EDGES = [-1e6, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 255.0, 256.0, 1e6]
KEYWORDS = {
    "fps": [8.0, 8, 24.0, 0, -1, float("inf"), float("nan"), 1e300, 1e-300, "8", None, True, 1000.0],
    "batch_size": [1, 2, 8, 0, -1, 2.5, True, "4", None, 10**9],
    "memory_gb": [2.0, 1e-9, 0, -1.0, float("inf"), float("nan"), "2", None, 1024.0, 1e6],
    "device": ["cpu", "cpu", "tpu", "cuda:x", "", None, 5, "CPU", "cpu:0"],
    "domain": ["natural", "world", "space", None, 1],
    "value_range": [None, None, (0, 1), (-1, 1), (0, 255), (1, 0), (0, float("inf")), (0,), (0, 1, 2), "ab",
                    (float("nan"), 1), ("a", "b")],
    "metrics": [["frame_difference"], ["frame_difference", "warping_error"], [], None, "frame_difference",
                ["nope"], [5], [["frame_difference"]], ["fvd"], [{"name": "frame_difference", "params": {}}],
                [{"name": "frame_difference", "params": {"x": 1}}], [{"nmae": "frame_difference"}],
                ["frame_difference", "frame_difference"], ("frame_difference",), ["frozen_motion"]],
    "backbones": [None, None, {}, {"warping_error": "dis"}, {"warping_error": "nope"}, {"frame_difference": "dis"},
                  {"x": 1}, "dis", [1]],
    "cache_dir": [None, None, "CACHE", "AFILE/cache", 5, "A\0B"],
}


def _values(rng: random.Random, n: int, dtype) -> np.ndarray:
    lo, hi = sorted(rng.sample(EDGES, 2))
    v = np.random.default_rng(rng.randrange(2**32)).uniform(lo, hi, n)
    if rng.random() < 0.1 and n:
        v[rng.randrange(n)] = rng.choice([float("nan"), float("inf"), -float("inf")])
    return v


def random_array(rng: random.Random):
    """An array of random rank, size, dtype and values (kept small: at most ~20k elements)."""
    ndim = rng.choice([0, 1, 2, 3, 4, 4, 4, 4, 5])
    shape = [rng.choice(DIMS) for _ in range(ndim)]
    if ndim == 4 and rng.random() < 0.6:  # most arrays look like videos, so the checks inside are reached
        shape = [rng.choice([1, 2, 3, 5]), rng.choice([8, 16, 17]), rng.choice([8, 16, 3]), rng.choice([1, 3, 4])]
        if rng.random() < 0.3:
            shape = [shape[0], shape[3], shape[1], shape[2]]
    n = int(np.prod(shape)) if shape else 1
    if n > 20_000:
        shape, n = [2, 8, 8, 3], 384
    dtype = rng.choice(DTYPES)
    vals = _values(rng, n, dtype)
    if dtype is object:
        return np.array([None] * n, dtype=object).reshape(shape)
    if dtype == "U3":
        return np.full(shape, "abc")
    with np.errstate(all="ignore"):
        arr = np.nan_to_num(vals, nan=0, posinf=1e6, neginf=-1e6).astype(dtype) if np.dtype(dtype).kind in "uib" \
            else vals.astype(dtype)
    arr = arr.reshape(shape)
    if rng.random() < 0.15:
        import torch

        try:
            return torch.from_numpy(np.ascontiguousarray(arr))
        except TypeError:  # a dtype torch has no tensor for
            return arr
    return arr


def make_files(root: Path) -> dict[str, Path]:
    """Paths of every kind a user might pass: good, damaged, empty, special, missing, odd names."""
    root.mkdir(parents=True, exist_ok=True)
    good = shutil.copy(DATA / "carphone.mp4", root / "good.mp4")
    files = {"good": Path(good), "missing": root / "missing.mp4", "folder_mp4": root / "dir.mp4",
             "garbage": root / "garbage.mp4", "empty": root / "empty.mp4", "text": root / "notes.txt",
             "npy_bad": root / "bad.npy", "npy_ok": root / "ok.npy", "cut": root / "cut.mp4",
             "nul": Path(str(root / "a") + "\0b.mp4"), "devnull": Path("/dev/null"), "root": Path("/")}
    files["folder_mp4"].mkdir(exist_ok=True)
    files["garbage"].write_bytes(b"garbage" * 100)
    files["empty"].write_bytes(b"")
    files["text"].write_text("hello")
    files["npy_bad"].write_bytes(b"\x93NUMPY garbage")
    np.save(files["npy_ok"], np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8))
    data = files["good"].read_bytes()
    files["cut"].write_bytes(data[: len(data) // 3])
    if hasattr(os, "mkfifo"):
        files["fifo"] = root / "pipe.mp4"
        if not files["fifo"].exists():
            os.mkfifo(files["fifo"])
    sub = root / "sub"
    sub.mkdir(exist_ok=True)
    files["same_name"] = Path(shutil.copy(DATA / "bigbuckbunny_180p.mp4", sub / "good.mp4"))
    frames = root / "frames"
    frames.mkdir(exist_ok=True)
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 8, 3), 60 * i, np.uint8)).save(frames / f"{i}.png")
    files["frames"] = frames
    files["afile"] = root / "AFILE"
    files["afile"].write_text("x")
    return files


def random_videos(rng: random.Random, files: dict[str, Path]):
    """A videos argument: a list of arrays and paths, one batch, a folder, or something else."""
    form = rng.choice(["list", "list", "list", "list", "batch", "folder", "other"])
    if form == "batch":
        return np.random.default_rng(rng.randrange(2**32)).random((rng.choice([1, 2]), 3, 3, 8, 8)).astype(np.float32)
    if form == "folder":
        return rng.choice([files["good"].parent, files["good"].parent / "sub", files["missing"], files["good"]])
    if form == "other":
        return rng.choice([None, 5, {"a": 1}, "", b"bytes", np.float64(1.0), iter([1, 2])])
    items = []
    for _ in range(rng.randint(0, 4)):
        if rng.random() < 0.55:
            items.append(random_array(rng))
        elif rng.random() < 0.85:
            items.append(rng.choice(list(files.values())))
        else:
            items.append(rng.choice([None, 5, "x", [[1, 2], [3]], {"a": 1}]))
    return items


def random_call(rng: random.Random, files: dict[str, Path], root: Path):
    """(function name, videos, keyword arguments)."""
    kwargs = {}
    odd_keywords = rng.random() < 0.5  # half the calls keep sane keywords, so the clips are reached
    for key, options in KEYWORDS.items():
        if odd_keywords and rng.random() < 0.25:
            v = rng.choice(options)
            if key == "cache_dir" and isinstance(v, str):
                v = str(root / v)
            kwargs[key] = v
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("metrics", rng.choice([["frame_difference"], ["frame_difference", "warping_error"]]))
    if kwargs.get("backbones") is None and "warping_error" in (kwargs.get("metrics") or []):
        kwargs["backbones"] = {"warping_error": "dis"}  # weightless: no weights needed offline
    videos = random_videos(rng, files)
    if rng.random() < 0.12:
        kwargs.pop("memory_gb", None)
        kwargs["metrics"] = rng.choice([["fvd"], ["kvd"], ["fvd", "kvd"], ["frame_difference"]])
        kwargs.pop("backbones", None)
        kwargs["domain"] = "world"
        return "evaluate_set", (random_videos(rng, files), videos), kwargs
    if rng.random() < 0.3 and isinstance(videos, list):
        kwargs["prompts"] = rng.choice([[f"p{i}" for i in range(len(videos))], ["one"], None,
                                        [None] * len(videos), "abc"])
    return "evaluate", (videos,), kwargs


def check_outcome(name: str, args: tuple, kwargs: dict, rng_case: str) -> str:
    """Run one call; 'rows' or 'error' when it ends in one of the two allowed ways, else raise."""
    import pandas as pd

    import vdeval
    from vdeval.errors import VdevalError

    try:
        out = getattr(vdeval, name)(*args, **kwargs)
    except VdevalError as e:
        text = str(e)
        assert text and "\n" not in text, f"{rng_case}: a VdevalError of several lines:\n{text}"
        return "error"
    except Exception as e:  # noqa: BLE001 - the point of the fuzzer
        raise AssertionError(f"{rng_case}: {type(e).__name__} escaped: {e}") from e
    assert isinstance(out, pd.DataFrame), f"{rng_case}: returned {type(out).__name__}"
    if name == "evaluate" and isinstance(args[0], list):
        assert len(out) == len(args[0]), f"{rng_case}: {len(args[0])} videos, {len(out)} rows"
        assert out["clip"].is_unique, f"{rng_case}: clip ids repeat"
        for err in out["error"]:
            assert pd.isna(err) or (isinstance(err, str) and "\n" not in err), f"{rng_case}: error cell {err!r}"
        for col in out.columns:
            if col.endswith(".note"):
                assert all(pd.isna(v) or "\n" not in v
                           for v in out[col]), f"{rng_case}: note of several lines in {col}"
    return "rows"


def run_cases(n: int, seed: int, root: Path) -> dict[str, int]:
    import warnings

    files = make_files(root / "files")
    rng = random.Random(seed)
    counts = {"rows": 0, "error": 0}
    for i in range(n):
        name, args, kwargs = random_call(rng, files, root)
        case = f"case {i} (seed {seed}): vdeval.{name}(*{_short(args)}, **{_short(kwargs)})"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            counts[check_outcome(name, args, kwargs, case)] += 1
    return counts


def _short(x) -> str:
    def one(v):
        if hasattr(v, "shape") and hasattr(v, "dtype"):
            return f"{type(v).__name__}{tuple(v.shape)}:{v.dtype}"
        if isinstance(v, (list, tuple)):
            return type(v)(one(u) for u in v)
        if isinstance(v, dict):
            return {k: one(u) for k, u in v.items()}
        return v

    return repr(one(x))


def test_api_fuzz_only_rows_or_one_vdeval_error(tmp_path):
    counts = run_cases(60, seed=24, root=tmp_path)
    assert counts["rows"] >= 8 and counts["error"] >= 8, counts  # both sides of the API are reached


if __name__ == "__main__":  # a longer hunt: python tests/test_api_fuzz.py 500 7
    import tempfile

    n, seed = (int(a) for a in (sys.argv[1:3] + ["200", "0"][len(sys.argv[1:3]):]))
    with tempfile.TemporaryDirectory() as d:
        print(run_cases(n, seed, Path(d)))
