"""Conditioning images a user brings for image-to-video models: (prompt, image) per clip.

`read_conditioning(path)` reads either
  - a sidecar file, CSV with a header naming `image` and `prompt` columns, or JSON: a list of
    {"image": ..., "prompt": ...}; image paths are relative to the sidecar's folder; or
  - a folder of PNG / JPEG images, in name order, each prompt the file name without its
    suffix (underscores and dashes read as spaces) unless the folder holds a `prompts.csv` or
    `prompts.json` sidecar, which then names the images and their prompts.
Images come back as uint8 (H, W, 3) RGB. Every problem is one VdevalError naming the file and
row.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from vdeval.errors import VdevalError
from vdeval.video.ingest import MAX_SIDECAR_BYTES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SIDECARS = ("prompts.csv", "prompts.json")


def read_image(path: Path, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise VdevalError(f"{where}: image {str(path)!r} does not exist")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as e:
        raise VdevalError(f"{where}: cannot read image {str(path)!r} ({e})") from None


def _rows(sidecar: Path) -> list[dict]:
    from vdeval.userfiles import read_json, read_text

    if sidecar.suffix.lower() == ".json":
        rows = read_json(sidecar, MAX_SIDECAR_BYTES, "sidecar")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise VdevalError(f"{sidecar}: expected a list of {{\"image\": ..., \"prompt\": ...}} objects")
        return rows
    reader = csv.DictReader(read_text(sidecar, MAX_SIDECAR_BYTES, "sidecar").splitlines())
    if not reader.fieldnames or not {"image", "prompt"} <= set(reader.fieldnames):
        raise VdevalError(f"{sidecar}: the CSV header must name the columns image and prompt",
                          f"found {reader.fieldnames}")
    return list(reader)


def _from_sidecar(sidecar: Path) -> list[tuple[str, np.ndarray]]:
    out = []
    for i, row in enumerate(_rows(sidecar)):
        where = f"{sidecar} row {i + 1}"
        image, prompt = row.get("image"), row.get("prompt")
        if not isinstance(image, str) or not image.strip():
            raise VdevalError(f"{where}: no image path")
        if prompt is None:
            raise VdevalError(f"{where}: no prompt (give an empty string for none)")
        out.append((str(prompt), read_image(sidecar.parent / image.strip(), where)))
    if not out:
        raise VdevalError(f"{sidecar}: lists no images")
    return out


def read_conditioning(path: str | Path) -> list[tuple[str, np.ndarray]]:
    """[(prompt, uint8 (H, W, 3) image)] from a sidecar file or a folder of images."""
    p = Path(path)
    if not p.exists():
        raise VdevalError(f"{p}: no such conditioning file or folder")
    if p.is_file():
        return _from_sidecar(p)
    for name in SIDECARS:
        if (p / name).is_file():
            return _from_sidecar(p / name)
    images = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise VdevalError(f"{p}: holds no PNG, JPEG or WebP images and no prompts.csv / prompts.json")
    return [(f.stem.replace("_", " ").replace("-", " "), read_image(f, str(p))) for f in images]
