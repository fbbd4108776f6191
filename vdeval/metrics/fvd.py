"""Fréchet Video Distance: the Fréchet distance between Gaussians fitted to video embeddings of the
generated and the real set (lower is better).

Protocols (the `protocol` param; recorded with every value, and values of different protocols,
backbones or sample counts are refused by `vdeval.stats.check_comparable`):
  stylegan-v  the published FVD of StyleGAN-V (Skorokhodov et al. 2022): backbone "i3d" (the
              TorchScript Kinetics-400 I3D, 400 logits before softmax), 16 consecutive frames of
              each clip: the first 16 of a generated clip, a random window of each real video
              (StyleGAN-V's dataset draws the start uniformly; here seeded by real.ingest.seed and
              the file's name; Suite.real_ingest, unless the suite names a window), frames resized
              to 224x224 by the detector, values in [-1, 1], population covariance (divide by n),
              2048 clips per set in the paper ("fvd2048_16f").
  cd-fvd      content-debiased FVD (Ge et al., CVPR 2024; the `cd-fvd` package): backbone "videomae"
              (VideoMAE-v2 ViT-g fine-tuned on SSv2, 1408 features: the fc_norm of the mean token),
              the first 16 frames, each resized to 224x224 in [0, 1] (vdeval/backbones/videomae.py),
              population covariance (cd-fvd's FeatureStats divides by n). Its features weigh motion
              more and per-frame content less than I3D's.
  vdeval      any backbone with its own written protocol (default: the embedded backbone),
              unbiased covariance (divide by n - 1).
  auto        stylegan-v for backbone "i3d", cd-fvd for "videomae", vdeval otherwise.

The maths lives in vdeval.stats (float64, eigenvalue trace of the matrix square root). FVD is
biased upwards at small n: compare values only at equal sample counts. With fewer clips than
feature dimensions the covariances are singular; the value is still defined, a warning is
issued and `extras["note"]` says so.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Literal, TypedDict

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vdeval import stats
from vdeval.errors import FeatureError, SuiteError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import Metric, SetScore


class FVDProtocol(TypedDict):
    ddof: int  # the covariance's delta degrees of freedom
    backbone: str | None  # the backbone the protocol fixes (None: any)
    text: str


PROTOCOLS: dict[str, FVDProtocol] = {
    "stylegan-v": {"ddof": 0, "backbone": "i3d",
                   "text": "I3D (StyleGAN-V TorchScript), 16 frames (generated: first; real: random window), "
                           "224x224, [-1, 1], population covariance"},
    "cd-fvd": {"ddof": 0, "backbone": "videomae",
               "text": "VideoMAE-v2 ViT-g (SSv2, cd-fvd), first 16 frames, 224x224, [0, 1], population covariance"},
    "vdeval": {"ddof": 1, "backbone": None, "text": "backbone's own protocol, unbiased covariance"},
}


def resolve_protocol(protocol: str, backbone: str) -> str:
    if protocol == "auto":
        return {"i3d": "stylegan-v", "videomae": "cd-fvd"}.get(backbone, "vdeval")
    if protocol not in PROTOCOLS:
        raise SuiteError(f"unknown FVD protocol {protocol!r}", f"one of {', '.join(PROTOCOLS)} or auto")
    want = PROTOCOLS[protocol]["backbone"]
    if want and backbone != want:
        raise SuiteError(f"FVD protocol {protocol!r} needs backbone {want!r}, not {backbone!r}",
                         f"set backbone: {want}, or protocol: vdeval")
    return protocol


def rank_note(n: int, dim: int, which: str) -> str | None:
    if n <= dim:
        return (f"{which} set has {n} clips for {dim} feature dims: its covariance is rank-deficient "
                f"(rank <= {n - 1}); FVD is defined but noisy and not comparable with larger sets")
    return None


def fvd_from_stats(fake: stats.FeatureStats, real: stats.FeatureStats, ddof: int) -> float:
    stats.check_same_protocol(fake, real)
    return stats.frechet_distance(fake.mean(), fake.cov(ddof), real.mean(), real.cov(ddof))


def fvd_from_features(fake, real, ddof: int = 1) -> float:
    """Pure function: FVD between two (N, D) feature arrays."""
    x = stats.check_features(fake, "generated set")
    y = stats.check_features(real, "real set")
    stats._check_pair(x, y)
    return fvd_from_stats(stats.FeatureStats.from_features(x), stats.FeatureStats.from_features(y), ddof)


def stack_embeddings(clips: list[ClipFeatures], backbone: str, which: str) -> np.ndarray:
    if not clips:
        raise FeatureError(f"{which} set is empty; FVD needs at least 2 clips in each set")
    rows = []
    for c in clips:
        v = np.asarray(c.value("video_embedding", backbone), np.float64)
        if v.ndim != 1:
            raise FeatureError(f"clip {c.clip_id}: video_embedding must be 1-D, got shape {v.shape}")
        rows.append(v)
    if len({r.shape for r in rows}) > 1:
        raise FeatureError(f"{which} set: video embeddings of different sizes {sorted({r.shape[0] for r in rows})}")
    return stats.check_features(np.stack(rows), f"{which} set")


class FVDParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    protocol: Literal["auto", "stylegan-v", "cd-fvd", "vdeval"] = "auto"
    n_bootstrap: int = Field(200, ge=0, description="clip resamples for the bias-shifted 95% interval; 0 for none")
    stats_cache: str | None = Field(None, description="folder caching the real set's statistics")
    real_name: str | None = Field(None, description="name of the real data set in the cache key")


class FVD(Metric[FVDParams]):
    name = "fvd"
    version = "1"
    higher_is_better = False
    level = "set"
    default_backbone = "embedded"
    natural_backbone = "i3d"
    needs_real = True
    failure_mode = "generated clips whose appearance or motion statistics differ from the real set's"
    # the audit scores clips one at a time; FVD's response to each corruption is measured on sets
    audit_exempt = "set-level: sensitivity per corruption is train_embedded.fvd_sensitivity (the backbone's model card)"
    Params = FVDParams

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        self.protocol = resolve_protocol(self.params.protocol, self.backbone)
        self.ddof = PROTOCOLS[self.protocol]["ddof"]
        self.backbone_hash: str | None = None  # set by bind_backbones; looked up when a cache needs it

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("video_embedding", self.backbone)]

    def bind_backbones(self, backbones: list) -> None:
        self.backbone_hash = backbones[0].identity_hash()  # the exact backbone, options and weights

    def identity(self) -> dict:
        return {"protocol": self.protocol, "backbone": self.backbone, "backbone_hash": self.backbone_hash}

    def _backbone_hash(self) -> str:
        # the caller that ran the backbone knows its identity (featurize is the one place backbones run)
        if self.backbone_hash is None:
            raise FeatureError("FVD with stats_cache needs the backbone's identity hash to key its cache",
                               "call metric.bind_backbones([BackbonePool().get(backbone)]) "
                               "(the runner and vdeval.evaluate_set do)")
        return self.backbone_hash

    def real_stats(self, y: np.ndarray) -> stats.FeatureStats:
        """The real set's statistics, through the cache when one is configured."""
        if not self.params.stats_cache:
            return stats.FeatureStats.from_features(y, self.identity())
        dataset = self.params.real_name or "features:" + hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()[:16]
        ident = {**self.identity(), "backbone_hash": self._backbone_hash(), "dataset": dataset}
        cache = stats.StatsCache(self.params.stats_cache)
        key = cache.key_for(dataset, self.protocol, self.backbone, ident["backbone_hash"], len(y), y.shape[1])
        hit = cache.get(key)
        if hit is not None:
            return hit
        s = stats.FeatureStats.from_features(y, ident)
        cache.put(s)
        return s

    def score_set(self, fake: list[ClipFeatures], real: list[ClipFeatures]) -> SetScore:
        x = stack_embeddings(fake, self.backbone, "generated")
        y = stack_embeddings(real, self.backbone, "real")
        stats._check_pair(x, y)
        rs = self.real_stats(y)
        fs = stats.FeatureStats.from_features(x, {**rs.identity, "dataset": None})
        value = fvd_from_stats(fs, rs, self.ddof)
        notes = [m for m in (rank_note(len(x), x.shape[1], "generated"), rank_note(len(y), y.shape[1], "real")) if m]
        for m in notes:
            warnings.warn(m, stacklevel=2)
        ci = stats.bootstrap_frechet_ci(x, y, self.ddof, self.params.n_bootstrap, point=value)
        if ci is not None:  # bias-shifted percentile interval (see bootstrap_set_ci); a distance is >= 0
            ci = (max(ci[0], 0.0), max(ci[1], 0.0))
        extras = {"protocol": self.protocol, "backbone": self.backbone, "backbone_hash": self.backbone_hash,
                  "n": len(x), "n_real": len(y), "dim": int(x.shape[1]), "ddof": self.ddof}
        if notes:
            extras["note"] = "; ".join(notes)
        return SetScore(value, n=len(x), n_real=len(y), ci=ci, extras=extras)
