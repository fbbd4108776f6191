"""Copy a training checkpoint into reference_models/checkpoints/<name>/ (the shipped set).

    python -m reference_models.ship reference_models/runs/ref/full/step_004000 final

The weights are re-loaded and checked against their config before copying; the shipped
config records its stage name and where it came from.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from reference_models.checkpoint import SHIPPED_DIR, load_checkpoint


def ship(src: str | Path, name: str, shipped_dir: Path = SHIPPED_DIR) -> Path:
    lm = load_checkpoint(Path(src).resolve())  # raises CheckpointError if it does not load
    dst = shipped_dir / name
    dst.mkdir(parents=True, exist_ok=True)
    for file in ("model.safetensors", "vae.safetensors"):  # the VAE only for latent models
        if (lm.path / file).is_file():
            shutil.copyfile(lm.path / file, dst / file)
    cfg = dict(lm.config)
    cfg["stage"] = name
    cfg["source"] = f"{Path(src).parent.name}/{Path(src).name}"
    (dst / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    load_checkpoint(dst)
    return dst


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    print(ship(sys.argv[1], sys.argv[2]))
