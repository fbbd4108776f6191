"""Fréchet Video Distance: the Fréchet distance between Gaussians fitted to video embeddings of the
generated and the real set (lower is better).

Protocols (the `protocol` param; recorded with every value, and values of different protocols,
backbones or sample counts are refused by `vdeval.stats.check_comparable`):
  stylegan-v  the published FVD of StyleGAN-V (Skorokhodov et al. 2022): backbone "i3d" (the
              TorchScript Kinetics-400 I3D, 400 logits before softmax), the first 16 consecutive
              frames of each clip, frames resized to 224x224 by the detector, values in [-1, 1],
              population covariance (divide by n), 2048 clips per set in the paper ("fvd2048_16f").
  vdeval      any backbone with its own written protocol (default: the embedded backbone),
              unbiased covariance (divide by n - 1).
  auto        stylegan-v for backbone "i3d", vdeval otherwise.

The maths lives in vdeval.stats (float64, eigenvalue trace of the matrix square root). FVD is
biased upwards at small n: compare values only at equal sample counts. With fewer clips than
feature dimensions the covariances are singular; the value is still defined, a warning is
issued and `extras["note"]` says so.
"""
from __future__ import annotations

import hashlib
import warnings
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from vdeval import stats
from vdeval.errors import FeatureError, SuiteError
from vdeval.features import ClipFeatures, FeatureRequest
from vdeval.metrics.base import Metric, SetScore

PROTOCOLS = {
    "stylegan-v": {"ddof": 0, "backbone": "i3d",
                   "text": "I3D (StyleGAN-V TorchScript), first 16 frames, 224x224, [-1, 1], population covariance"},
    "vdeval": {"ddof": 1, "backbone": None, "text": "backbone's own protocol, unbiased covariance"},
}


def resolve_protocol(protocol: str, backbone: str) -> str:
    if protocol == "auto":
        return "stylegan-v" if backbone == "i3d" else "vdeval"
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
    protocol: Literal["auto", "stylegan-v", "vdeval"] = "auto"
    n_bootstrap: int = Field(200, ge=0, description="clip resamples for the bias-shifted 95% interval; 0 for none")
    stats_cache: str | None = Field(None, description="folder caching the real set's statistics")
    real_name: str | None = Field(None, description="name of the real data set in the cache key")


class FVD(Metric):
    name = "fvd"
    version = "1"
    higher_is_better = False
    level = "set"
    default_backbone = "embedded"
    natural_backbone = "i3d"
    needs_real = True
    failure_mode = "generated clips whose appearance or motion statistics differ from the real set's"
    Params = FVDParams

    def __init__(self, backbone: str | None = None, **params):
        super().__init__(backbone, **params)
        self.protocol = resolve_protocol(self.params.protocol, self.backbone)
        self.ddof = PROTOCOLS[self.protocol]["ddof"]
        self.backbone_hash: str | None = None  # the runner may set it; looked up when a cache needs it

    def requests(self) -> list[FeatureRequest]:
        return [FeatureRequest("video_embedding", self.backbone)]

    def identity(self) -> dict:
        return {"protocol": self.protocol, "backbone": self.backbone, "backbone_hash": self.backbone_hash}

    def _backbone_hash(self) -> str:
        if self.backbone_hash is None:
            from vdeval.featurize import BackbonePool

            self.backbone_hash = BackbonePool().get(self.backbone).identity_hash()
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


# ---- torchmetrics-style stateful class ----------------------------------------------------------

def _backbone_for(holder):
    """The metric's backbone on the metric's device: created on first use, and again after the
    metric moved (`.to(device)`), so features are computed where the metric lives."""
    device = str(getattr(holder, "device", "cpu"))
    if holder._backbone is None or str(holder._backbone.device) != device:
        from vdeval.featurize import BackbonePool

        backbone = BackbonePool(device).get(holder.backbone_name)
        if "video_embedding" not in backbone.provides:
            raise FeatureError(f"backbone {holder.backbone_name!r} gives no video embeddings",
                               "use one that does, e.g. embedded or i3d")
        holder._backbone = backbone
    return holder._backbone


def _videos_from_tensor(x, value_range) -> list:
    """(B, T, C, H, W) uint8 (0..255) or float (in the declared `value_range`) -> Videos."""
    from vdeval.video import as_video

    declared = None if not torch.is_floating_point(x) else value_range
    return [as_video(v, source=f"video {i} of the batch", value_range=declared, layout="TCHW") for i, v in enumerate(x)]


def embed_clips(clips: list, holder) -> np.ndarray:
    from vdeval.features import ClipInput
    from vdeval.video import Video

    inputs = [c if isinstance(c, ClipInput) else ClipInput(c if isinstance(c, Video) else c.video) for c in clips]
    return np.stack([o["value"] for o in _backbone_for(holder).compute("video_embedding", inputs)])


def features_from_input(x, backbone_name: str | None, holder) -> torch.Tensor:
    """(N, D) float64 features from: a (N, D) tensor/array of features; a (B, T, C, H, W) video
    tensor (uint8, or float in `holder.value_range`); or a list of clips (Video / ClipInput). Videos
    go through the named backbone, on the metric's device."""
    is_video = getattr(x, "ndim", None) == 5
    if isinstance(x, (list, tuple)) or is_video:
        if not backbone_name:
            raise FeatureError("videos were given but no backbone", "pass backbone='embedded' (or another) to the metric")
        clips = _videos_from_tensor(torch.as_tensor(x).detach().cpu(), holder.value_range) if is_video else list(x)
        x = embed_clips(clips, holder)
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).detach().to(torch.float64)
    if t.ndim != 2:
        raise FeatureError(f"expected (clips, dims) features or a (B, T, C, H, W) video tensor, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise FeatureError("features contain NaN or infinite values")
    return t


def infer_num_features(holder) -> int:
    """The backbone's video embedding size, from one forward pass on a blank clip."""
    from vdeval.video import Video

    blank = Video(np.zeros((16, 64, 64, 3), np.uint8), 8.0)
    return int(embed_clips([blank], holder).shape[1])


try:
    from torchmetrics import Metric as _TMMetric
except ImportError:  # pragma: no cover - torchmetrics is a dependency
    _TMMetric = torch.nn.Module


class _VideoMetric(_TMMetric):
    """What the two torchmetrics classes share: video input through a backbone that follows the
    metric's device, forward = update (never losing state), float64 states whatever the dtype."""

    full_state_update = False
    higher_is_better = False
    is_differentiable = False
    _float64_states: tuple[str, ...] = ()

    def _setup_input(self, backbone: str | None, value_range) -> None:
        lo, hi = (float(v) for v in value_range)
        if not hi > lo:
            raise ValueError(f"value_range must be (low, high) with low < high, got {value_range!r}")
        self.backbone_name, self.value_range, self._backbone = backbone, (lo, hi), None

    def forward(self, *args, **kwargs):
        """Accumulate the batch, as update does. A batch holds one side (real or generated), so
        no per-batch distance is defined: returns None. Call compute() for the value."""
        self.update(*args, **kwargs)
        return None

    def _apply(self, fn, exclude_state=()):
        # float64 sums and features stay float64 under .to(dtype) / set_dtype: moved, never cast
        this = super()._apply(fn, exclude_state=tuple(exclude_state) + self._float64_states)
        device = this.device
        for key in self._float64_states:
            value, default = getattr(this, key), this._defaults[key]
            if isinstance(value, torch.Tensor):
                setattr(this, key, value.to(device))
                this._defaults[key] = default.to(device)
            else:
                setattr(this, key, [v.to(device) for v in value])
        return this


class FrechetVideoDistance(_VideoMetric):
    """FVD for training loops and notebooks: update(x, real=bool), compute(), reset().

    x: a (B, T, C, H, W) video tensor (uint8, or float in `value_range`, default [0, 1]), a list
    of Videos, or (N, D) features. Videos go through `backbone` (e.g. "embedded", "i3d"), which
    follows the metric to its device (`.to("cuda")`). `num_features` is inferred from the
    backbone when not given. States are float64 sums (features, outer products, count) reduced
    with "sum", so the value after a multi-process sync equals the value over all processes'
    clips, and any rank may have seen no clips of either set. `reference` gives precomputed
    real statistics (vdeval.stats.FeatureStats) instead of real updates.
    """

    _float64_states = tuple(f"{side}_{k}" for side in ("real", "fake") for k in ("sum", "outer", "n"))

    def __init__(self, num_features: int | None = None, protocol: str = "vdeval", backbone: str | None = None,
                 reference: stats.FeatureStats | None = None, value_range: tuple[float, float] = (0.0, 1.0), **kwargs):
        super().__init__(**kwargs)
        if protocol not in PROTOCOLS:
            raise SuiteError(f"unknown FVD protocol {protocol!r}", f"one of {', '.join(PROTOCOLS)}")
        self._setup_input(backbone, value_range)
        if num_features is None:
            if not backbone:
                raise FeatureError("FVD needs num_features or a backbone to infer it from")
            num_features = infer_num_features(self)
        self.num_features, self.protocol = int(num_features), protocol
        self.ddof = PROTOCOLS[protocol]["ddof"]
        if reference is not None:
            ident = {"protocol": protocol, "backbone": backbone}
            stats.check_same_protocol(stats.FeatureStats(self.num_features, identity=ident), reference)
        self.reference = reference
        d = self.num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_n", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x, real: bool) -> None:
        if real and self.reference is not None:
            raise FeatureError("this metric has reference statistics; update it with generated clips only")
        f = features_from_input(x, self.backbone_name, self)
        if f.shape[1] != self.num_features:
            raise FeatureError(f"features have {f.shape[1]} dims, this metric was made for {self.num_features}")
        f = f.to(self.real_sum.device)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_n", getattr(self, f"{side}_n") + f.shape[0])

    def _stats(self, side: str) -> stats.FeatureStats:
        n = int(getattr(self, f"{side}_n").item())
        s = stats.FeatureStats(self.num_features, n, getattr(self, f"{side}_sum").cpu().numpy().astype(np.float64),
                               getattr(self, f"{side}_outer").cpu().numpy().astype(np.float64),
                               {"protocol": self.protocol, "backbone": self.backbone_name})
        if n < 2:
            raise FeatureError(f"{n} {side} clip(s) seen; FVD needs at least 2 in each set")
        return s

    def compute(self) -> torch.Tensor:
        real = self.reference if self.reference is not None else self._stats("real")
        return torch.tensor(fvd_from_stats(self._stats("fake"), real, self.ddof), dtype=torch.float64)
