"""Per-clip values of the imaging_quality tiers on the grid's compression family (and, with
--families, any other), for choosing a tier or a combination on the calibration split only.

For every grid condition (vdeval/audit/grid.py: the 4 small world conditions, the 2 small natural
ones on ../shared/data/natural; --conditions picks among the --grid-large ones) and split, the clean clips and each form x severity of the families
asked: NIQE of the domain's tier (niqe_world on world clips, niqe on natural windows) and the
blockiness backbone's clip B, A, Z and S. One CSV row per clip; nothing is chosen here.

  PYTHONPATH=$PWD nice python benchmarks/compression_tiers.py --out /tmp/tiers.csv [--n 8]
      [--families compression,motion_blur] [--conditions 0,1,2]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from vdeval.audit.forms import FAMILIES, apply
from vdeval.audit.grid import (
    CALIBRATION_SEED,
    CALIBRATION_SEVERITIES,
    EVALUATION_SEED,
    EVALUATION_SEVERITIES,
    NATURAL_LARGE,
    WORLD_LARGE,
    natural_windows,
    world_sources,
)
from vdeval.features import ClipInput
from vdeval.video.core import Video


def _gauss_blur(frames: np.ndarray, severity: float, rng) -> np.ndarray:
    """The world audit's `blur` on plain frames: Gaussian, sigma 2 x severity x short side / 32."""
    from scipy.ndimage import gaussian_filter

    sigma = 2.0 * severity * min(frames.shape[1:3]) / 32
    return np.clip(np.rint(gaussian_filter(frames.astype(np.float64), (0, sigma, sigma, 0))), 0, 255).astype(np.uint8)


def _noise(frames: np.ndarray, severity: float, rng) -> np.ndarray:
    """The world audit's `noise` on plain frames: Gaussian, sigma 40 x severity."""
    return np.clip(np.rint(frames + rng.normal(0.0, 40.0 * severity, frames.shape)), 0, 255).astype(np.uint8)


# the regular audit's other imaging_quality failures, applied to any frames (study only)
EXTRA = {"quality": {"blur": _gauss_blur, "noise": _noise}}

NATURAL = Path(__file__).resolve().parents[1].parent.parent / "shared" / "data" / "natural"


def main() -> None:
    import cv2
    import pandas as pd
    import torch

    from vdeval.backbones.blockiness import Blockiness
    from vdeval.backbones.niqe import NiqeBackbone, NiqeWorld

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--families", default="compression")
    ap.add_argument("--conditions", default=None, help="indices into world + natural conditions")
    ap.add_argument("--natural", type=Path, default=NATURAL)
    a = ap.parse_args()
    files = sorted(p for p in a.natural.glob("*.mp4") if "distorted" not in p.name)
    conds = list(WORLD_LARGE + NATURAL_LARGE)  # world 0-6, natural 7-10 (the first 4 and 7-8: the default grid)
    if a.conditions:
        conds = [conds[int(i)] for i in a.conditions.split(",")]
    fams = a.families.split(",")
    block, niqe = Blockiness(), {"world": NiqeWorld(), "natural": NiqeBackbone()}
    rows = []
    for cond in conds:
        for split, seed0, sevs in (("calibration", CALIBRATION_SEED, CALIBRATION_SEVERITIES),
                                   ("evaluation", EVALUATION_SEED, EVALUATION_SEVERITIES)):
            t0 = time.perf_counter()
            srcs = world_sources(cond, a.n, seed0) if cond.domain == "world" else natural_windows(cond, files, split, a.n)
            for i, (src, _, fps) in enumerate(srcs):
                variants = [("clean", "clean", 0.0, src[:cond.frames])]
                variants += [(f, form, v, apply(f, form, src, cond.frames, v, seed0 + i))
                             for f in fams if f in FAMILIES for form in FAMILIES[f] for v in sevs]
                variants += [(f, form, v, fn(src[:cond.frames], v, np.random.default_rng([seed0 + i, 7])))
                             for f in fams if f in EXTRA for form, fn in EXTRA[f].items() for v in sevs]
                for fam, form, v, frames in variants:
                    ci = ClipInput(Video(frames, fps))
                    b = block.compute("frame_score", [ci])[0]
                    nq = niqe[cond.domain].compute("frame_score", [ci])[0]
                    rows.append({"condition": cond.name, "domain": cond.domain, "split": split, "clip": i,
                                 "family": fam, "form": form, "severity": v, "niqe": float(nq["clip"][0]),
                                 "S": float(b["clip"][0]), "B": float(np.nanmean(b["B"])),
                                 "A": float(np.nanmean(b["A"])), "Z": float(np.nanmean(b["Z"]))})
            print(f"{cond.name} / {split}: {len(srcs)} clips, {time.perf_counter() - t0:.0f} s", flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
