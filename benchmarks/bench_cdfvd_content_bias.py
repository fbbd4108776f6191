"""Content bias of FVD (Ge et al., CVPR 2024) on world clips: how much a temporal corruption moves
FVD relative to a per-frame one, for I3D (protocol stylegan-v) and VideoMAE-v2 (protocol cd-fvd).

Sets: n clean world clips as the real set; as generated sets, n other clean clips, the same clips
with their 16 frames shuffled (every frame kept: per-frame quality unchanged), frozen on their
first frame, and with per-frame Gaussian noise (the world's `noise` corruption). Per backbone:
the FVD increase of each corruption over the clean generated set, and shuffle / noise and
freeze / noise, the paper's comparison: higher means the features weigh motion more against
per-frame content. Needs the published weights of both networks (`vdeval weights install i3d
FILE`, `vdeval weights install videomae-v2-g-ssv2 FILE`) and, for ViT-g, a GPU in practice.

    python benchmarks/bench_cdfvd_content_bias.py --n 256 --device cuda
"""
from __future__ import annotations

import argparse

import numpy as np

from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.fvd import FVD
from vdeval.run.featurize import BackbonePool, featurize
from vdeval.video import Video
from vdeval.world import WorldSpec, sample_clip
from vdeval.world.corruptions import corrupt

BACKBONES = ("i3d", "videomae")


def corrupted_sets(n: int, seed: int = 0, size: int = 128, noise: float = 0.5) -> dict[str, list[Video]]:
    spec = WorldSpec(height=size, width=size, frames=16)
    real = [sample_clip(seed + i, spec).video for i in range(n)]
    clean = [sample_clip(seed + 10_000 + i, spec) for i in range(n)]
    rng = np.random.default_rng(seed)
    return {
        "real": real,
        "clean": [c.video for c in clean],
        "shuffle": [Video(c.video.frames[rng.permutation(16)], c.video.fps) for c in clean],
        "freeze": [Video(np.repeat(c.video.frames[:1], 16, 0), c.video.fps) for c in clean],
        "noise": [corrupt(c, "noise", noise, seed) for c in clean],
    }


def content_bias(n: int = 64, seed: int = 0, device: str = "cpu") -> dict[str, dict[str, float]]:
    sets = corrupted_sets(n, seed)
    pool = BackbonePool(device)
    out = {}
    for backbone in BACKBONES:
        metric = FVD(backbone=backbone, n_bootstrap=0)
        feats = {}
        for name, videos in sets.items():
            clips = [ClipFeatures(f"{name}{i}", v) for i, v in enumerate(videos)]
            featurize(clips, [FeatureRequest("video_embedding", backbone)], pool)
            feats[name] = clips
        fvd = {name: metric.score_set(feats[name], feats["real"]).value for name in sets if name != "real"}
        rise = {name: fvd[name] - fvd["clean"] for name in ("shuffle", "freeze", "noise")}
        out[backbone] = {**{f"fvd_{k}": v for k, v in fvd.items()}, "shuffle_over_noise": rise["shuffle"] / rise["noise"],
                         "freeze_over_noise": rise["freeze"] / rise["noise"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    r = content_bias(a.n, a.seed, a.device)
    for backbone, row in r.items():
        print(backbone, " ".join(f"{k}={v:.4g}" for k, v in row.items()))


if __name__ == "__main__":
    main()
